"""Landing files: where the event writer commits while the store is being checkpointed.

DuckDB 2.0 lets no transaction write to a database file while that file is checkpointed (every
insert, index or not, waits for the end), and a checkpoint of the store under 10,000 events/s
takes 250-600 ms. A separate file ATTACHed beside the store is not locked by it: a commit into
it goes on meanwhile (measured: 500-event commits of at most 35-40 ms while the store's
checkpoint ran for 0.9-2.2 s on a loaded machine). So during a checkpoint the writer commits
each group's raw events into a landing file and answers 200; right after, the groups are moved
into the store by the ordinary write path (messageId de-duplication, checks, resolution), and the
file is detached and deleted.

A landing file holds only valid events (checked on the request side, see
:func:`xrm.ingest._api_batch.quick_event`) as (seq, source, JSON text). A transaction may write
only one attached database, so moving is two commits: the store's, then the file's deletion. A
process killed between them moves the file again at the next start, and the events primary key
drops what the first move stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb

from xrm.store._crypto import attach_options  # (not in xrm.store's surface: the backup's helper too)

__all__ = ["Landing", "leftover_files"]

SUFFIX = ".landing-"


def leftover_files(store_path: Path) -> list[Path]:
    """Landing files a killed server left beside the store (not their logs), oldest first."""
    found = [p for p in store_path.parent.glob(store_path.name + SUFFIX + "*") if not p.name.endswith(".wal")]
    return sorted(found, key=lambda p: (len(p.name), p.name))


class Landing:
    """One landing file, ATTACHed to the store's database instance under its own name."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, path: Path, name: str, key: str | None = None) -> None:
        self.path = path
        self.name = name
        self.events = 0  # landed in it by this process
        self.first: int | None = None  # the writer's count of landed events at its first one
        self.who: set[str] = set()  # user and anonymous ids of its events
        self.key_who: set[str] = set()  # of its events a decision reads (consent, responses, identity)
        # An encrypted store's landing files are encrypted with its key: they hold personal data too.
        cur.execute(f"ATTACH '{_quoted(path)}' AS {name}{attach_options(key)}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {name}.landed (seq BIGINT, source VARCHAR, text VARCHAR)")
        self._seq = 0  # a file left by a killed server is only moved, never landed into again

    def holds(self, ids: Sequence[str], read_by_decisions: bool = False) -> bool:
        """Whether it holds events (of these ids, if any are given; ``read_by_decisions``: only of
        the events a decision reads)."""
        if self.first is None:
            return False
        held = self.key_who if read_by_decisions else self.who
        return not ids or any(i in held for i in ids)

    def land(self, cur: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str]]) -> None:
        """Commit (source, text) rows; durable when this returns (DuckDB syncs its log at COMMIT)."""
        import pyarrow as pa

        first = self._seq + 1
        self._seq += len(rows)
        _xrm_landed = pa.table({  # read by DuckDB's replacement scan
            "seq": pa.array(range(first, self._seq + 1), pa.int64()),
            "source": [s for s, _ in rows],
            "text": [t for _, t in rows],
        })
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(f"INSERT INTO {self.name}.landed SELECT seq, source, text FROM _xrm_landed")
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        self.events += len(rows)

    def rows(self, cur: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[str, str]]]:
        """The landed (source, text) rows in the order they came, in runs of one source."""
        run: list[tuple[str, str]] = []
        rows = cur.execute(f"SELECT source, text FROM {self.name}.landed ORDER BY seq").fetchall()
        for source, text in rows:
            if run and run[-1][0] != source:
                yield run
                run = []
            run.append((source, text))
        if run:
            yield run

    def remove(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Detach and delete the file (its events are in the store)."""
        cur.execute(f"DETACH {self.name}")
        for p in (self.path, self.path.with_name(self.path.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
