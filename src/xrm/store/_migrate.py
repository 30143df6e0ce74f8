"""Versioned migrations: upgrade a store written by an older xrm, refuse one from a newer xrm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from xrm.exceptions import StoreVersionError
from xrm.store._schema import Schema

__all__ = ["META_TABLE", "migrate", "schema_versions"]

META_TABLE = "xrm_meta"

_META_DDL = f"""
CREATE TABLE IF NOT EXISTS {META_TABLE} (
    capability VARCHAR PRIMARY KEY,
    version INTEGER NOT NULL,
    xrm_version VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
)
"""


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {r[0] for r in rows}


def schema_versions(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """Capability -> (schema version, xrm version that wrote it), as recorded in the store."""
    if META_TABLE not in _tables(con):
        return {}
    rows = con.execute(f"SELECT capability, version, xrm_version FROM {META_TABLE}").fetchall()
    return {cap: (int(ver), str(xv)) for cap, ver, xv in rows}


def migrate(
    con: duckdb.DuckDBPyConnection,
    schemas: Sequence[Schema],
    path: Path | str,
    xrm_version: str,
    *,
    read_only: bool = False,
) -> list[str]:
    """Bring the store up to ``schemas``; returns what was applied, e.g. ``['ingest v1']``."""
    tables = _tables(con)
    if tables and META_TABLE not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise StoreVersionError(
            f"{path} is a DuckDB database but not an xrm store (it has tables {shown} and no "
            f"{META_TABLE}); point store_path at a new file or at an xrm store"
        )
    recorded = schema_versions(con)
    known = {s.capability: s for s in schemas}
    for cap, (version, writer) in sorted(recorded.items()):
        schema = known.get(cap)
        if schema is None or version > schema.latest:
            mine = f"v{schema.latest}" if schema else "nothing"
            raise StoreVersionError(
                f"{path} was written by a newer xrm ({writer}): its {cap!r} schema is v{version}, "
                f"this xrm ({xrm_version}) knows {mine}. Upgrade xrm (pip install -U xrm) "
                f"or use another store_path"
            )
    pending = [
        (schema, m)
        for schema in schemas
        for m in schema.migrations
        if m.version > recorded.get(schema.capability, (0, ""))[0]
    ]
    if not pending:
        return []
    if read_only:
        raise StoreVersionError(
            f"{path} needs {len(pending)} migration(s) but was opened read-only; "
            f"open it once for writing (e.g. `xrm info`) to upgrade it"
        )
    applied = []
    con.execute(_META_DDL)
    for schema, m in pending:
        # One transaction per step: a killed upgrade leaves the store at the last whole version.
        con.execute("BEGIN TRANSACTION")
        try:
            m.run(con)
            con.execute(
                f"INSERT OR REPLACE INTO {META_TABLE} (capability, version, xrm_version) "
                "VALUES (?, ?, ?)",
                [schema.capability, m.version, xrm_version],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(f"{schema.capability} v{m.version}")
    return applied
