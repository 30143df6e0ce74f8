"""The review queue: grey-zone record pairs a person accepts or rejects; every later run obeys.

    >>> items = review_items(store)                      # doctest: +SKIP
    >>> accept_review(store, "crm:7", "web:3", reason="phoned her", decided_by="eva")  # doctest: +SKIP

An accepted pair is linked (still below deterministic rules and overrides); a rejected pair is
a cannot-link constraint: no fuzzy link may join its two records, directly or through others.
Deciding re-resolves the graph at once (``apply=False`` defers it to the next batch run).
"""

from __future__ import annotations

import json
from typing import Any

from xrm.exceptions import InputError, NotFound
from xrm.identify._rules import IdentityRules

__all__ = ["accept_review", "decide_review", "reject_review", "review_items"]

_RECORD_COLS = ("record_id", "source", "first_name", "last_name", "birth_date", "email", "phone",
                "street_key", "house_number", "postcode")


def review_items(store: Any, status: str = "pending", limit: int = 50) -> list[dict[str, Any]]:
    """Queue items (pending, accepted, rejected or all), strongest first, with both records."""
    if status not in ("pending", "accepted", "rejected", "all"):
        raise InputError(f"review status {status!r} is not known; use pending, accepted, rejected or all")
    where = "" if status == "all" else "WHERE q.status = ?"
    params: list[Any] = [] if status == "all" else [status]
    rows = store.sql(
        f"""
        SELECT q.record_a, q.record_b, q.match_weight, q.match_probability, CAST(q.weights AS VARCHAR),
               q.status, q.queued_at, q.decided_by, q.decided_at, q.reason,
               pa.profile_id, pb.profile_id
        FROM review_queue q
        LEFT JOIN profile_records pa ON pa.record_id = q.record_a
        LEFT JOIN profile_records pb ON pb.record_id = q.record_b
        {where}
        ORDER BY q.match_weight DESC NULLS LAST, q.record_a, q.record_b LIMIT {int(limit)}
        """,
        params,
    ).fetchall()
    ids = sorted({r[0] for r in rows} | {r[1] for r in rows})
    recs: dict[str, dict[str, Any]] = {}
    if ids:
        for r in store.sql(
            f"SELECT {', '.join(_RECORD_COLS)} FROM normalized_records WHERE list_contains(?, record_id)",
            [ids],
        ).fetchall():
            recs[r[0]] = dict(zip(_RECORD_COLS, r, strict=True))
    keys = ("record_a", "record_b", "match_weight", "match_probability", "weights", "status",
            "queued_at", "decided_by", "decided_at", "reason", "profile_a", "profile_b")
    out = []
    for r in rows:
        item = dict(zip(keys, r, strict=True))
        item["weights"] = json.loads(item["weights"]) if item["weights"] else {}
        item["a"], item["b"] = recs.get(r[0]), recs.get(r[1])
        out.append(item)
    return out


def decide_review(
    store: Any,
    record_a: str,
    record_b: str,
    decision: str,
    *,
    reason: str,
    decided_by: str | None = None,
    apply: bool = True,
    rules: IdentityRules | None = None,
) -> dict[str, Any]:
    """Store ``accepted`` or ``rejected`` for a pair of records; any pair of known records may be
    decided, queued or not. Returns the decision and, with ``apply``, the re-resolution summary."""
    from xrm.identify._resolve import _now, resolve_graph

    if decision not in ("accepted", "rejected"):
        raise InputError(f"decision {decision!r} is not known; use accepted or rejected")
    if not reason or not reason.strip():
        raise InputError("a review decision needs a reason (what the person checked); it is kept")
    a, b = sorted((record_a, record_b))
    if a == b:
        raise InputError(f"a review decides about two records; got {a!r} twice")
    known = {r[0] for r in store.sql(
        "SELECT record_id FROM normalized_records WHERE record_id IN (?, ?)", [a, b]).fetchall()}
    missing = [x for x in (a, b) if x not in known]
    if missing:
        raise NotFound(
            f"record(s) {', '.join(missing)} not found; record ids look like 'webshop:KD123' "
            f"(see `xrm identify review list`)"
        )
    rules = rules or IdentityRules.for_settings(store.settings)
    now = _now()
    with store.transaction() as cur:
        cur.execute(
            """
            INSERT INTO review_queue (record_a, record_b, match_weight, match_probability, weights, status,
                                      queued_at, decided_by, decided_at, reason)
            SELECT ?, ?, p.match_weight, p.match_probability, p.weights, ?, ?, ?, ?, ?
            FROM (SELECT 1) LEFT JOIN linkage_pairs p ON p.record_a = ? AND p.record_b = ?
            ON CONFLICT (record_a, record_b) DO UPDATE SET status = excluded.status,
                decided_by = excluded.decided_by, decided_at = excluded.decided_at, reason = excluded.reason
            """,
            [a, b, decision, now, decided_by, now, reason, a, b],
        )
    out: dict[str, Any] = {"record_a": a, "record_b": b, "decision": decision}
    if apply:
        out["run"] = resolve_graph(store, rules, kind="review")
    return out


def accept_review(store: Any, record_a: str, record_b: str, *, reason: str,
                  decided_by: str | None = None, apply: bool = True) -> dict[str, Any]:
    """The two records are one person: link them (limits and overrides still apply)."""
    return decide_review(store, record_a, record_b, "accepted", reason=reason,
                         decided_by=decided_by, apply=apply)


def reject_review(store: Any, record_a: str, record_b: str, *, reason: str,
                  decided_by: str | None = None, apply: bool = True) -> dict[str, Any]:
    """The two records are different people: no fuzzy link may join them, now or later."""
    return decide_review(store, record_a, record_b, "rejected", reason=reason,
                         decided_by=decided_by, apply=apply)
