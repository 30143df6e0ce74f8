"""Loading parties, relationships and handles from files into the store.

>>> from xrm.network import load_relationships
>>> load_relationships(store, "partners.csv").rows_loaded  # doctest: +SKIP
42
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xrm.network._files import LoadReport, handle_row, load_rows, party_row, relationship_row
from xrm.store import Store

__all__ = ["insert_arrow", "load_handles", "load_parties", "load_relationships"]

_REL_COLS = ("src", "dst", "rel_type", "weight", "ts", "origin", "source", "evidence")
_PARTY_COLS = ("party_id", "kind", "roles", "name", "origin", "source")
_HANDLE_COLS = ("platform", "handle", "party_id", "source")


def insert_arrow(
    store: Store, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], *, replace: bool = True
) -> None:
    """Bulk insert ``rows`` through Arrow (fast for millions of rows); replaces rows on the key."""
    import pyarrow as pa

    data = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    cur = store.con.cursor()
    try:
        cur.register("_xrm_rows", data)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        cols = ", ".join(columns)
        cur.execute(f"{verb} INTO {table} ({cols}) SELECT {cols} FROM _xrm_rows")
        cur.unregister("_xrm_rows")
    finally:
        cur.close()


def load_relationships(store: Store, path: Path | str) -> LoadReport:
    """Typed relationships from CSV/JSONL: src, dst, rel_type, [weight, ts, source, evidence]."""
    return load_rows(
        store,
        path,
        "relationships",
        relationship_row,
        key=lambda r: (r[0], r[1], r[2], r[6]),
        insert=lambda s, rows: insert_arrow(s, "relationships", _REL_COLS, rows),
    )


def load_parties(store: Store, path: Path | str) -> LoadReport:
    """Parties from CSV/JSONL: party_id, [kind, roles, name]; roles separated by ',' or ';'."""
    return load_rows(
        store,
        path,
        "parties",
        party_row,
        key=lambda r: r[0],
        insert=lambda s, rows: insert_arrow(s, "parties", _PARTY_COLS, rows),
    )


def load_handles(store: Store, path: Path | str) -> LoadReport:
    """Handle -> party links from CSV/JSONL: handle, party_id, [platform] ('*' = any platform)."""
    return load_rows(
        store,
        path,
        "handles",
        handle_row,
        key=lambda r: (r[0], r[1]),
        insert=lambda s, rows: insert_arrow(s, "handles", _HANDLE_COLS, rows),
    )
