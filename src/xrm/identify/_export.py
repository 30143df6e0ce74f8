"""Export every source record with its profile id, for an audit in the user's own tools (issue 3, 7).

One row per record in ``records``: source, record id, the stable profile id, the identifiers as
normalised (``normalized_records``) and how the record joined its profile:

========================  ================================================================
``joined_by``             ``joined_via`` / ``join_reason``
========================  ================================================================
``alone``                 the only record of its profile
``identifier``            a glue identifier (``loyalty_card:2400123``) seen in another record
                          or event of the profile
``review``                a pair a person accepted (the other record; who and why)
``probabilistic``         the strongest scored pair linked (the other record; match weight,
                          probability, per-field weights)
``email_name``            the e-mail's user part spells the other record's name and birth year
``unresolved``            added after the last ``resolve_identities`` run: no profile yet
========================  ================================================================

The rows go from DuckDB to the file with ``COPY (...) TO`` (never through Python), into a
temporary file next to the target that is renamed when complete, so millions of records cost
a DuckDB statement and a half-written file never looks like an export.

    >>> export_records(store, "audit/records.parquet")  # doctest: +SKIP
    {'path': 'audit/records.parquet', 'format': 'parquet', 'records': 1200, ...}
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from xrm.exceptions import InputError, NotFound
from xrm.identify._rules import RECORD_TYPE, IdentityRules

__all__ = ["EXPORT_FORMATS", "JOINED_BY", "export_records", "format_for_path"]

ExportFormat = Literal["csv", "parquet"]
EXPORT_FORMATS: dict[str, ExportFormat] = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}
JOINED_BY = ("alone", "identifier", "review", "probabilistic", "email_name", "other", "unresolved")

# Strongest reason first: glue is applied before any fuzzy link, a person's decision before a score.
_FUZZY_KIND = """CASE WHEN f.reason LIKE 'probabilistic: accepted in review%' THEN 'review'
                      WHEN f.reason LIKE 'email-name:%' THEN 'email_name' ELSE 'probabilistic' END"""
_FUZZY_RANK = {"review": 1, "probabilistic": 2, "email_name": 3}


def format_for_path(path: str | Path, fmt: str | None = None) -> ExportFormat:
    """The export format: ``fmt`` when given, else from the file's suffix (.csv, .csv.gz, .parquet)."""
    if fmt is not None:
        if fmt not in ("csv", "parquet"):
            raise InputError(f"export format {fmt!r} is not known; use 'csv' or 'parquet'")
        return fmt  # type: ignore[return-value]
    name = Path(path).name.lower()
    for suffix in sorted(EXPORT_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return EXPORT_FORMATS[suffix]
    raise InputError(
        f"cannot tell the export format from {str(path)!r}: its suffix is none of "
        f"{', '.join(EXPORT_FORMATS)}; name the file e.g. records.parquet, or pass the format "
        f"(--format csv|parquet)"
    )


def _query(rules: IdentityRules) -> str:
    priority = ", ".join(f"('{t}', {r.priority})" for t, r in rules.types.items())
    rank = " ".join(f"WHEN '{k}' THEN {v}" for k, v in _FUZZY_RANK.items())
    return f"""
    WITH det AS (  -- identifiers of deterministic links, with the record or event that linked them
        SELECT occurrence, type_a AS t, value_a AS v FROM identity_links
        WHERE status = 'linked' AND occurrence NOT LIKE 'linkage:%' AND type_a <> '{RECORD_TYPE}'
        UNION ALL
        SELECT occurrence, type_b, value_b FROM identity_links
        WHERE status = 'linked' AND occurrence NOT LIKE 'linkage:%' AND type_b <> '{RECORD_TYPE}'
    ),
    shared AS (    -- seen in two or more records or events: the glue that joined them
        SELECT t, v FROM det GROUP BY t, v HAVING count(DISTINCT occurrence) > 1
    ),
    prio(t, priority) AS (VALUES {priority}),
    glue AS (
        SELECT substr(d.occurrence, 8) AS record_id,
               arg_min(d.t || ':' || d.v, coalesce(p.priority, 1000)) AS via
        FROM det d JOIN shared s USING (t, v) LEFT JOIN prio p ON p.t = d.t
        WHERE d.occurrence LIKE 'record:%' GROUP BY 1
    ),
    fuzzy AS (     -- record-to-record links (scored pairs, review decisions, e-mail names)
        SELECT value_a AS record_id, value_b AS other, reason FROM identity_links
        WHERE status = 'linked' AND occurrence LIKE 'linkage:%'
              AND type_a = '{RECORD_TYPE}' AND type_b = '{RECORD_TYPE}'
        UNION ALL
        SELECT value_b, value_a, reason FROM identity_links
        WHERE status = 'linked' AND occurrence LIKE 'linkage:%'
              AND type_a = '{RECORD_TYPE}' AND type_b = '{RECORD_TYPE}'
    ),
    fuzzy_kind AS (
        SELECT f.*, {_FUZZY_KIND} AS kind, lp.match_weight, lp.match_probability
        FROM fuzzy f LEFT JOIN linkage_pairs lp
          ON lp.record_a = least(f.record_id, f.other) AND lp.record_b = greatest(f.record_id, f.other)
    ),
    fuzzy_best AS (
        SELECT * FROM fuzzy_kind
        QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY CASE kind {rank} END,
                                   match_weight DESC NULLS LAST, other) = 1
    ),
    sizes AS (SELECT profile_id, count(*) AS n FROM profile_records GROUP BY profile_id)
    SELECT r.source, r.record_id, r.source_key, pr.profile_id, s.n AS profile_records,
           CASE WHEN pr.profile_id IS NULL THEN 'unresolved'
                WHEN s.n = 1 THEN 'alone'
                WHEN g.via IS NOT NULL THEN 'identifier'
                WHEN f.kind IS NOT NULL THEN f.kind
                ELSE 'other' END AS joined_by,
           CASE WHEN pr.profile_id IS NULL OR s.n = 1 THEN NULL
                WHEN g.via IS NOT NULL THEN g.via ELSE f.other END AS joined_via,
           CASE WHEN g.via IS NULL AND s.n > 1 THEN f.match_weight END AS match_weight,
           CASE WHEN g.via IS NULL AND s.n > 1 THEN f.match_probability END AS match_probability,
           CASE WHEN pr.profile_id IS NULL THEN 'not resolved yet: run `xrm identify resolve`'
                WHEN s.n = 1 THEN NULL
                WHEN g.via IS NOT NULL THEN 'glue identifier shared with another record or event'
                WHEN f.kind IS NOT NULL THEN f.reason
                ELSE 'joined through the links of the profile''s other records' END AS join_reason,
           n.title, n.first_name, n.last_name, n.first_name_key, n.first_name_canon, n.last_name_key,
           n.birth_date, n.email, n.email_reason, n.phone, n.phone_reason, n.street_key,
           n.house_number, n.postcode, n.city_key, n.country, n.user_id, n.account_id, n.loyalty_card
    FROM records r
    LEFT JOIN profile_records pr USING (record_id)
    LEFT JOIN sizes s USING (profile_id)
    LEFT JOIN normalized_records n USING (record_id)
    LEFT JOIN glue g USING (record_id)
    LEFT JOIN fuzzy_best f USING (record_id)
    ORDER BY pr.profile_id NULLS LAST, r.record_id
    """


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def export_records(
    store: Any,
    path: str | Path,
    format: str | None = None,  # "csv" | "parquet"; the name the issue asks for
    rules: IdentityRules | None = None,
) -> dict[str, Any]:
    """Write every source record with its profile id and how it joined it to ``path``.

    ``format`` is ``"csv"`` or ``"parquet"``; by default it follows the suffix (``.csv``,
    ``.csv.gz``, ``.parquet``). ``rules`` only orders the glue identifiers named in
    ``joined_via`` (most trusted first). Returns the path, format, counts per ``joined_by``, the
    number of records and profiles, the file's size and the seconds taken. Raises ``NotFound``
    when the store holds no resolved identities, ``InputError`` for an unknown format.
    """
    t0 = time.perf_counter()
    target = Path(path)
    fmt = format_for_path(target, format)
    (n_records, n_resolved), = store.sql(
        "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM profile_records)"
    ).fetchall()
    if not n_resolved:
        raise NotFound(
            f"the store holds no resolved identities ({n_records:,} source records, none with a "
            f"profile): run `xrm identify resolve` (or resolve_identities) first"
        )
    if not target.parent.is_dir():
        raise InputError(f"cannot write {str(target)!r}: the folder {str(target.parent)!r} does not exist")
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
    if fmt == "csv" and target.name.lower().endswith(".gz"):
        options += ", COMPRESSION gzip"
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        store.sql(f"COPY ({_query(rules or IdentityRules())}) TO {_quote(tmp)} ({options})")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    # Counts from the file itself: they check that it reads back, and cost no second pass over the graph.
    reader = (f"read_parquet({_quote(target)})" if fmt == "parquet" else
              f"read_csv({_quote(target)}, header = true, all_varchar = true)")
    by_kind = store.sql(
        f"SELECT joined_by, count(*) FROM {reader} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    (n_rows, n_profiles), = store.sql(f"SELECT count(*), count(DISTINCT profile_id) FROM {reader}").fetchall()
    return {
        "path": str(target),
        "format": fmt,
        "records": int(n_rows),
        "profiles": int(n_profiles),
        "joined_by": {str(k): int(v) for k, v in by_kind},
        "bytes": target.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 3),
    }
