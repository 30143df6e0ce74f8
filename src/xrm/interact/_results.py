"""Campaign results: sends, opens, clicks, conversions, revenue, and lift against the control
group with a confidence interval.

Conversion is intention-to-treat: a member of the target group (messaged or not, once chosen)
or of the control group converts when they complete an order within ``window`` after the
decision. The lift in conversion rate is the difference of two proportions with Newcombe's
hybrid score interval (Newcombe 1998, Statistics in Medicine 17:873-890, method 10), built from
Wilson score intervals (Wilson 1927, JASA 22:209-212); the lift in revenue per member uses a
Welch normal-approximation interval.

    >>> campaign_results(store, "spring")["lift"]["conversion_rate"]  # doctest: +SKIP
    {'difference': 0.021, 'ci_low': 0.004, 'ci_high': 0.038, ...}
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

from xrm.exceptions import InputError
from xrm.interact._clock import utc
from xrm.interact._events import TrackEvent, event_id, write_events

__all__ = ["attribute_conversions", "campaign_results", "newcombe_interval", "wilson_interval"]


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion (Wilson 1927, eq. for p̂ ± z·sqrt(...))."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05
) -> tuple[float, float, float]:
    """p1 - p2 and its Newcombe hybrid score interval (Newcombe 1998, method 10)."""
    p1 = x1 / n1 if n1 else 0.0
    p2 = x2 / n2 if n2 else 0.0
    l1, u1 = wilson_interval(x1, n1, alpha)
    l2, u2 = wilson_interval(x2, n2, alpha)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def _welch(values1: list[float], values2: list[float], alpha: float) -> dict[str, float | None]:
    n1, n2 = len(values1), len(values2)
    if n1 < 2 or n2 < 2:
        return {"difference": None, "ci_low": None, "ci_high": None}
    m1, m2 = sum(values1) / n1, sum(values2) / n2
    v1 = sum((v - m1) ** 2 for v in values1) / (n1 - 1)
    v2 = sum((v - m2) ** 2 for v in values2) / (n2 - 1)
    se = math.sqrt(v1 / n1 + v2 / n2)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return {"difference": m1 - m2, "ci_low": m1 - m2 - z * se, "ci_high": m1 - m2 + z * se}


_MEMBER_ORDERS = """
    SELECT m.run_id, m.customer, m.grp, m.message_id, m.decided_at,
           count(o.message_id) AS orders, coalesce(sum(o.revenue), 0) AS revenue,
           arg_min(o.message_id, o.ts) AS first_order, min(o.ts) AS first_ts,
           arg_min(o.order_id, o.ts) AS first_order_id, arg_min(o.revenue, o.ts) AS first_revenue
    FROM campaign_members m
    LEFT JOIN events o ON o.type = 'track' AND o.event = 'Order Completed'
         AND o.user_id = m.customer AND o.ts > m.decided_at AND o.ts <= m.decided_at + ?
    WHERE m.campaign_id = ? AND m.grp IN ('target', 'control')
    GROUP BY ALL
"""


def campaign_results(
    store: Any, campaign_id: str, *, window: timedelta = timedelta(days=14), alpha: float = 0.05
) -> dict[str, Any]:
    """Per-campaign counts and the lift of the target group over the control group."""
    camp = store.sql("SELECT name, kind, channel FROM campaigns WHERE campaign_id = ?",
                     [campaign_id]).fetchall()
    if not camp:
        known = [r[0] for r in store.sql("SELECT campaign_id FROM campaigns ORDER BY 1").fetchall()]
        raise InputError(f"no campaign {campaign_id!r} in the store (campaigns: {known})")
    rows = store.sql(_MEMBER_ORDERS, [window, campaign_id]).fetchall()
    groups: dict[str, list[tuple[int, float]]] = {"target": [], "control": []}
    for _run, _cust, grp, _mid, _at, orders, revenue, *_ in rows:
        groups[grp].append((int(orders), float(revenue)))
    status = dict(store.sql(
        "SELECT status, count(*) FROM messages WHERE campaign_id = ? GROUP BY 1", [campaign_id]
    ).fetchall())
    responses = dict(store.sql(
        """
        SELECT regexp_extract(event, '(Sent|Delivered|Bounced|Opened|Link Clicked|Unsubscribed)$'),
               count(DISTINCT json_extract_string(properties, '$.message_id'))
        FROM events
        WHERE type = 'track' AND source = 'xrm.interact'
          AND json_extract_string(properties, '$.campaign_id') = ?
        GROUP BY 1
        """,
        [campaign_id],
    ).fetchall())
    cost = store.sql(
        "SELECT coalesce(sum(cost), 0) FROM messages WHERE campaign_id = ? AND status = 'sent'",
        [campaign_id],
    ).fetchall()[0][0]
    t, c = groups["target"], groups["control"]
    xt, xc = sum(1 for o, _ in t if o), sum(1 for o, _ in c if o)
    d, low, high = newcombe_interval(xt, len(t), xc, len(c), alpha)
    rev_t, rev_c = sum(r for _, r in t), sum(r for _, r in c)
    rate_t = xt / len(t) if t else None
    rate_c = xc / len(c) if c else None
    return {
        "campaign_id": campaign_id, "name": camp[0][0], "kind": camp[0][1], "channel": camp[0][2],
        "window_days": window.total_seconds() / 86400,
        "members": {"target": len(t), "control": len(c)},
        "messages": {k: int(v) for k, v in sorted(status.items())},
        "sends": int(responses.get("Sent", 0)),
        "delivered": int(responses.get("Delivered", 0)),
        "bounces": int(responses.get("Bounced", 0)),
        "opens": int(responses.get("Opened", 0)),
        "clicks": int(responses.get("Link Clicked", 0)),
        "unsubscribes": int(responses.get("Unsubscribed", 0)),
        "conversions": {"target": xt, "control": xc},
        "conversion_rate": {"target": rate_t, "control": rate_c},
        "revenue": {"target": rev_t, "control": rev_c},
        "cost": float(cost),
        "lift": {
            "conversion_rate": {
                "difference": d if t and c else None,
                "ci_low": low if t and c else None,
                "ci_high": high if t and c else None,
                "confidence": 1 - alpha,
                "method": "Newcombe hybrid score (1998, method 10)",
            },
            "revenue_per_member": {
                **_welch([r for _, r in t], [r for _, r in c], alpha),
                "confidence": 1 - alpha,
                "method": "Welch normal approximation",
            },
            "incremental_conversions": (d * len(t)) if t and c else None,
        },
    }


def attribute_conversions(
    store: Any, *, window: timedelta = timedelta(days=14), now: datetime | None = None
) -> int:
    """Write `Campaign Converted` for each target member whose first order fell within
    ``window`` of the decision (idempotent); returns how many were new."""
    at = utc(now)
    events = []
    for camp in store.sql("SELECT campaign_id FROM campaigns").fetchall():
        for (run_id, customer, grp, message_id, _dec, orders, _rev, first, first_ts, order_id,
             revenue) in store.sql(_MEMBER_ORDERS, [window, camp[0]]).fetchall():
            if grp != "target" or not orders or first_ts > at:
                continue
            events.append(TrackEvent(
                "Campaign Converted", customer, first_ts,
                {"campaign_id": camp[0], "run_id": run_id, "message_id": message_id,
                 "order_event": first, "order_id": order_id, "revenue": revenue},
                message_id=event_id("converted", run_id, customer),
            ))
    with store.transaction() as tx:
        return write_events(tx, events)
