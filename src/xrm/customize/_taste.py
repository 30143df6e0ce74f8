"""A customer's taste for a configurable product, from their needs profile and purchases.

The needs profile (differentiate) says what a customer buys and at what price level; the product
file says what that means for its options (``[signals.products]``: product id -> weights on option
tags).  A taste is those weights, scaled to [-1, 1], plus the options the customer picked
themselves in earlier mixes (``Subscription Started`` events with a ``mix`` list of option names),
plus a price sensitivity from the needs profile's price index.  A customer with no signal at all
borrows the mean taste of their needs segment, and failing that the product's house taste.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from xrm.customize._product import Option, Product
from xrm.exceptions import InputError
from xrm.store import Store

__all__ = ["Taste", "option_taste", "purchase_source", "tastes_for"]

MIX_PREFIX = "option:"  # a tag naming one option: the customer chose it in an earlier mix


@dataclass(frozen=True)
class Taste:
    """Weights on option tags (and ``option:<id>``), each with the words that explain it."""

    weights: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    price_sensitivity: float = 1.0
    source: str = "house default"
    segment_id: int | None = None

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted((k, round(v, 4)) for k, v in self.weights.items())),
                round(self.price_sensitivity, 4))


def option_taste(taste: Taste, option: Option) -> float:
    """How much the customer likes a gram of this option, in [-2, 2]."""
    w = sum(taste.weights.get(t, 0.0) for t in option.tags) + taste.weights.get(MIX_PREFIX + option.id, 0.0)
    return max(-2.0, min(2.0, w))


def purchase_source(store: Store) -> tuple[str, str]:
    """(events table, customer column): resolved profiles once the identities step has run."""
    if "customer_events" in store.tables() and store.count("event_profiles") > 0:
        return "customer_events", "profile_id"
    return "events", "user_id"


def _sensitivity(price_index: float | None) -> float:
    # A customer who pays 20% above the typical price minds price less; clipped to [0.5, 2] and
    # rounded to quarters, like the weights below, so that similar customers share one solve.
    if price_index is None or price_index <= 0:
        return 1.0
    return round(4 * max(0.5, min(2.0, 1.0 / price_index))) / 4


def _scaled(raw: dict[str, float]) -> dict[str, float]:
    """Weights scaled to [-1, 1] and rounded to 0.1: purchase counts say no more than that."""
    top = max((abs(v) for v in raw.values()), default=0.0)
    scaled = {k: round(v / top, 1) for k, v in raw.items()} if top > 0 else {}
    return {k: v for k, v in scaled.items() if v}


def tastes_for(
    store: Store, product: Product, customers: list[str], *,
    events_table: str | None = None, customer_key: str | None = None,
) -> dict[str, Taste]:
    """The taste of each customer, read in a few queries (works for one customer or a segment)."""
    if not customers:
        return {}
    default_table, default_key = purchase_source(store)
    events_table, customer_key = events_table or default_table, customer_key or default_key
    if customer_key not in ("user_id", "anonymous_id", "profile_id"):
        raise InputError(f"customer_key = {customer_key!r}: use user_id, anonymous_id or profile_id")
    needs = _needs(store, customers)
    out = _own_tastes(store, product, customers, needs, events_table, customer_key)
    missing = [c for c in customers if c not in out]
    segments = sorted({s for c in missing if (s := needs.get(c, (None, None))[1]) is not None})
    seg_taste: dict[int, tuple[dict[str, float], str, str]] = {}
    for seg in segments:
        # The segment's taste: the mean over (up to 2,000 of) its members who have one of their own.
        members = [str(r[0]) for r in store.sql(
            "SELECT customer_id FROM customer_needs WHERE segment_id = ? ORDER BY customer_id LIMIT 2000",
            [seg],
        ).fetchall()]
        fetch = [m for m in members if m not in out and m not in missing]
        pool = [out[m] for m in members if m in out]
        if fetch:
            pool += list(_own_tastes(store, product, fetch, _needs(store, fetch), events_table,
                                     customer_key).values())
        if not pool:
            continue
        mean: dict[str, float] = defaultdict(float)
        for t in pool:
            for k, v in t.weights.items():
                if not k.startswith(MIX_PREFIX):
                    mean[k] += v / len(pool)
        desc = store.sql("SELECT description FROM needs_segments WHERE segment_id = ?", [seg]).fetchall()
        words = desc[0][0] if desc else f"segment {seg}"
        seg_taste[seg] = (_scaled(dict(mean)), f"segment '{words}' ({len(pool)} members with history)", words)
    for c in missing:
        pi, own_seg = needs.get(c, (None, None))
        if own_seg is not None and own_seg in seg_taste:
            weights, source, words = seg_taste[own_seg]
            reasons = {t: f"customers like you (segment '{words}')" for t in weights}
            out[c] = Taste(weights, reasons, _sensitivity(pi), f"borrowed from {source}", own_seg)
        else:
            weights = dict(product.default_taste)
            out[c] = Taste(weights, {t: "the house mix" for t in weights}, _sensitivity(pi),
                           "house default (no cereal history, no segment)", own_seg)
    return out


def _needs(store: Store, customers: list[str]) -> dict[str, tuple[float | None, int | None]]:
    return {
        str(c): (None if pi is None else float(pi), None if s is None else int(s))
        for c, pi, s in store.sql(
            "SELECT customer_id, price_index, segment_id FROM customer_needs "
            "WHERE customer_id IN (SELECT unnest(?))", [customers],
        ).fetchall()
    }


def _own_tastes(
    store: Store, product: Product, customers: list[str], needs: dict[str, tuple[float | None, int | None]],
    events_table: str, customer_key: str,
) -> dict[str, Taste]:
    """Tastes from the customers' own purchases and mixes (customers with neither are left out)."""
    signals = product.product_signals
    raw: dict[str, dict[str, float]] = defaultdict(dict)
    why: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    if signals:
        rows = store.sql(
            f"""
            SELECT CAST(e.{customer_key} AS VARCHAR), l.product_id, any_value(l.name),
                   count(DISTINCT e.message_id)
            FROM {events_table} e JOIN order_lines l USING (message_id)
            WHERE e.event = 'Order Completed' AND list_contains(?, l.product_id)
              AND CAST(e.{customer_key} AS VARCHAR) IN (SELECT unnest(?))
            GROUP BY 1, 2 ORDER BY 1, 4 DESC, 2
            """, [sorted(signals), customers],
        ).fetchall()
        for customer, pid, name, n in rows:
            for tag, w in signals[pid].items():
                raw[customer][tag] = raw[customer].get(tag, 0.0) + w * n
                why[customer][tag].append(f"bought {name or pid} {n}×")
    by_name = {o.name.lower(): o for o in product.options} | {o.id: o for o in product.options}
    mixes = store.sql(
        f"""
        SELECT CAST({customer_key} AS VARCHAR), json_extract_string(properties, '$.mix'), ts
        FROM {events_table}
        WHERE event = 'Subscription Started' AND CAST({customer_key} AS VARCHAR) IN (SELECT unnest(?))
        QUALIFY row_number() OVER (PARTITION BY {customer_key} ORDER BY ts DESC) = 1
        """, [customers],
    ).fetchall()
    stated: dict[str, dict[str, float]] = defaultdict(dict)
    for customer, mix, ts in mixes:
        try:
            names = json.loads(mix) if mix else []
        except json.JSONDecodeError:
            continue
        for name in names if isinstance(names, list) else []:
            opt = by_name.get(str(name).lower())
            if opt is not None:
                stated[customer][MIX_PREFIX + opt.id] = 1.0
                why[customer][MIX_PREFIX + opt.id].append(f"in your own mix of {ts:%Y-%m-%d}")
    out: dict[str, Taste] = {}
    for c in customers:
        weights = _scaled(raw.get(c, {})) | stated.get(c, {})
        if weights:
            pi, seg = needs.get(c, (None, None))
            reasons = {t: ", ".join(why[c][t][:2]) for t in weights}
            out[c] = Taste(weights, reasons, _sensitivity(pi), "own purchases and mixes", seg)
    return out
