"""Rewrite a closed store file so that deleted rows are gone from the disk, not only from the tables.

DuckDB marks the blocks of deleted or updated rows free but does not overwrite them: after a GDPR
erase the person's e-mail, phone and name are still readable in the file's free blocks (a test
greps them). Copying every table into a fresh file (``COPY FROM DATABASE``) and renaming it over
the old one leaves only live rows. Needs the store closed (one writer) and free disk space for
one copy; the rename is atomic on one file system.

    >>> compact_store(Path("demo/xrm.duckdb"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from xrm.exceptions import StoreBusy, StoreError

__all__ = ["compact_store"]


def compact_store(path: Path, *, memory_limit: str = "1GB") -> int:
    """Rewrite the store at ``path`` with live rows only; returns the bytes saved."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no store to compact")
    tmp = path.with_name(f".{path.name}.compact-{uuid.uuid4().hex[:8]}")
    before = path.stat().st_size
    try:
        con = duckdb.connect(str(path), config={"memory_limit": memory_limit})
    except duckdb.IOException as exc:
        raise StoreBusy(f"{path}: cannot compact while another process holds the store ({exc})") from None
    try:
        (src,), = con.execute("SELECT current_database()").fetchall()
        con.execute(f"ATTACH '{_sql(str(tmp))}' AS xrm_compact")
        con.execute(f'COPY FROM DATABASE "{src}" TO xrm_compact')
        con.execute("DETACH xrm_compact")
    except Exception:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    if Path(f"{path}.wal").exists():  # closing checkpoints; a WAL left means it could not
        tmp.unlink(missing_ok=True)
        raise StoreError(f"{path}: its write-ahead log could not be checkpointed; not compacted")
    os.replace(tmp, path)
    return before - path.stat().st_size


def _sql(text: str) -> str:
    return text.replace("'", "''")
