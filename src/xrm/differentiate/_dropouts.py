"""Does P(alive) find the customers who really left? Checked against a known truth.

The sample business records when each person dropped out (``truth/persons.parquet``,
``dropout_at``: the last purchase of a customer who will buy no more). At the time the value
models score (each summary's ``calibration_end``) a customer has dropped out if ``dropout_at`` is
at or before it. A good model ranks those customers below the living ones by P(alive) — better
than recency alone (days since the last purchase), the rule of thumb it should beat, because
P(alive) also knows how often each customer used to buy.

The quality of each ranking is its ROC AUC: the chance that a customer picked at random among
the dropped-out ranks as more likely gone than one picked among the living (0.5 = guessing).

    >>> dropout_ranking(store, "demo/sample/truth")  # doctest: +SKIP
    {'customers': 1843, 'dropped': 712, 'auc_p_alive': 0.83, 'auc_recency': 0.78, ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xrm.exceptions import InputError

__all__ = ["dropout_ranking"]



def dropout_ranking(
    store: Any,
    truth_dir: str | Path,
    *,
    events_table: str = "events",
    customer_key: str = "user_id",
) -> dict[str, Any]:
    """AUC of P(alive) and of recency at telling dropped-out customers from living ones.

    Customers are those of the latest value run (``customer_value`` joined to
    ``purchase_summaries``); each is mapped to the true person most of its events' user ids belong
    to (``customer_key="profile_id"`` with ``events_table="customer_events"`` after identify).
    """
    from sklearn.metrics import roc_auc_score

    truth = Path(truth_dir)
    persons, ids = truth / "persons.parquet", truth / "identifier_person.parquet"
    for path in (persons, ids):
        if not path.exists():
            raise InputError(f"{path}: no ground truth file; the sample business writes it (`xrm sample`)")
    if customer_key not in ("user_id", "profile_id"):
        raise InputError(f"customer_key {customer_key!r}: use user_id or profile_id")
    from xrm.sample._truth import USER_ID_TRUTH_TYPES  # the truth file's writer; loaded when scored

    types = ", ".join(f"'{t}'" for t in USER_ID_TRUTH_TYPES)
    cur = store.con.cursor()
    try:
        rows = cur.execute(
            f"""
            WITH who AS (
                SELECT CAST(e.{customer_key} AS VARCHAR) AS customer_id,
                       arg_max(t.person_id, t.n) AS person_id
                FROM (SELECT {customer_key}, user_id, count(*) AS n FROM {events_table}
                      WHERE user_id IS NOT NULL AND {customer_key} IS NOT NULL GROUP BY ALL) e
                JOIN (SELECT value, person_id, 1 AS n FROM read_parquet(?)
                      WHERE identifier_type IN ({types}) AND NOT shared) t ON t.value = e.user_id
                GROUP BY 1
            )
            SELECT v.p_alive,
                   date_diff('day', s.last_purchase, s.calibration_end) AS days_since,
                   p.dropout_at IS NOT NULL AND p.dropout_at <= s.calibration_end AS dropped
            FROM customer_value v
            JOIN purchase_summaries s USING (customer_id)
            JOIN who w USING (customer_id)
            JOIN read_parquet(?) p USING (person_id)
            """,
            [str(ids), str(persons)],
        ).fetchall()
    finally:
        cur.close()
    if not rows:
        raise InputError(
            "no scored customer could be matched to the truth: run the value step on this store "
            "(`xrm pipeline`) with the sample business loaded"
        )
    p_alive = [r[0] for r in rows]
    since = [float(r[1]) for r in rows]
    dropped = [bool(r[2]) for r in rows]
    n_dropped = sum(dropped)
    if n_dropped in (0, len(rows)):
        raise InputError(
            f"all {len(rows)} matched customers are {'dropped out' if n_dropped else 'alive'}: "
            "an AUC needs both; use a longer sample history (`xrm sample --years`)"
        )
    return {
        "customers": len(rows),
        "dropped": n_dropped,
        "auc_p_alive": float(roc_auc_score(dropped, [1.0 - p for p in p_alive])),
        "auc_recency": float(roc_auc_score(dropped, since)),
    }
