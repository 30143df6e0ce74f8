"""A large store made cheaply: the sample store's customers copied ``times`` over with new ids, in SQL.

Generating and resolving a million customers takes hours; the console's speed on a large store
needs only the tables it reads to be that large, with every copy a consistent person of its own.
Copy ``k`` of a row gets ``id~k`` for every text id (message, user, anonymous, record ids ...),
``profile_id + k * offset`` for profile ids, and the same for profile ids used as text keys
(value, needs, recommendations, network parties). Secondary indexes are dropped first and built
again at the end (one bulk build each, instead of upkeep row by row).

    >>> grow_store(Path("s20k.duckdb"), Path("s1m.duckdb"), 50)  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

__all__ = ["GROWN_TABLES", "grow_store"]

# table -> {column: "text" (a text id or key) | "profile" (a profile id)}; other columns are copied.
GROWN_TABLES: dict[str, dict[str, str]] = {
    "events": {"message_id": "text", "user_id": "text", "anonymous_id": "text", "previous_id": "text"},
    "order_lines": {"message_id": "text"},
    "event_profiles": {"message_id": "text", "profile_id": "profile"},
    "profiles": {"profile_id": "profile", "merged_into": "profile"},
    "identifiers": {"id_value": "text", "profile_id": "profile"},
    "profile_evidence": {"profile_id": "profile", "id_value": "text"},
    "identity_links": {"value_a": "text", "value_b": "text", "occurrence": "text"},
    "records": {"record_id": "text", "source_key": "text", "user_id": "text", "account_id": "text",
                "loyalty_card": "text"},
    "normalized_records": {"record_id": "text", "user_id": "text", "account_id": "text",
                           "loyalty_card": "text"},
    "profile_records": {"record_id": "text", "profile_id": "profile"},
    "golden_records": {"profile_id": "profile", "record_id": "text"},
    "consents": {"seq": "seq", "customer": "text", "event_message_id": "text"},
    "customer_value": {"customer_id": "text"},
    "customer_needs": {"customer_id": "text"},
    "purchase_summaries": {"customer_id": "text"},
    "recommendations": {"customer": "text"},
    "purchase_cycles": {"customer": "text"},
    "parties": {"party_id": "text"},
    "relationships": {"src": "text", "dst": "text"},
    "network_traits": {"party_id": "text"},
}


def _expr(column: str, kind: str, offset: int, seq_offset: int) -> str:
    c = f'"{column}"'
    if kind == "profile":
        return f"{c} + k * {offset}"
    if kind == "seq":
        return f"{c} + k * {seq_offset}"
    # a profile id used as a text key moves like a profile id; any other id gets a suffix
    return (f"CASE WHEN TRY_CAST({c} AS BIGINT) BETWEEN 0 AND {offset - 1} "
            f"THEN CAST(TRY_CAST({c} AS BIGINT) + k * {offset} AS VARCHAR) ELSE {c} || '~' || k END")


def grow_store(src: Path, dst: Path, times: int, *, memory_limit: str = "4GB", threads: int = 2) -> str:
    """Write ``dst``: the store ``src`` with its customers ``times`` over; returns a summary line."""
    import duckdb

    if times < 2:
        raise ValueError(f"times = {times}: give 2 or more (1 is the store itself)")
    start = time.perf_counter()
    shutil.copy(src, dst)
    con = duckdb.connect(str(dst), config={"memory_limit": memory_limit, "threads": threads})
    try:
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{src}' AS base (READ_ONLY)")
        (offset,), = con.execute("SELECT coalesce(max(profile_id), 0) + 1 FROM profiles").fetchall()
        (seq_offset,), = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM consents").fetchall()
        indexes = con.execute(
            "SELECT index_name, sql FROM duckdb_indexes() WHERE database_name = current_database() "
            "AND table_name IN (SELECT unnest(?))", [sorted(GROWN_TABLES)]).fetchall()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for table, mapping in GROWN_TABLES.items():
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                "AND table_name = ? ORDER BY column_index", [table]).fetchall()]
            select = ", ".join(_expr(c, mapping[c], offset, seq_offset) if c in mapping else f'"{c}"'
                               for c in cols)
            con.execute(f'INSERT INTO "{table}" SELECT {select} FROM base."{table}", '
                        f"range(1, {times}) r(k)")
        con.execute("DETACH base")
        for _, sql in indexes:
            con.execute(sql)
        con.execute("CHECKPOINT")
        (profiles,), = con.execute("SELECT count(*) FROM profiles WHERE status = 'active'").fetchall()
        (events,), = con.execute("SELECT count(*) FROM events").fetchall()
    finally:
        con.close()
    return (f"the sample store's customers copied ×{times} with new ids in SQL (bench/_grow.py): "
            f"{profiles:,} active profiles, {events:,} events, built in {time.perf_counter() - start:.0f} s")
