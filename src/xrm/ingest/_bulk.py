"""A first load of events into an empty store: rows into a key-less table, the keys built once after.

Inserting into ``events`` row by row keeps its ``message_id`` primary key and the three look-up
indexes (user, anonymous and previous id) up for every row: two thirds of a load's CPU at 100k
customers (bench/results/profile.md). DuckDB builds an ART index from the data already in a
table several times faster (docs/loading.md, "Loading into an empty store": 2M rows, 15 CPU s
kept row by row against 8 CPU s inserted bare then indexed). So when a manifest's events go into
an empty ``events`` table, :class:`BulkEvents` loads them into ``__xrm_events_bulk`` (the same
columns, defaults and NOT NULLs, no key, no index), and :meth:`BulkEvents.finish` swaps it in,
in one transaction: duplicates of a ``message_id`` removed (the first stored wins, as with the
key), the primary key added, the indexes created, the files' ``loads`` rows marked done.

A load killed before the swap leaves its committed batches in ``__xrm_events_bulk`` and
``events`` untouched; :func:`finish_stale` (run by the next load) swaps them in, so the batches
a killed load committed are kept, as without the bulk path, and loading the file again skips them
as duplicates.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from xrm.store._catalog import index_sql, table_exists

if TYPE_CHECKING:
    import duckdb

    from xrm.ingest._report import LoadReport
    from xrm.store import Store

__all__ = ["STAGE", "BulkEvents", "finish_stale"]

STAGE = "__xrm_events_bulk"
_KEY = re.compile(r"\bmessage_id VARCHAR PRIMARY KEY\b")


class BulkEvents:
    """The staging table of one manifest's event files; ``finish`` makes them the ``events`` table."""

    def __init__(self, store: Store, indexes: list[str]) -> None:
        self.store = store
        self.indexes = indexes  # the look-up indexes of events, re-created after the swap
        self.reports: list[LoadReport] = []

    @classmethod
    def begin(cls, store: Store) -> BulkEvents | None:
        """A bulk load when ``events`` is empty (after finishing a killed one); None otherwise."""
        finish_stale(store)
        cur = store.con.cursor()
        try:
            if cur.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchall()[0][0]:
                return None
            (ddl,) = cur.execute(
                "SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'events'"
            ).fetchall()[0]
            if not _KEY.search(ddl) or not ddl.startswith("CREATE TABLE events("):
                return None  # a schema this module does not know: load row by row
            stage = _KEY.sub("message_id VARCHAR NOT NULL", ddl).replace(
                "CREATE TABLE events(", f"CREATE TABLE {STAGE}(", 1
            )
            cur.execute(stage)
            return cls(store, index_sql(cur, "events"))
        finally:
            cur.close()

    def staged(self, report: LoadReport) -> None:
        """``report``'s file is in the staging table whole; its ``loads`` row is marked at ``finish``."""
        self.reports.append(report)

    def finish(self) -> None:
        """Swap the staged events in (one transaction); correct the files' duplicate counts."""
        removed = _swap(self.store, self.indexes)
        cur = self.store.con.cursor()
        try:
            for report in self.reports:
                extra = removed.get(report.load_id or "", 0)
                report.rows_loaded -= extra
                report.rows_duplicate += extra
                cur.execute(
                    "UPDATE loads SET status = 'done', rows_loaded = ?, rows_duplicate = ? WHERE load_id = ?",
                    [report.rows_loaded, report.rows_duplicate, report.load_id],
                )
        finally:
            cur.close()


def finish_stale(store: Store) -> None:
    """Swap in the staged events of a load killed before its end (nothing if none is staged)."""
    cur = store.con.cursor()
    try:
        stale = table_exists(cur, STAGE)
    finally:
        cur.close()
    if stale:
        _swap(store, None)


def _swap(store: Store, indexes: list[str] | None) -> dict[str, int]:
    """``events`` := the staging table, de-duplicated, keyed and indexed; rows removed by load_id.

    The primary key is built first: it fails only when a ``message_id`` is staged twice, and only
    then are the later copies found (a GROUP BY over every id) and removed.
    """
    cur = store.con.cursor()
    removed: dict[str, int] = {}
    try:
        if indexes is None:
            indexes = index_sql(cur, "events")
        for attempt in (0, 1):
            if attempt:
                # Committed on its own: DuckDB 2.0's ADD PRIMARY KEY still sees rows deleted
                # earlier in its own transaction.
                cur.execute("BEGIN TRANSACTION")
                removed = _dedupe(cur)
                cur.execute("COMMIT")
            cur.execute("BEGIN TRANSACTION")
            try:
                cur.execute("DROP TABLE events")
                cur.execute(f"ALTER TABLE {STAGE} RENAME TO events")
                cur.execute("ALTER TABLE events ADD PRIMARY KEY (message_id)")
                for sql in indexes:
                    cur.execute(sql)
                cur.execute("COMMIT")
                return removed
            except Exception as exc:
                with contextlib.suppress(Exception):
                    cur.execute("ROLLBACK")
                if attempt or not _is_duplicate(exc):
                    raise
        return removed
    finally:
        cur.close()


def _is_duplicate(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.ConstraintException)


def _dedupe(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Remove every staged copy of a ``message_id`` but the first (lowest rowid: the order loaded)."""
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE __xrm_dups AS "
        f"WITH twice AS (SELECT message_id, min(rowid) AS keep FROM {STAGE} GROUP BY message_id "
        f"HAVING count(*) > 1) "
        f"SELECT s.rowid AS rid, s.load_id FROM {STAGE} s JOIN twice t USING (message_id) "
        f"WHERE s.rowid <> t.keep"
    )
    try:
        counts = cur.execute(
            "SELECT coalesce(load_id, ''), count(*) FROM __xrm_dups GROUP BY ALL"
        ).fetchall()
        cur.execute(f"DELETE FROM {STAGE} WHERE rowid IN (SELECT rid FROM __xrm_dups)")
    finally:
        cur.execute("DROP TABLE IF EXISTS __xrm_dups")
    return {str(k): int(v) for k, v in counts}
