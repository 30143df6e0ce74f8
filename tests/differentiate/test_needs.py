"""Needs profiles and needs-based segments on a real DuckDB store with planted segments.

Three planted groups of 40 customers: premium coffee buyers online, budget tea buyers in store,
and kitchen buyers in the app.  Each order has three lines of the group's category and one of
another category at its usual price.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from order_rows import insert_orders

from xrm.differentiate import build_needs, build_purchase_summaries, needs_profiles, segment_report
from xrm.store import Store

USUAL = {"Kaffee": 8.0, "Tee": 6.0, "Müsli": 5.0, "Küche": 10.0}
GROUPS = {  # group: (category, its price, channel, app)
    "coffee": ("Kaffee", 15.0, "online", False),
    "tea": ("Tee", 3.0, "store", False),
    "kitchen": ("Küche", 10.0, "online", True),
}


def _plant(store: Store, per_group: int = 40, seed: int = 7) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    events, lines, truth = [], [], {}
    for group, (main, price, channel, app) in GROUPS.items():
        others = [c for c in USUAL if c != main]
        for i in range(per_group):
            cid = f"{group}-{i:02d}"
            truth[cid] = group
            # every customer starts in the first days and buys about monthly: one rhythm for all
            days = np.arange(6) * 30 + rng.integers(0, 10, 6)
            for j, day in enumerate(days):
                mid = f"{cid}-o{j}"
                basket = [(main, price)] * 3 + [(others[j % 3], USUAL[others[j % 3]])]
                events.append({
                    "message_id": mid, "type": "track", "event": "Order Completed", "user_id": cid,
                    "ts": pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day), hours=10),
                    "order_id": mid, "revenue": sum(p for _, p in basket),
                    "properties": json.dumps({"channel": channel}),
                    "context": json.dumps({"app": {"name": "Kaffeekorb"}} if app else {"library": {}}),
                })
                for k, (cat, p) in enumerate(basket):
                    lines.append({"message_id": mid, "line_no": k, "order_id": mid, "product_id": f"{cat}-1",
                                  "category": cat, "price": p, "quantity": 1.0})
    insert_orders(store, events, lines)
    return truth


def test_profiles_measure_categories_price_channel_and_rhythm(store):
    _plant(store)
    p, categories, known = needs_profiles(store)
    assert known and sorted(categories) == sorted(USUAL) and len(p) == 120
    coffee, tea, kitchen = (p[p.index.str.startswith(g)] for g in GROUPS)
    assert (coffee["cat:Kaffee"] > 0.6).all() and (coffee.price_index > 1.5).all()
    assert (tea["cat:Tee"] > 0.4).all() and (tea.price_index < 0.9).all()
    assert (kitchen.price_index.between(0.95, 1.05)).all()
    assert (coffee.online_share == 1).all() and (tea.online_share == 0).all()
    assert (kitchen.app_share == 1).all() and (coffee.app_share == 0).all()
    assert np.allclose(p[[f"cat:{c}" for c in categories]].sum(axis=1), 1.0)
    assert (p.top_category[coffee.index] == "Kaffee").all()
    assert p.purchases_per_month.between(0.9, 6).all() and not p.isna().any().any()


def test_segments_recover_the_planted_groups_and_describe_them(store):
    truth = _plant(store)
    out = build_needs(store)
    assert out["k"] == 3 and out["silhouette"] > 0.5 and out["customers"] == 120
    members = dict(store.sql("SELECT customer_id, segment_id FROM customer_needs").fetchall())
    words = {s["segment_id"]: s["description"] for s in out["segments"]}
    for group in GROUPS:
        segs = {members[c] for c, g in truth.items() if g == group}
        assert len(segs) == 1, f"{group} split over segments {segs}"
        desc = words[segs.pop()]
        expected = {
            "coffee": ("Kaffee lovers", "online", "premium"),
            "tea": ("Tee lovers", "in store", "budget"),
            "kitchen": ("Küche lovers", "app", "mid-price"),
        }[group]
        assert desc.split(", ")[:3] == list(expected), desc
    nans = store.sql(
        "SELECT count(*) FROM customer_needs WHERE isnan(price_index) OR isnan(online_share) "
        "OR isnan(purchases_per_month)"
    ).fetchall()[0][0]
    assert nans == 0


def test_segment_report_gives_sizes_and_value_shares(store):
    _plant(store)
    build_needs(store)
    rep = segment_report(store)
    assert [r["customers"] for r in rep] == [40, 40, 40]
    assert sum(r["customer_share"] for r in rep) == pytest.approx(1.0)
    assert sum(r["spend_share"] for r in rep) == pytest.approx(1.0)
    biggest = max(rep, key=lambda r: r["spend_share"])
    assert biggest["description"].startswith("Kaffee lovers")  # premium coffee spends the most


def test_a_fixed_k_and_a_rebuild(store):
    _plant(store)
    two = build_needs(store, k=2)
    assert two["k"] == 2 and store.count("needs_segments") == 2
    again = build_needs(store)
    assert again["k"] == 3 and store.count("needs_segments") == 3 and store.count("customer_needs") == 120


def test_orders_without_lines_or_channels_make_one_segment(cdnow_store):
    build_purchase_summaries(cdnow_store)
    out = build_needs(cdnow_store)
    assert out["k"] == 1 and "one segment" in out["note"]
    assert store_count(cdnow_store) == 2357


def store_count(store: Store) -> int:
    return store.count("customer_needs")
