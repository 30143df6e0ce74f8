"""Batch normalisation of ``records`` into ``normalized_records``: SQL where it can, Python for phones.

    >>> summary = normalize_records(store)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

from xrm.identify._address import (
    country_sql,
    house_number_sql,
    postcode_reason_sql,
    postcode_sql,
    street_key_sql,
)
from xrm.identify._email import email_reason_sql
from xrm.identify._identifiers import blocked_reason_sql, id_value_sql
from xrm.identify._names import canon_sql, first_key_sql, own_title_sql, title_sql, untitled_sql
from xrm.identify._phone import normalize_phones, phone_fast_sql
from xrm.identify._rules import IdentityRules
from xrm.identify._text import fold_sql

__all__ = ["build_phone_map", "normalize_records"]


def build_phone_map(cur: Any, rules: IdentityRules, raw_sql: str) -> dict[str, int]:
    """Temp table ``phone_map(raw, region, e164, reason)`` for the distinct ``(raw, region)``
    pairs that ``raw_sql`` yields: plain shapes in DuckDB, the rest parsed once by phonenumbers."""
    import pyarrow as pa

    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE phone_pairs AS SELECT DISTINCT raw, region FROM ({raw_sql}) "
        "WHERE raw IS NOT NULL"
    )
    regions = [r[0] for r in cur.execute("SELECT DISTINCT region FROM phone_pairs").fetchall() if r[0]]
    fast = phone_fast_sql("raw", "region", [*regions, rules.default_region])
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE phone_fast AS SELECT raw, region, {fast} AS e164 FROM phone_pairs"
    )
    pairs = cur.execute("SELECT raw, region FROM phone_fast WHERE e164 IS NULL").fetchall()
    rows = normalize_phones(pairs, rules.default_region)
    cur.register(
        "phone_slow_arrow",
        pa.table(
            {
                "raw": pa.array([r[0] for r in rows], pa.string()),
                "region": pa.array([r[1] for r in rows], pa.string()),
                "e164": pa.array([r[2] for r in rows], pa.string()),
                "reason": pa.array([r[3] for r in rows], pa.string()),
            }
        ),
    )
    blocked = blocked_reason_sql(rules, "phone", "e164")
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE phone_map AS
        SELECT raw, region, CASE WHEN b IS NULL THEN e164 END AS e164, coalesce(b, reason) AS reason
        FROM (SELECT raw, region, e164, NULL AS reason FROM phone_fast WHERE e164 IS NOT NULL
              UNION ALL SELECT raw, region, e164, reason FROM phone_slow_arrow) u,
             LATERAL (SELECT {blocked} AS b)
        """
    )
    cur.unregister("phone_slow_arrow")
    (total,), = cur.execute("SELECT count(*) FROM phone_pairs").fetchall()
    return {"distinct_phones": int(total), "phones_parsed_in_python": len(rows)}


def _region_sql(rules: IdentityRules) -> str:
    c = country_sql("country")
    return f"CASE WHEN length({c}) = 2 THEN {c} ELSE '{rules.default_region}' END"


def normalize_records(store: Any, rules: IdentityRules | None = None) -> dict[str, Any]:
    """Rebuild ``normalized_records`` from ``records``; returns counts and records/s."""
    rules = rules or IdentityRules.for_settings(store.settings)
    start = time.perf_counter()
    with store.transaction() as cur:
        phones = build_phone_map(
            cur, rules, f"SELECT trim(phone) AS raw, {_region_sql(rules)} AS region FROM records"
        )
        phone_seconds = time.perf_counter() - start
        email = id_value_sql(rules, "email", "r.email")
        glue = {t: id_value_sql(rules, t, f"r.{t}") for t in ("loyalty_card", "account_id", "user_id")}

        def unblocked(t: str, expr: str) -> str:
            return f"CASE WHEN ({blocked_reason_sql(rules, t, expr)}) IS NULL THEN {expr} END"

        cur.execute("DELETE FROM normalized_records")
        cur.execute(
            f"""
            INSERT INTO normalized_records
            WITH base AS (
                SELECT r.*, {email} AS email_norm, {_region_sql(rules)} AS region
                FROM records r
            )
            SELECT
                r.record_id, r.source,
                nullif(concat_ws(' ', {own_title_sql('r.title')}, {title_sql('r.first_name')},
                                 {title_sql('r.last_name')}), '') AS title,
                {untitled_sql('r.first_name')} AS first_name,
                {untitled_sql('r.last_name')} AS last_name,
                {first_key_sql('r.first_name')} AS first_name_key,
                {canon_sql(first_key_sql('r.first_name'))} AS first_name_canon,
                {first_key_sql('r.last_name')} AS last_name_key,
                CASE WHEN r.birth_date BETWEEN DATE '1900-01-01' AND current_date
                     THEN r.birth_date END AS birth_date,
                {unblocked('email', 'email_norm')} AS email,
                coalesce({email_reason_sql('r.email')}, {blocked_reason_sql(rules, 'email', 'email_norm')})
                    AS email_reason,
                p.e164 AS phone,
                p.reason AS phone_reason,
                {street_key_sql('r.street', 'r.house_number')} AS street_key,
                {house_number_sql('r.street', 'r.house_number')} AS house_number,
                {postcode_sql('r.postcode', country_sql('r.country'))} AS postcode,
                {postcode_reason_sql('r.postcode', country_sql('r.country'))} AS postcode_reason,
                {fold_sql('r.city')} AS city_key,
                {country_sql('r.country')} AS country,
                {unblocked('loyalty_card', glue['loyalty_card'])} AS loyalty_card,
                {unblocked('account_id', glue['account_id'])} AS account_id,
                {unblocked('user_id', glue['user_id'])} AS user_id
            FROM base r
            LEFT JOIN phone_map p ON p.raw = trim(r.phone) AND p.region = r.region
            """
        )
        n = cur.execute("SELECT count(*) FROM normalized_records").fetchall()[0][0]
    seconds = time.perf_counter() - start
    return {
        "records": int(n),
        **phones,
        "seconds": round(seconds, 3),
        "phone_seconds": round(phone_seconds, 3),
        "records_per_s": round(n / seconds) if seconds > 0 else None,
    }
