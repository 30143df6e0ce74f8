"""Rewrite a closed store file: live rows only (compaction), or encrypted, decrypted or re-keyed.

DuckDB marks the blocks of deleted or updated rows free but does not overwrite them: after a GDPR
erase the person's e-mail, phone and name are still readable in the file's free blocks (a test
greps them). Copying every table into a fresh file (``COPY FROM DATABASE``) and renaming it over
the old one leaves only live rows. The same copy, with an ``ENCRYPTION_KEY`` on either side,
turns a plain store into an encrypted one and back (``xrm store encrypt`` / ``decrypt``) or changes
its key. Needs the store closed (one writer) and free disk space for one copy; the rename is
atomic on one file system, and a rewrite killed half-way leaves only a ``.NAME.rewrite-*`` file,
removed at the next open.

    >>> compact_store(Path("demo/xrm.duckdb"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from xrm.exceptions import StoreError, StoreKeyError
from xrm.store._crypto import attach_options, connect_file, enable_writing, scrub, store_key

if TYPE_CHECKING:
    from xrm.config import Settings

__all__ = ["compact_store", "decrypt_store", "encrypt_store", "rewrite_store"]


def compact_store(path: Path, *, memory_limit: str = "1GB", settings: Settings | None = None) -> int:
    """Rewrite the store at ``path`` with live rows only (its key from ``settings``); returns bytes saved."""
    key = store_key(settings) if settings is not None else None
    unsafe = settings.store_encryption_unsafe_crypto if settings is not None else False
    return rewrite_store(path, key_in=key, key_out=key, unsafe_crypto=unsafe, memory_limit=memory_limit)


def rewrite_store(
    path: Path,
    *,
    key_in: str | None,
    key_out: str | None,
    unsafe_crypto: bool = False,
    memory_limit: str = "1GB",
) -> int:
    """Copy the store at ``path`` (opened with ``key_in``) into a fresh file written with ``key_out``
    and put it in place; returns the bytes saved (negative: the new file is larger)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no store to rewrite")
    tmp = path.with_name(f".{path.name}.rewrite-{uuid.uuid4().hex[:8]}")
    before = path.stat().st_size
    con = connect_file(path, key=key_in, config={"memory_limit": memory_limit}, unsafe_crypto=unsafe_crypto)
    try:
        if key_out is not None:
            enable_writing(con, unsafe=unsafe_crypto)
        (src,), = con.execute("SELECT current_database()").fetchall()
        con.execute(f"ATTACH '{_sql(str(tmp))}' AS xrm_rewrite{attach_options(key_out)}")
        con.execute(f'COPY FROM DATABASE "{src}" TO xrm_rewrite')
        con.execute("DETACH xrm_rewrite")
    except duckdb.Error as exc:
        con.close()
        _remove(tmp)
        raise StoreError(f"{path}: rewrite failed: {scrub(str(exc).splitlines()[0], key_out)}") from None
    except BaseException:
        con.close()
        _remove(tmp)
        raise
    con.close()
    if Path(f"{path}.wal").exists():  # closing checkpoints; a WAL left means it could not
        _remove(tmp)
        raise StoreError(f"{path}: its write-ahead log could not be checkpointed; not rewritten")
    os.replace(tmp, path)
    return before - path.stat().st_size


def _remove(tmp: Path) -> None:
    for f in (tmp, tmp.with_name(tmp.name + ".wal")):
        f.unlink(missing_ok=True)


def _sql(text: str) -> str:
    return text.replace("'", "''")


def encrypt_store(path: Path, key: str, *, unsafe_crypto: bool = False, memory_limit: str = "1GB") -> int:
    """Turn the plain store at ``path`` into one encrypted with ``key`` (``xrm store encrypt``)."""
    try:
        return rewrite_store(path, key_in=None, key_out=key, unsafe_crypto=unsafe_crypto,
                             memory_limit=memory_limit)
    except StoreKeyError:
        raise StoreKeyError(
            f"the store {path} is encrypted already; nothing to do (to change its key, decrypt it with "
            f"the old key set, then encrypt it with the new one)"
        ) from None


def decrypt_store(path: Path, key: str, *, unsafe_crypto: bool = False, memory_limit: str = "1GB") -> int:
    """Turn the store at ``path`` encrypted with ``key`` into a plain one (``xrm store decrypt``)."""
    try:
        return rewrite_store(path, key_in=key, key_out=None, unsafe_crypto=unsafe_crypto,
                             memory_limit=memory_limit)
    except StoreKeyError as exc:
        if "is not encrypted" in str(exc):
            raise StoreKeyError(f"the store {path} is not encrypted; nothing to do") from None
        raise
