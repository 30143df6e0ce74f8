"""Occurrences: each record and each group of alike events, with the identifiers seen in it.

An occurrence is a record, or the events that carry the same identifier values (user id,
anonymous id, an alias's previousId and the trait identifiers: an event's *signature*). Events of
one signature hold the same identifiers, so they make the same links and belong to the same
profile; the graph needs them once, with how many there were, when the first was seen (the
link's evidence: its ``(ts, 'event:' || message_id)``) and when the last. The sample business
has about ten events per signature, so the graph's tables are that much smaller than one row
per event (issue 9: at 300k customers they filled DuckDB's memory_limit).

After :func:`build_occurrences` the cursor holds (``oid``: an occurrence's rank by ``(ts, occ)``,
so that the smallest ``oid`` is the first sighting)

- ``occs(oid, kind, occ, ts, last_ts, n)``: every occurrence; ``occ`` is the first event's
  ``'event:' || message_id`` (or ``'record:' || record_id``), ``n`` its events;
- ``ev_sig(oid, u, a, p, t0, t1, ...)``: the signature of each event occurrence
  (:func:`event_signature_sql` gives an event's, to map events back to it);
- ``nodes(node, id_type, id_value, prio, first_seen, last_seen, n_seen)``: glue identifiers and
  records, numbered so that a lower ``node`` means a higher priority;
- ``occ_nodes(oid, node)``: which nodes each occurrence holds;
- ``occ_anchor(oid, kind, anchor)``: the highest-priority node of each occurrence (it decides
  the occurrence's profile);
- ``evidence(oid, id_type, id_value)``: non-glue identifiers (e-mail, phone) per occurrence;
- ``rejected(id_type, id_value, reason, n_seen)``: values refused as identifiers.
"""

from __future__ import annotations

from typing import Any

from xrm.identify._identifiers import blocked_reason_sql, id_value_sql
from xrm.identify._records import build_phone_map
from xrm.identify._rules import RECORD_TYPE, IdentityRules
from xrm.identify._text import sql_str

__all__ = ["RECORD_COLUMNS", "build_occurrences", "event_signature_sql", "signature_columns"]

# Identifier types that are columns of `records` (ingest's schema).
RECORD_COLUMNS = ("user_id", "account_id", "loyalty_card", "email", "phone")
_EPOCH = "TIMESTAMP '1970-01-01'"


def _traits(rules: IdentityRules) -> list[tuple[str, str]]:
    return sorted(rules.event_trait_identifiers.items())


def signature_columns(rules: IdentityRules) -> list[str]:
    """The columns of an event's signature: ``u``, ``a``, ``p`` and one ``t<i>`` per trait."""
    return ["u", "a", "p", *(f"t{i}" for i in range(len(_traits(rules))))]


def event_signature_sql(rules: IdentityRules) -> str:
    """``SELECT message_id, ts, <signature columns> FROM events``: every event's raw identifiers.

    Traits are read from ``traits`` and, failing that, from ``context.traits``, each JSON parsed
    once for all trait paths (a list of paths).
    """
    traits = _traits(rules)
    if not traits:
        return (
            "SELECT message_id, ts, user_id AS u, anonymous_id AS a, "
            "CASE WHEN type = 'alias' THEN previous_id END AS p FROM events"
        )
    paths = "[" + ", ".join(sql_str(f"$.{trait}") for trait, _ in traits) + "]"
    picks = ", ".join(f"coalesce(tv[{i + 1}], cv[{i + 1}]) AS t{i}" for i in range(len(traits)))
    return (
        f"SELECT message_id, ts, u, a, p, {picks} FROM ("
        f"SELECT message_id, ts, user_id AS u, anonymous_id AS a, "
        f"CASE WHEN type = 'alias' THEN previous_id END AS p, "
        f"json_extract_string(traits, {paths}) AS tv, "
        f"json_extract_string(json_extract(context, '$.traits'), {paths}) AS cv FROM events)"
    )


def _occurrences_sql(rules: IdentityRules) -> tuple[str, str]:
    """(the signatures, grouped; every occurrence ranked by first sighting)."""
    cols = ", ".join(signature_columns(rules))
    sigs = (
        f"CREATE OR REPLACE TEMP TABLE ev_sig_raw AS "
        f"SELECT {cols}, min({{'ts': ts, 'id': message_id}}) AS first, max(ts) AS last_ts, "
        f"count(*) AS n FROM ({event_signature_sql(rules)}) GROUP BY ALL"
    )
    rec_ts = f"coalesce(updated_at, {_EPOCH})"
    # `src` points back at the signature (ev_sig_raw's rowid) or the record.
    occs = f"""
        CREATE OR REPLACE TEMP TABLE occs AS
        SELECT (row_number() OVER (ORDER BY ts, occ))::BIGINT AS oid, kind, occ, ts, last_ts, n,
               sig, record_id
        FROM (SELECT 'event' AS kind, 'event:' || first.id AS occ, first.ts AS ts, last_ts, n,
                     rowid AS sig, NULL::VARCHAR AS record_id FROM ev_sig_raw
              UNION ALL
              SELECT 'record', 'record:' || record_id, {rec_ts}, {rec_ts}, 1, NULL, record_id
              FROM records)
    """
    return sigs, occs


def _raw_sql(rules: IdentityRules) -> str:
    """Every identifier value of every occurrence, one row each: (oid, id_type, raw, region)."""
    parts = []
    region = (
        f"CASE WHEN length(trim(r.country)) = 2 THEN upper(trim(r.country)) "
        f"ELSE {sql_str(rules.default_region)} END"
    )
    rec = "FROM occs o JOIN records r ON o.kind = 'record' AND r.record_id = o.record_id"
    for col in RECORD_COLUMNS:
        if col in rules.types:
            parts.append(
                f"SELECT o.oid, '{col}' AS id_type, CAST(r.{col} AS VARCHAR) AS raw, {region} AS region "
                f"{rec} WHERE r.{col} IS NOT NULL"
            )
    dr = sql_str(rules.default_region)
    ev = "FROM ev_sig"
    parts.append(f"SELECT oid, 'user_id', u, {dr} {ev} WHERE u IS NOT NULL")
    parts.append(f"SELECT oid, 'anonymous_id', a, {dr} {ev} WHERE a IS NOT NULL")
    # alias: previousId is typed below (a user id if seen as one anywhere, else an anonymous id).
    parts.append(f"SELECT oid, '?previous', p, {dr} {ev} WHERE p IS NOT NULL")
    for i, (_, id_type) in enumerate(_traits(rules)):
        parts.append(f"SELECT oid, '{id_type}', t{i}, {dr} {ev} WHERE t{i} IS NOT NULL")
    return " UNION ALL ".join(parts)


def build_occurrences(cur: Any, rules: IdentityRules) -> dict[str, int]:
    """Build the temp tables of the module docstring; returns their counts.

    The intermediate tables are dropped once the next is built: kept to the end, they held most
    of the step's memory (issue 9's profile).
    """
    sigs, occs = _occurrences_sql(rules)
    cur.execute(sigs)
    cur.execute(occs)
    cols = ", ".join(f"s.{c}" for c in signature_columns(rules))
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE ev_sig AS SELECT o.oid, {cols} "
        f"FROM occs o JOIN ev_sig_raw s ON o.kind = 'event' AND s.rowid = o.sig"
    )
    cur.execute("DROP TABLE IF EXISTS ev_sig_raw")
    cur.execute(f"CREATE OR REPLACE TEMP TABLE raw_ids AS SELECT * FROM ({_raw_sql(rules)})")
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
            SELECT oid, raw, region,
                   CASE WHEN id_type <> '?previous' THEN id_type
                        WHEN raw IN (SELECT raw FROM raw_ids WHERE id_type = 'user_id') THEN 'user_id'
                        ELSE 'anonymous_id' END AS id_type
            FROM raw_ids
        ), ids AS (
            SELECT r.oid, r.id_type, r.raw, {value} AS id_value, p.reason AS phone_reason
            FROM typed r {phone_join}
        )
        SELECT *, CASE WHEN id_value IS NULL THEN coalesce(phone_reason,
                    '''' || raw || ''' is not a valid ' || id_type)
                  ELSE CASE id_type {blocked_cases} END END AS reason
        FROM ids
        """
    )
    for table in ("raw_ids", "phone_pairs", "phone_fast", "phone_map"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    # n_seen counts events: an occurrence stands for `n` of them.
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE rejected AS
        SELECT id_type, coalesce(id_value, trim(raw)) AS id_value, any_value(reason) AS reason,
               sum(o.n)::BIGINT AS n_seen
        FROM ids_checked JOIN occs o USING (oid) WHERE reason IS NOT NULL AND trim(raw) <> ''
        GROUP BY ALL
        """
    )
    glue = rules.glue_types
    prio_cases = " ".join(f"WHEN '{t}' THEN {rules.rule(t).priority}" for t in glue)
    glue_list = ", ".join(f"'{t}'" for t in glue)
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE occ_ids AS
        SELECT oid, id_type, id_value, CASE id_type {prio_cases} END AS prio
        FROM ids_checked WHERE reason IS NULL AND id_type IN ({glue_list})
        UNION ALL
        SELECT oid, '{RECORD_TYPE}', record_id, {rules.rule(RECORD_TYPE).priority}
        FROM occs WHERE kind = 'record'
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE nodes AS
        SELECT (row_number() OVER (ORDER BY prio, id_type, id_value) - 1)::INTEGER AS node,
               id_type, id_value, prio, first_seen, last_seen, n_seen
        FROM (SELECT i.id_type, i.id_value, any_value(i.prio) AS prio, min(o.ts) AS first_seen,
                     max(o.last_ts) AS last_seen, sum(o.n)::BIGINT AS n_seen
              FROM occ_ids i JOIN occs o USING (oid) GROUP BY i.id_type, i.id_value)
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE occ_nodes AS
        SELECT DISTINCT o.oid, n.node FROM occ_ids o JOIN nodes n USING (id_type, id_value)
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE occ_anchor AS
        SELECT a.oid, o.kind, a.anchor
        FROM (SELECT oid, min(node) AS anchor FROM occ_nodes GROUP BY oid) a JOIN occs o USING (oid)
        """
    )
    evidence = rules.evidence_types
    ev_list = ", ".join(f"'{t}'" for t in evidence) or "NULL"
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE evidence AS
        SELECT oid, id_type, id_value FROM ids_checked
        WHERE reason IS NULL AND id_type IN ({ev_list})
        """
    )
    cur.execute("DROP TABLE IF EXISTS ids_checked")
    cur.execute("DROP TABLE IF EXISTS occ_ids")
    (n_nodes,), = cur.execute("SELECT count(*) FROM nodes").fetchall()
    (n_occ,), = cur.execute("SELECT count(*) FROM occ_anchor").fetchall()
    (n_rej,), = cur.execute("SELECT count(*) FROM rejected").fetchall()
    return {"nodes": int(n_nodes), "occurrences": int(n_occ), "rejected_values": int(n_rej)}
