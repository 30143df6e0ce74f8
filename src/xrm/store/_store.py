"""The store: the only place that opens the database.

Embedded default: one DuckDB file.  The file admits one writing process at a time, so xrm's rule
is *the process that opened the store for writing owns it*: while ``xrm serve`` runs, batch work
is handed to the server (it runs jobs in-process on its own connection); when no server runs,
the CLI opens the file itself.  A second writer gets :class:`~xrm.exceptions.StoreBusy` naming
the holder.  Readers that can tolerate a snapshot may open read-only copies (``read_only=True``)
only when no writer holds the file.  See docs/store.md.

    >>> from xrm.store import Store
    >>> with Store.open("/tmp/doc.duckdb") as store:
    ...     store.sql("SELECT 1").fetchall()
    [(1,)]
"""

from __future__ import annotations

import glob
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from xrm import __version__
from xrm.config import Settings
from xrm.exceptions import StoreBusy, StoreError, StoreVersionError
from xrm.store._crypto import CatalogConnection, connect_file, store_key
from xrm.store._faults import StoreFault, store_fault
from xrm.store._gate import StoreGate
from xrm.store._migrate import migrate, schema_versions
from xrm.store._registry import all_schemas
from xrm.store._schema import Schema

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends.duckdb import Backend as DuckDBBackend

__all__ = ["Store"]


class Store:
    """An open xrm store: a DuckDB connection with the schema at the current version."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, settings: Settings) -> None:
        self.con = con
        self.path = path
        self.settings = settings
        self._ibis: DuckDBBackend | None = None
        self.gate = StoreGate()  # held by every transaction while a release may run (the server)
        self.lost: str | None = None  # why DuckDB invalidated the database (note_fault), if it did
        self._on_lost: list[Callable[[str], object]] = []
        self._losing = threading.Lock()  # any thread may meet the fatal error first

    @classmethod
    def open(
        cls,
        target: Settings | str | Path | None = None,
        *,
        read_only: bool = False,
        schemas: tuple[Schema, ...] | None = None,
        attached: bool = False,
    ) -> Store:
        """Open (and create or upgrade) the store named by settings or a path; ``attached``: in the
        layout that can release DuckDB's index memory (:meth:`release_index_memory`, the server)."""
        settings = target if isinstance(target, Settings) else Settings()
        if isinstance(target, str | Path):
            settings = settings.model_copy(update={"store_path": Path(target)})
        path = Path(settings.store_path)
        if read_only and not path.exists():
            raise StoreError(f"store {path} does not exist; run `xrm init` or `xrm load` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"memory_limit": settings.memory_limit}
        if settings.threads:
            config["threads"] = settings.threads
        temp = settings.temp_directory or path.with_name(path.name + ".tmp")
        config["temp_directory"] = str(temp)
        con = connect_file(
            path, key=store_key(settings), read_only=read_only, config=config,
            unsafe_crypto=settings.store_encryption_unsafe_crypto, attached=attached,
        )
        if not read_only:  # this process holds the write lock: what a killed backup left is stale
            remove_stale_temp_files(path)
        try:
            migrate(
                con, schemas or all_schemas(), path, __version__, read_only=read_only
            )
        except duckdb.Error as exc:
            con.close()
            damaged = _damage(path, exc)
            if damaged is None:
                raise  # a failing migration: its own error
            raise damaged from None
        except BaseException:
            con.close()
            raise
        return cls(con, path, settings)

    # -- running SQL -------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        """Run one statement on a fresh cursor (safe to interleave with Ibis and Splink)."""
        cur = self.con.cursor()
        return cur.execute(query, params) if params is not None else cur.execute(query)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing block: ``with store.transaction() as tx: tx.execute(...)``."""
        cur = self.con.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def tables(self) -> list[str]:
        rows = self.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    def count(self, table: str) -> int:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
            raise StoreError(f"{table!r} is not a table name")
        row = self.sql(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def schema_versions(self) -> dict[str, tuple[int, str]]:
        return schema_versions(self.con)

    # -- the engine seam ---------------------------------------------------------------------

    @property
    def ibis(self) -> DuckDBBackend:
        """An Ibis backend over this same connection (batch analytics are Ibis expressions)."""
        if self._ibis is None:
            import ibis

            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    def table(self, name: str) -> ir.Table:
        return self.ibis.table(name)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def encryption_key(self) -> str | None:
        """The key the store file is encrypted with (None: plain); backups and rewrites use it too."""
        return store_key(self.settings)

    # -- index memory ------------------------------------------------------------------------

    @property
    def releasable(self) -> bool:
        """Whether :meth:`release_index_memory` can work: the file is attached (``attached=True``,
        or an encrypted store), not the connection's own database."""
        return isinstance(self.con, CatalogConnection)

    def index_memory_mb(self) -> float:
        """What DuckDB holds of the indexes in memory now (its ``ART_INDEX`` tag), in MiB."""
        row = self.sql(
            "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'ART_INDEX'"
        ).fetchone()
        return float(row[0]) / 2**20 if row else 0.0

    def release_index_memory(self) -> None:
        """Write out and free the index buffers DuckDB keeps (nothing else frees those a look-up
        loaded: docs/api.md, "Memory under load") by detaching the file and attaching it again; it
        checkpoints first. The caller holds :attr:`gate` alone: no transaction may be open."""
        if not isinstance(self.con, CatalogConnection):
            raise StoreError(f"store {self.path} is not open attached (Store.open(..., attached=True))")
        try:
            self.con.reattach()
        except StoreError as exc:  # not attached again: no statement can reach the store any more
            self._lose(str(exc))
            raise

    def note_fault(self, exc: BaseException) -> StoreFault | None:
        """Classify an error a user of the store met (:func:`~xrm.store._faults.store_fault`); the
        first ``'lost'`` records why in :attr:`lost` and calls every :meth:`when_lost` listener."""
        fault = store_fault(exc)
        if fault == "lost":
            self._lose(str(exc).splitlines()[0][:300] or type(exc).__name__)
        return fault

    def _lose(self, reason: str) -> None:
        with self._losing:
            if self.lost is not None:
                return
            self.lost = reason
        for listener in self._on_lost:
            listener(reason)

    def when_lost(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(reason)`` once, when DuckDB has invalidated the database (the server
        then stops: only a new process can open it again)."""
        self._on_lost.append(listener)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


# The server's admin backup (and the .part file its copy is written to first), compaction, rewrites.
STALE_PATTERNS = (".{name}.backup-*", "..{name}.backup-*", ".{name}.compact-*", ".{name}.rewrite-*")


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete the temporary copies a killed backup or compaction left next to the store.

    Only the process holding the store's write lock may call this: every one of those files is made
    by the lock holder (the server's admin backup, ``compact_store``) or replaced under it, so with
    the lock held none of them is still being written."""
    removed = []
    for pattern in STALE_PATTERNS:
        for leftover in path.parent.glob(pattern.format(name=glob.escape(path.name))):
            for f in (leftover, leftover.with_name(leftover.name + ".wal")):
                if f.is_file():
                    f.unlink(missing_ok=True)
                    removed.append(f)
    return removed


_DAMAGE = ("corrupt database", "checksum", "could not read enough bytes", "not a valid duckdb")


def _damage(path: Path, exc: duckdb.Error) -> StoreVersionError | None:
    """A clear refusal when DuckDB found the file damaged (torn, truncated, overwritten); else None."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not any(sign in text.lower() for sign in _DAMAGE):
        return None
    return StoreVersionError(
        f"{path} is damaged and cannot be read as an xrm store (DuckDB: {text}); restore the store "
        f"from a backup (`xrm restore BACKUP --force`) or point store_path at a new file"
    )


def _explain_open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = str(exc)
    if re.search(r"\block\b", text, re.IGNORECASE):  # a file lock, not "block" in a damage report
        holder = re.search(r"PID (\d+)", text)
        who = f"process {holder.group(1)}" if holder else "another process"
        return StoreBusy(
            f"store {path} is open for writing by {who} (DuckDB allows one writing process). "
            f"If that is `xrm serve`, send the work to the server; otherwise wait for it to end."
        )
    if "not a valid DuckDB" in text or "Catalog" in text or "database file" in text.lower():
        return StoreVersionError(
            f"{path} is not an xrm store (DuckDB cannot read it: {text.splitlines()[0]}); "
            f"point store_path at a new file or restore the store from a backup"
        )
    return StoreError(f"cannot open store {path}: {text}")
