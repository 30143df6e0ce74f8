"""A large store made cheaply: a store's customers copied ``times`` over with new ids, in SQL.

Generating and resolving a million customers takes hours; the console's speed on a large store
needs only the tables it reads to be that large, with every copy a consistent person of its own.
Copy ``k`` (0 is the original) of a row gets ``id~k`` for every text id (message, user, anonymous,
record ids ...), ``profile_id + k * offset`` for profile ids, and the same for profile ids used as
text keys (value, needs, recommendations, network parties); one value maps the same way in every
table, so a copied customer's 360 shows their own copied rows.

The copy is a fresh file, not the source copied and appended to: each table is created from the
source's DDL (keys and defaults included) and filled by one ``INSERT ... SELECT`` over
``range(times)``; secondary indexes are built once at the end, sequences start past the copied
keys, views are created again. The earlier append into a copy of the store took 26 minutes for
×10 of the 20,000-customer sample under load (every insert kept the old file's key indexes up).

    >>> grow_store(Path("i20k.duckdb"), Path("i1m.duckdb"), 32)  # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["GROWN_TABLES", "grow_store"]

# table -> {column: "text" (a text id or key) | "profile" (a profile id) | "seq" (a sequence number)};
# other columns are copied (names, addresses, JSON: a copy is a namesake). Every table that names a
# customer (the GDPR export's KEYED list) is here, with every column the export follows to identifiers.
GROWN_TABLES: dict[str, dict[str, str]] = {
    # ingest
    "events": {"message_id": "text", "user_id": "text", "anonymous_id": "text", "previous_id": "text"},
    "order_lines": {"message_id": "text"},
    "records": {"record_id": "text", "source_key": "text", "user_id": "text", "account_id": "text",
                "loyalty_card": "text", "email": "text", "phone": "text"},
    # identify
    "event_profiles": {"message_id": "text", "profile_id": "profile"},
    "profiles": {"profile_id": "profile", "merged_into": "profile"},
    "identifiers": {"id_value": "text", "profile_id": "profile"},
    "profile_evidence": {"profile_id": "profile", "id_value": "text"},
    "identity_links": {"value_a": "text", "value_b": "text", "occurrence": "text"},
    "normalized_records": {"record_id": "text", "user_id": "text", "account_id": "text",
                           "loyalty_card": "text", "email": "text", "phone": "text"},
    "profile_records": {"record_id": "text", "profile_id": "profile"},
    "golden_records": {"profile_id": "profile", "record_id": "text"},
    "identity_activity": {"profile_id": "profile", "id_value": "text"},
    "merge_log": {"log_id": "seq", "profile_id": "profile", "other_profile_id": "profile"},
    "linkage_pairs": {"record_a": "text", "record_b": "text"},
    "review_queue": {"record_a": "text", "record_b": "text"},
    # differentiate
    "customer_value": {"customer_id": "text"},
    "customer_value_history": {"customer_id": "text"},
    "customer_needs": {"customer_id": "text"},
    "purchase_summaries": {"customer_id": "text"},
    "needs_state": {"customer_id": "text"},
    "needs_state_categories": {"customer_id": "text"},
    "trait_changes": {"customer_id": "text"},
    # customize
    "recommendations": {"customer": "text"},
    "purchase_cycles": {"customer": "text"},
    "configurations": {"customer": "text"},
    "decisions": {"decision_id": "text", "customer": "text"},
    "decision_items": {"decision_id": "text"},
    "responses": {"response_id": "text", "decision_id": "text", "customer": "text"},
    # interact
    "consents": {"seq": "seq", "customer": "text", "event_message_id": "text"},
    "campaign_members": {"customer": "text", "message_id": "text"},
    "messages": {"message_id": "text", "customer": "text", "customer_key": "text", "attempt_id": "text"},
    "delivery_attempts": {"attempt_id": "text", "message_id": "text"},
    # network
    "parties": {"party_id": "text"},
    "relationships": {"src": "text", "dst": "text"},
    "handles": {"handle": "text", "party_id": "text"},
    "posts": {"post_id": "text", "author_handle": "text", "reply_to": "text"},
    "network_traits": {"party_id": "text"},
}


def _expr(column: str, kind: str, offset: int, seq_offset: int) -> str:
    c, k = f'b."{column}"', "r.grow_copy"
    if kind == "profile":
        return f"{c} + {k} * {offset}"
    if kind == "seq":
        return f"{c} + {k} * {seq_offset}"
    # a profile id used as a text key moves like a profile id; any other id gets a suffix
    return (f"CASE WHEN {k} = 0 THEN {c} WHEN TRY_CAST({c} AS BIGINT) BETWEEN 0 AND {offset - 1} "
            f"THEN CAST(TRY_CAST({c} AS BIGINT) + {k} * {offset} AS VARCHAR) ELSE {c} || '~' || {k} END")


def grow_store(
    src: Path, dst: Path, times: int, *, memory_limit: str = "3GB", threads: int = 2,
    log: Callable[[str], None] | None = None,
) -> str:
    """Write ``dst`` (replaced if there): the store ``src`` with its customers ``times`` over;
    returns a summary line. ``log`` gets one line per table with its seconds."""
    import duckdb

    if times < 2:
        raise ValueError(f"times = {times}: give 2 or more (1 is the store itself)")
    if Path(dst).resolve() == Path(src).resolve():
        raise ValueError(f"grow_store: dst {dst} is the source; give a new path")
    start = time.perf_counter()
    for stale in (Path(dst), Path(f"{dst}.wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(dst), config={"memory_limit": memory_limit, "threads": threads})
    try:
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{src}' AS base (READ_ONLY)")

        def meta(sql: str) -> list[tuple[Any, ...]]:
            return con.execute(sql.replace("WHERE", "WHERE database_name = 'base' AND", 1)).fetchall()

        (offset,), = con.execute("SELECT coalesce(max(profile_id), 0) + 1 FROM base.profiles").fetchall()
        columns: dict[str, list[str]] = {}
        for table, column in meta("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = "
                                  "'main' ORDER BY table_name, column_index"):
            columns.setdefault(str(table), []).append(str(column))
        for table, mapping in GROWN_TABLES.items():
            missing = sorted(set(mapping) - set(columns.get(table, mapping)))
            if missing:
                raise ValueError(f"grow_store: {src} table {table} has no column {', '.join(missing)}; "
                                 f"update GROWN_TABLES in bench/_grow.py to the store's schema")
        seq_offset = {t: int(con.execute(f'SELECT coalesce(max("{c}"), 0) + 1 FROM base."{t}"')
                             .fetchall()[0][0])
                      for t, m in GROWN_TABLES.items() if t in columns
                      for c, kind in m.items() if kind == "seq"}
        # sequences first (tables' defaults name them), starting past the rows copied below
        owner = {re.sub(r"^nextval\('([^']+)'\)$", r"\1", str(d)): (str(t), str(c)) for t, c, d in meta(
            "SELECT table_name, column_name, column_default FROM duckdb_columns() "
            "WHERE column_default LIKE 'nextval(%'")}
        for name, start_value, last in meta("SELECT sequence_name, start_value, last_value "
                                            "FROM duckdb_sequences() WHERE true"):
            nxt = int(last) + 1 if last is not None else int(str(start_value))
            t, _ = owner.get(str(name), ("", ""))
            if t in seq_offset:
                nxt = max(nxt, times * seq_offset[t])
            con.execute(f'CREATE SEQUENCE "{name}" START {nxt}')
        for table, sql in meta("SELECT table_name, sql FROM duckdb_tables() WHERE schema_name = 'main' "
                               "ORDER BY table_name"):
            t0 = time.perf_counter()
            con.execute(str(sql))
            if str(table) not in GROWN_TABLES:
                con.execute(f'INSERT INTO "{table}" SELECT * FROM base."{table}"')
            else:
                mapping = GROWN_TABLES[str(table)]
                off = seq_offset.get(str(table), 0)
                select = ", ".join(_expr(c, mapping[c], offset, off) if c in mapping else f'b."{c}"'
                                   for c in columns[str(table)])
                con.execute(f'INSERT INTO "{table}" SELECT {select} FROM base."{table}" b, '
                            f"range({times}) r(grow_copy)")
                # written out, a table's key index may leave memory, so that only the one being built
                # must fit (the ×32 build of the 20k sample reached 2.9 GB RSS on event_profiles'
                # key over 32M events)
                con.execute("CHECKPOINT")
            if log:
                log(f"{table}: {time.perf_counter() - t0:.1f} s")
        for name, sql in meta("SELECT index_name, sql FROM duckdb_indexes() WHERE true"):
            t0 = time.perf_counter()
            con.execute(str(sql))
            con.execute("CHECKPOINT")
            if log:
                log(f"index {name}: {time.perf_counter() - t0:.1f} s")
        for (sql,) in meta("SELECT sql FROM duckdb_views() WHERE NOT internal"):
            con.execute(str(sql))
        con.execute("DETACH base")
        con.execute("CHECKPOINT")
        (profiles,), = con.execute("SELECT count(*) FROM profiles WHERE status = 'active'").fetchall()
        (events,), = con.execute("SELECT count(*) FROM events").fetchall()
    finally:
        con.close()
    return (f"the store's customers copied ×{times} with new ids in SQL (bench/_grow.py): "
            f"{profiles:,} active profiles, {events:,} events, built in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4:
        sys.exit("usage: python -m bench._grow SRC.duckdb DST.duckdb TIMES")
    print(grow_store(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]),
                     log=lambda line: print(line, file=sys.stderr, flush=True)))
