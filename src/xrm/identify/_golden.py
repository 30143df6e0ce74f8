"""Golden records: per profile the best value of each attribute, with the record it came from.

Survivorship rules (configurable per attribute in ``[identify.golden]``):

- ``most_recent``: the value of the most recently updated record (addresses: people move;
  surnames: people marry),
- ``most_trusted``: the value from the most trusted source (``source_trust``, first = most),
- ``most_frequent``: the value most records agree on (compared by its matching key, so 'Hans'
  and 'Johannes' count together); ties go to the most recent, then the most trusted.

Every row names the rule, the source, the record and its ``updated_at``: the lineage.

    >>> golden_record(store, 17)["attributes"]["last_name"]["value"]  # doctest: +SKIP
    'Groß'
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from xrm.exceptions import NotFound

__all__ = ["ATTRIBUTES", "GoldenRules", "build_golden_records", "golden_record"]

# attribute: (display value, matching key, structured value or NULL), over n (normalized) r (records)
ATTRIBUTES: dict[str, tuple[str, str, str]] = {
    "first_name": ("n.first_name", "n.first_name_canon", "NULL"),
    "last_name": ("n.last_name", "n.last_name_key", "NULL"),
    "birth_date": ("CAST(n.birth_date AS VARCHAR)", "n.birth_date", "NULL"),
    "email": ("n.email", "n.email", "NULL"),
    "phone": ("n.phone", "n.phone", "NULL"),
    "address": (
        "concat_ws(', ', concat_ws(' ', trim(n.street), CASE WHEN NOT contains(lower(n.street), "
        "n.house_number) THEN n.house_number END), concat_ws(' ', n.postcode, trim(n.city)))",
        "CASE WHEN n.street_key IS NOT NULL AND n.postcode IS NOT NULL "
        "THEN concat_ws('|', n.street_key, n.house_number, n.postcode) END",
        "to_json({'street': trim(n.street), 'house_number': n.house_number, 'postcode': n.postcode, "
        "'city': trim(n.city), 'country': n.country})",
    ),
}
RULES = ("most_recent", "most_trusted", "most_frequent")


class GoldenRules(BaseModel):
    """Which survivorship rule picks each attribute, and how far each source is trusted."""

    model_config = {"extra": "forbid", "frozen": True}

    rules: dict[str, str] = Field(
        default_factory=lambda: {
            "first_name": "most_frequent",
            "last_name": "most_recent",
            "birth_date": "most_frequent",
            "address": "most_recent",
            "email": "most_recent",
            "phone": "most_recent",
        },
        description="attribute -> most_recent | most_trusted | most_frequent.",
    )
    source_trust: tuple[str, ...] = Field(
        default=("crm", "webshop", "loyalty", "newsletter"),
        description="Sources, most trusted first; others come after, in name order.",
    )

    def model_post_init(self, _: Any) -> None:
        for attr, rule in self.rules.items():
            if attr not in ATTRIBUTES:
                raise ValueError(
                    f"golden.rules: {attr!r} is not an attribute; known: {', '.join(ATTRIBUTES)}"
                )
            if rule not in RULES:
                raise ValueError(f"golden.rules.{attr} = {rule!r} is not a rule; use {', '.join(RULES)}")


_ORDER = {
    "most_recent": "updated_at DESC NULLS LAST, trust, record_id",
    "most_trusted": "trust, updated_at DESC NULLS LAST, record_id",
    "most_frequent": "freq DESC, updated_at DESC NULLS LAST, trust, record_id",
}


def build_golden_records(cur: Any, golden: GoldenRules) -> dict[str, Any]:
    """Rebuild ``golden_records`` for every active profile (runs inside the caller's transaction)."""
    start = time.perf_counter()
    trust = " ".join(f"WHEN {_q(s)} THEN {i}" for i, s in enumerate(golden.source_trust))
    trust_sql = f"CASE n.source {trust} ELSE {len(golden.source_trust)} END" if trust else "0"
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE golden_base AS
        SELECT pr.profile_id, n.*, r.street, r.city, r.updated_at, {trust_sql} AS trust
        FROM profile_records pr JOIN normalized_records n USING (record_id) JOIN records r USING (record_id)
        """
    )
    cur.execute("DELETE FROM golden_records")
    for attr, (value, key, structured) in ATTRIBUTES.items():
        rule = golden.rules.get(attr, "most_recent")
        cur.execute(
            f"""
            INSERT INTO golden_records
            WITH v AS (
                SELECT n.profile_id, n.record_id, n.source, n.updated_at, n.trust,
                       {value} AS value, {key} AS key, {structured} AS value_json
                FROM golden_base n
                WHERE {key} IS NOT NULL
            ), f AS (
                SELECT *, count(*) OVER (PARTITION BY profile_id, key) AS freq FROM v
            ), c AS (
                SELECT profile_id, count(DISTINCT key) AS n_candidates FROM v GROUP BY profile_id
            )
            SELECT f.profile_id, '{attr}', f.value, f.value_json, '{rule}', f.source, f.record_id,
                   f.updated_at, f.freq, c.n_candidates
            FROM f JOIN c USING (profile_id)
            QUALIFY row_number() OVER (PARTITION BY f.profile_id ORDER BY {_ORDER[rule]}) = 1
            """
        )
    (n,), = cur.execute("SELECT count(DISTINCT profile_id) FROM golden_records").fetchall()
    return {"golden_profiles": int(n), "golden_seconds": round(time.perf_counter() - start, 3)}


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def golden_record(store: Any, profile_id: int) -> dict[str, Any]:
    """The golden record of a profile (a merged id is followed to the profile it went into)."""
    pid, seen = int(profile_id), set()
    while True:
        rows = store.sql("SELECT status, merged_into FROM profiles WHERE profile_id = ?", [pid]).fetchall()
        if not rows:
            raise NotFound(f"profile {profile_id} does not exist; find one with `xrm identify explain EMAIL`")
        status, into = rows[0]
        if status != "merged" or into is None or into in seen:
            break
        seen.add(pid)
        pid = int(into)
    keys = ("value", "value_json", "rule", "source", "record_id", "record_updated_at", "n_records",
            "n_candidates")
    out: dict[str, Any] = {"profile_id": pid, "status": status, "attributes": {}}
    for row in store.sql(
        f"SELECT attribute, {', '.join(keys)} FROM golden_records WHERE profile_id = ? ORDER BY attribute",
        [pid],
    ).fetchall():
        out["attributes"][row[0]] = dict(zip(keys, row[1:], strict=True))
    return out
