"""Questions to DuckDB's catalogue that several rooms ask: does a table exist, what are its indexes."""

from __future__ import annotations

from typing import Any

__all__ = ["index_sql", "table_exists"]


def table_exists(cur: Any, table: str) -> bool:
    """A table of that name in the main schema."""
    return bool(cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [table]
    ).fetchall()[0][0])


def index_sql(cur: Any, table: str) -> list[str]:
    """The ``CREATE INDEX`` statements of ``table``'s indexes (not its key), in name order."""
    rows = cur.execute(
        "SELECT sql FROM duckdb_indexes() WHERE schema_name = 'main' AND table_name = ? ORDER BY index_name",
        [table],
    ).fetchall()
    return [r[0] for r in rows if r[0]]
