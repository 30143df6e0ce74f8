"""Occurrences: each record and each event, with the identifiers seen in it (DuckDB temp tables).

After :func:`build_occurrences` the cursor holds

- ``nodes(node, id_type, id_value, prio, first_seen, last_seen, n_seen)``: glue identifiers and
  records, numbered so that a lower ``node`` means a higher priority;
- ``occ_nodes(occ, kind, ts, node)``: which nodes each record / event holds;
- ``occ_anchor(occ, kind, ts, anchor)``: the highest-priority node of each occurrence (it decides
  the occurrence's profile);
- ``evidence(occ, id_type, id_value)``: non-glue identifiers (e-mail, phone) per occurrence;
- ``rejected(id_type, id_value, reason, n_seen)``: values refused as identifiers.
"""

from __future__ import annotations

from typing import Any

from xrm.identify._identifiers import blocked_reason_sql, id_value_sql
from xrm.identify._records import build_phone_map
from xrm.identify._rules import RECORD_TYPE, IdentityRules
from xrm.identify._text import sql_str

__all__ = ["RECORD_COLUMNS", "build_occurrences"]

# Identifier types that are columns of `records` (ingest's schema).
RECORD_COLUMNS = ("user_id", "account_id", "loyalty_card", "email", "phone")
_EPOCH = "TIMESTAMP '1970-01-01'"


def _raw_sql(rules: IdentityRules) -> str:
    """Every identifier value as seen, one row each: (occ, kind, ts, id_type, raw, region)."""
    parts = []
    rec_ts = f"coalesce(updated_at, {_EPOCH})"
    region = (
        f"CASE WHEN length(trim(country)) = 2 THEN upper(trim(country)) "
        f"ELSE {sql_str(rules.default_region)} END"
    )
    for col in RECORD_COLUMNS:
        if col in rules.types:
            parts.append(
                f"SELECT 'record:' || record_id AS occ, 'record' AS kind, {rec_ts} AS ts, "
                f"'{col}' AS id_type, CAST({col} AS VARCHAR) AS raw, {region} AS region "
                f"FROM records WHERE {col} IS NOT NULL"
            )
    ev = "SELECT 'event:' || message_id AS occ, 'event' AS kind, ts, "
    dr = sql_str(rules.default_region)
    parts.append(f"{ev} 'user_id', user_id, {dr} FROM events WHERE user_id IS NOT NULL")
    parts.append(f"{ev} 'anonymous_id', anonymous_id, {dr} FROM events WHERE anonymous_id IS NOT NULL")
    # alias: previousId is typed below (a user id if seen as one anywhere, else an anonymous id).
    parts.append(
        f"{ev} '?previous', previous_id, {dr} FROM events "
        f"WHERE type = 'alias' AND previous_id IS NOT NULL"
    )
    # Traits come from `event_traits` (_TRAITS: each event's JSON parsed once), not from a parse
    # of every event's context per identifier type.
    for trait, id_type in sorted(rules.event_trait_identifiers.items()):
        path = sql_str(f"$.{trait}")
        parts.append(
            f"{ev} '{id_type}', coalesce(json_extract_string(traits, {path}), "
            f"json_extract_string(ctraits, {path})), {dr} FROM event_traits"
        )
    return " UNION ALL ".join(parts)


# The events that carry traits (in `traits` or in `context.traits`), the latter parsed once:
# most events have neither, and `context`, present on nearly all, was parsed once per type.
_TRAITS = """
    CREATE OR REPLACE TEMP TABLE event_traits AS
    SELECT message_id, ts, traits, ctraits
    FROM (SELECT message_id, ts, traits, json_extract(context, '$.traits') AS ctraits
          FROM events WHERE traits IS NOT NULL OR context IS NOT NULL)
    WHERE traits IS NOT NULL OR ctraits IS NOT NULL
"""


def build_occurrences(cur: Any, rules: IdentityRules) -> dict[str, int]:
    """Build the temp tables of the module docstring; returns their counts.

    The intermediate tables (one row per identifier seen, several per event) are dropped once the
    next is built: kept to the end, they held most of the step's memory (issue 9's profile).
    """
    if rules.event_trait_identifiers:
        cur.execute(_TRAITS)
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_ids AS SELECT * FROM ({_raw_sql(rules)}) WHERE raw IS NOT NULL"
    )
    cur.execute("DROP TABLE IF EXISTS event_traits")
    has_phone = "phone" in rules.types
    if has_phone:
        build_phone_map(cur, rules, "SELECT raw, region FROM raw_ids WHERE id_type = 'phone'")
    value_cases = []
    for t in rules.types:
        if t == "phone":
            continue
        value_cases.append(f"WHEN '{t}' THEN {id_value_sql(rules, t, 'r.raw')}")
    value = "CASE r.id_type " + " ".join(value_cases) + " ELSE p.e164 END"
    phone_join = (
        "LEFT JOIN phone_map p ON r.id_type = 'phone' AND p.raw = r.raw AND p.region = r.region"
        if has_phone
        else "LEFT JOIN (SELECT NULL AS raw, NULL AS region, NULL AS e164, NULL AS reason) p ON false"
    )
    blocked_cases = " ".join(
        f"WHEN '{t}' THEN {blocked_reason_sql(rules, t, 'id_value')}" for t in rules.types
    )
    # Raw values to checked ones in one statement. An alias's previousId is a user id if seen as
    # one anywhere, else an anonymous id.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ids_checked AS
        WITH typed AS (
            SELECT occ, kind, ts, raw, region,
                   CASE WHEN id_type <> '?previous' THEN id_type
                        WHEN raw IN (SELECT raw FROM raw_ids WHERE id_type = 'user_id') THEN 'user_id'
                        ELSE 'anonymous_id' END AS id_type
            FROM raw_ids
        ), ids AS (
            SELECT r.occ, r.kind, r.ts, r.id_type, r.raw, {value} AS id_value, p.reason AS phone_reason
            FROM typed r {phone_join}
        )
        SELECT *, CASE WHEN id_value IS NULL THEN coalesce(phone_reason,
                    '''' || raw || ''' is not a valid ' || id_type)
                  ELSE CASE id_type {blocked_cases} END END AS reason
        FROM ids
        """
    )
    cur.execute("DROP TABLE IF EXISTS raw_ids")
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE rejected AS
        SELECT id_type, coalesce(id_value, trim(raw)) AS id_value, any_value(reason) AS reason,
               count(*) AS n_seen
        FROM ids_checked WHERE reason IS NOT NULL AND trim(raw) <> ''
        GROUP BY ALL
        """
    )
    glue = rules.glue_types
    prio_cases = " ".join(f"WHEN '{t}' THEN {rules.rule(t).priority}" for t in glue)
    glue_list = ", ".join(f"'{t}'" for t in glue)
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE occ_ids AS
        SELECT occ, kind, ts, id_type, id_value, CASE id_type {prio_cases} END AS prio
        FROM ids_checked WHERE reason IS NULL AND id_type IN ({glue_list})
        UNION ALL
        SELECT 'record:' || record_id, 'record', coalesce(updated_at, {_EPOCH}),
               '{RECORD_TYPE}', record_id, {rules.rule(RECORD_TYPE).priority}
        FROM records
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE nodes AS
        SELECT (row_number() OVER (ORDER BY prio, id_type, id_value) - 1)::INTEGER AS node,
               id_type, id_value, prio, first_seen, last_seen, n_seen
        FROM (SELECT id_type, id_value, any_value(prio) AS prio, min(ts) AS first_seen,
                     max(ts) AS last_seen, count(*) AS n_seen
              FROM occ_ids GROUP BY id_type, id_value)
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE occ_nodes AS
        SELECT DISTINCT o.occ, o.kind, o.ts, n.node
        FROM occ_ids o JOIN nodes n USING (id_type, id_value)
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE occ_anchor AS
        SELECT occ, any_value(kind) AS kind, min(ts) AS ts, min(node) AS anchor
        FROM occ_nodes GROUP BY occ
        """
    )
    evidence = rules.evidence_types
    ev_list = ", ".join(f"'{t}'" for t in evidence) or "NULL"
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE evidence AS
        SELECT occ, id_type, id_value FROM ids_checked
        WHERE reason IS NULL AND id_type IN ({ev_list})
        """
    )
    cur.execute("DROP TABLE IF EXISTS ids_checked")
    cur.execute("DROP TABLE IF EXISTS occ_ids")
    (n_nodes,), = cur.execute("SELECT count(*) FROM nodes").fetchall()
    (n_occ,), = cur.execute("SELECT count(*) FROM occ_anchor").fetchall()
    (n_rej,), = cur.execute("SELECT count(*) FROM rejected").fetchall()
    return {"nodes": int(n_nodes), "occurrences": int(n_occ), "rejected_values": int(n_rej)}
