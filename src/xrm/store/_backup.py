"""Backup and restore of the DuckDB store: one consistent file, verified before it is put back.

A backup is made *on the connection that owns the store* (``xrm serve``'s, while it runs; the
CLI's own otherwise), so it needs no second writer: the backup file is ATTACHed to that
connection and ``COPY FROM DATABASE`` copies every table, view, index and sequence inside **one
transaction**.  DuckDB's MVCC gives that transaction one snapshot, so the copy holds exactly the
transactions committed before it began (every event the API acknowledged by then) and none of
those committed during it, while ingestion goes on.  In the same transaction a manifest is
written into the backup: the xrm and schema versions, and per table its row count and an
order-independent content digest (the sum of DuckDB row hashes).

Restore copies the backup next to the target, re-reads every table of the copy against the
manifest (a torn, truncated or edited file is refused), checks the schema versions are known to
this xrm, drops the manifest, and only then renames the copy over the target (atomic on one file
system).  It refuses a target that a running process holds, and refuses files that are not xrm
backups.

    >>> info = backup_store(con, Path("backups/2026-11-22.duckdb"))  # doctest: +SKIP
    >>> restore_store(Path("backups/2026-11-22.duckdb"), Path("xrm.duckdb"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from xrm import __version__
from xrm.exceptions import StoreBusy, StoreError, StoreKeyError, StoreVersionError
from xrm.store._crypto import attach_options, connect_file, is_encrypted, scrub
from xrm.store._migrate import META_TABLE
from xrm.store._registry import all_schemas

__all__ = [
    "MANIFEST_TABLE",
    "BackupInfo",
    "backup_path_problem",
    "backup_store",
    "open_for_backup",
    "restore_store",
    "verify_backup",
]

MANIFEST_TABLE = "xrm_backup_manifest"
FORMAT = 1  # of the manifest; a newer one is refused


@dataclass
class BackupInfo:
    """What a backup holds (from its manifest) and, once verified or written, how long it took."""

    path: str
    created_at: str
    xrm_version: str
    source: str
    schemas: dict[str, int]
    tables: dict[str, int]  # rows per table
    digests: dict[str, str] = field(default_factory=dict, repr=False)
    seconds: float = 0.0
    bytes: int = 0
    encrypted: bool = False  # written with the store's encryption key

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("digests")
        return d


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _user_tables(con: duckdb.DuckDBPyConnection, db: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "AND NOT internal AND NOT temporary ORDER BY 1",
        [db],
    ).fetchall()
    return [r[0] for r in rows if r[0] != MANIFEST_TABLE]


def _digests(con: duckdb.DuckDBPyConnection, db: str, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Rows and content digest per table (sum of row hashes: independent of row order)."""
    out = {}
    for t in tables:
        n, digest = con.execute(
            f"SELECT count(*), coalesce(sum(hash(r)::HUGEINT), 0)::VARCHAR "
            f"FROM {_ident(db)}.main.{_ident(t)} AS r"
        ).fetchall()[0]
        out[t] = (int(n), str(digest))
    return out


def backup_path_problem(dest: Path, *, force: bool = False) -> str | None:
    """Why ``dest`` cannot take a backup (None: it can)."""
    if dest.exists() and not force:
        return f"{dest} exists; choose a new file name or pass --force to replace it"
    if not dest.parent.exists():
        return f"folder {dest.parent} does not exist; create it first"
    return None


def open_for_backup(
    path: Path, *, key: str | None = None, unsafe_crypto: bool = False
) -> duckdb.DuckDBPyConnection:
    """The store's file opened for writing, without migrating it (a backup copies it as it is);
    ``key`` opens an encrypted store.

    Raises :class:`StoreBusy` when another process (``xrm serve``) holds it."""
    if not path.exists():
        raise StoreError(f"store {path} does not exist; nothing to back up")
    return connect_file(path, key=key, config={"memory_limit": "1GB"}, unsafe_crypto=unsafe_crypto)


def backup_store(
    con: duckdb.DuckDBPyConnection, dest: Path, *, force: bool = False, key: str | None = None
) -> BackupInfo:
    """Copy the store open on ``con`` into a new DuckDB file ``dest``, consistently (one snapshot).

    ``con`` may be shared with running writers (the server's connection): a fresh cursor is used,
    and writes go on while the copy is made. The backup of an encrypted store is encrypted with
    the store's ``key`` (required then): a backup never holds the data in clear when the store does not."""
    dest = Path(dest).absolute()
    problem = backup_path_problem(dest, force=force)
    if problem:
        raise StoreError(f"cannot write backup: {problem}")
    started = time.perf_counter()
    for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.part*"):  # a killed earlier backup's
        stale.unlink(missing_ok=True)
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    alias = f"xrm_backup_{uuid.uuid4().hex[:12]}"
    cur = con.cursor()
    try:
        src = str(cur.execute("SELECT current_database()").fetchall()[0][0])
        if META_TABLE not in _user_tables(cur, src):
            raise StoreVersionError(f"the open database {src!r} is not an xrm store; nothing backed up")
        encrypted = is_encrypted(cur, src)
        if encrypted and key is None:
            raise StoreKeyError(
                "the store is encrypted, and so must its backup be: give the store's key "
                "(store_encryption_key / XRM_STORE_ENCRYPTION_KEY)"
            )
        options = attach_options(key if encrypted else None)
        cur.execute(f"ATTACH {_quote(str(part))} AS {_ident(alias)}{options}")
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                cur.execute(f"COPY FROM DATABASE {_ident(src)} TO {_ident(alias)}")
                tables = _user_tables(cur, src)
                digests = _digests(cur, src, tables)
                versions = {
                    str(c): int(v)
                    for c, v in cur.execute(
                        f"SELECT capability, version FROM {_ident(src)}.main.{META_TABLE}"
                    ).fetchall()
                }
                created = datetime.now(UTC).isoformat(timespec="seconds")
                cur.execute(
                    f"CREATE TABLE {_ident(alias)}.main.{MANIFEST_TABLE} "
                    "(format INTEGER, created_at VARCHAR, xrm_version VARCHAR, source VARCHAR, "
                    "schemas VARCHAR, tables VARCHAR)"
                )
                cur.execute(
                    f"INSERT INTO {_ident(alias)}.main.{MANIFEST_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                    [FORMAT, created, __version__, src, json.dumps(versions),
                     json.dumps({t: list(v) for t, v in digests.items()})],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.execute(f"DETACH {_ident(alias)}")  # checkpoints the backup file and closes it...
        _wait_closed(part)  # ...or, while another cursor's transaction saw it, only when that ends
        os.replace(part, dest)
    except duckdb.Error as exc:
        raise StoreError(f"backup to {dest} failed: {scrub(str(exc).splitlines()[0], key)}") from None
    finally:
        cur.close()
        for leftover in (part, part.with_name(part.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return BackupInfo(
        str(dest), created, __version__, src, versions, {t: n for t, (n, _) in digests.items()},
        {t: d for t, (_, d) in digests.items()}, time.perf_counter() - started, dest.stat().st_size,
        encrypted,
    )


def _wait_closed(path: Path, timeout_s: float = 60.0) -> None:
    """Wait until DuckDB has closed ``path``. Attached databases are shared by every cursor of the
    connection: when another cursor's transaction (the server's writer, the decision gate's
    catalogue query) has seen the attached backup, DETACH returns at once and the file is
    checkpointed and closed only when that transaction ends — a backup handed out before then
    would be cut short. Linux: the process's open files in /proc; elsewhere nothing to check."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return
    target = str(path.absolute())
    deadline = time.monotonic() + timeout_s
    while True:
        held = False
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                if os.readlink(fd_dir / fd) == target:
                    held = True
                    break
        if not held:
            return
        if time.monotonic() > deadline:
            raise StoreError(
                f"backup file {path} still held open by DuckDB after {timeout_s:.0f} s: try again"
            )
        time.sleep(0.02)


def _open_backup(path: Path, shown: Path, key: str | None) -> duckdb.DuckDBPyConnection:
    """A backup file opened read-only: plain as it is, encrypted with ``key``."""
    config = {"memory_limit": "1GB"}
    try:
        return connect_file(path, read_only=True, config=config)
    except StoreKeyError:  # encrypted
        if key is None:
            raise StoreKeyError(
                f"backup {shown} is encrypted: set XRM_STORE_ENCRYPTION_KEY (store_encryption_key) to "
                f"the key of the store it was made from"
            ) from None
    except StoreError as exc:
        if "is damaged" in str(exc):  # DuckDB 1.5 finds a torn backup at connect, 2.0 when reading it
            raise StoreVersionError(
                f"{shown} cannot be read as an xrm backup ({str(exc).splitlines()[0]}); use another backup"
            ) from None
        raise StoreVersionError(
            f"{shown} is not an xrm backup (DuckDB cannot read it: {str(exc).splitlines()[0]}); "
            f"give a file written by `xrm backup`"
        ) from None
    try:
        return connect_file(path, key=key, read_only=True, config=config)
    except StoreKeyError:
        raise StoreKeyError(
            f"backup {shown} is encrypted with another key than store_encryption_key "
            f"(XRM_STORE_ENCRYPTION_KEY); set the key of the store it was made from"
        ) from None


def verify_backup(path: Path, *, label: Path | None = None, key: str | None = None) -> BackupInfo:
    """Re-read every table of a backup file against its manifest; the manifest if all agree.

    Raises :class:`StoreVersionError` for a file that is not an xrm backup, was changed or cut
    short, or was made by a newer xrm than this one. ``label`` names the file in messages (the
    one the user gave, when ``path`` is a working copy of it). ``key`` opens an encrypted backup."""
    path = Path(path)
    shown = label or path
    if not path.is_file():
        raise StoreError(f"backup {shown} does not exist")
    started = time.perf_counter()
    con = _open_backup(path, shown, key)
    try:
        encrypted = is_encrypted(con)
        db = str(con.execute("SELECT current_database()").fetchall()[0][0])
        tables = _user_tables(con, db)
        has_manifest = bool(con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
            [db, MANIFEST_TABLE],
        ).fetchall()[0][0])
        if not has_manifest:
            what = "an xrm store" if META_TABLE in tables else "a DuckDB database but not from xrm"
            raise StoreVersionError(
                f"{shown} is {what}, not a backup made by `xrm backup` (it has no {MANIFEST_TABLE} "
                f"table); make one with `xrm backup FILE`"
            )
        fmt, created, xv, source, schemas_json, tables_json = con.execute(
            f"SELECT * FROM {MANIFEST_TABLE}"
        ).fetchall()[0]
        if int(fmt) > FORMAT:
            raise StoreVersionError(
                f"{shown} was written by a newer xrm ({xv}, backup format {fmt}); upgrade xrm to restore it"
            )
        schemas = {str(k): int(v) for k, v in json.loads(schemas_json).items()}
        expected = {str(k): (int(v[0]), str(v[1])) for k, v in json.loads(tables_json).items()}
        problems = []
        recorded = {
            str(c): int(v) for c, v in con.execute(f"SELECT capability, version FROM {META_TABLE}").fetchall()
        } if META_TABLE in tables else {}
        if recorded != schemas:
            problems.append(f"schema versions {recorded} differ from the manifest's {schemas}")
        known = {s.capability: s.latest for s in all_schemas()}
        for cap, version in sorted(schemas.items()):
            if version > known.get(cap, 0):
                raise StoreVersionError(
                    f"{shown} was made by a newer xrm ({xv}): its {cap!r} schema is v{version}, this "
                    f"xrm ({__version__}) knows v{known.get(cap, 0)}. Upgrade xrm (pip install -U xrm)"
                )
        if set(tables) != set(expected):
            problems.append(f"tables {sorted(set(tables) ^ set(expected))} differ from the manifest")
        found = _digests(con, db, [t for t in tables if t in expected])
        for t, (n, digest) in found.items():
            if (n, digest) != expected[t]:
                problems.append(f"table {t}: {n} rows, digest {digest}; manifest says {expected[t][0]} "
                                f"rows, digest {expected[t][1]}")
        if problems:
            raise StoreVersionError(
                f"{shown} does not match its manifest (changed or damaged after `xrm backup`): "
                + "; ".join(problems[:5]) + ". Use another backup"
            )
    except duckdb.Error as exc:
        raise StoreVersionError(
            f"{shown} cannot be read as an xrm backup ({str(exc).splitlines()[0]}); use another backup"
        ) from None
    finally:
        con.close()
    return BackupInfo(
        str(path), str(created), str(xv), str(source), schemas,
        {t: n for t, (n, _) in expected.items()}, {t: d for t, (_, d) in expected.items()},
        time.perf_counter() - started, path.stat().st_size, encrypted,
    )


def _refuse_if_running(target: Path) -> None:
    """StoreBusy when a process holds ``target`` (a running server): never replace it under it."""
    if not target.exists():
        return
    try:
        con = duckdb.connect(str(target), read_only=True, config={"memory_limit": "256MB"})
    except duckdb.Error as exc:
        if "lock" in str(exc).lower() or "conflict" in str(exc).lower():
            raise StoreBusy(
                f"store {target} is open in a running process (e.g. `xrm serve`); stop it, then "
                f"restore (a restore never replaces a store under a running server)"
            ) from None
        return  # an unreadable (or encrypted) old file: replacing it is what a restore is for
    con.close()


def restore_store(
    src: Path, target: Path, *, force: bool = False, key: str | None = None, unsafe_crypto: bool = False
) -> BackupInfo:
    """Put the backup ``src`` in place as the store ``target``, after verifying it.

    ``target`` must not exist unless ``force``; it must not be held by a running process. With
    ``key`` (store_encryption_key) the restored store is encrypted with it: an encrypted backup
    needs it to be read, a plain one is encrypted on the way in."""
    src, target = Path(src).absolute(), Path(target).absolute()
    if src == target:
        raise StoreError(f"{src} is both the backup and the store; restore into another path")
    if target.exists() and not force:
        raise StoreError(
            f"store {target} exists; pass --force to replace it with the backup (stop `xrm serve` first)"
        )
    _refuse_if_running(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.restore")
    try:
        shutil.copyfile(src, part)
        info = verify_backup(part, label=src, key=key)  # the copy is checked: it becomes the store
        file_key = key if info.encrypted else None
        con = connect_file(part, key=file_key, config={"memory_limit": "1GB"}, unsafe_crypto=unsafe_crypto)
        try:
            con.execute(f"DROP TABLE {MANIFEST_TABLE}")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if key is not None and not info.encrypted:  # a plain backup into an encrypted store
            from xrm.store._compact import rewrite_store

            rewrite_store(part, key_in=None, key_out=key, unsafe_crypto=unsafe_crypto)
            info.encrypted = True
        _refuse_if_running(target)
        target.with_name(target.name + ".wal").unlink(missing_ok=True)  # belongs to the old file
        os.replace(part, target)
    finally:
        for leftover in (part, part.with_name(part.name + ".wal")):
            leftover.unlink(missing_ok=True)
    info.path = str(target)
    info.seconds = time.perf_counter() - started
    info.bytes = target.stat().st_size
    return info
