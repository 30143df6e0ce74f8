"""Incremental needs updates on a real DuckDB store: the same numbers as a full rebuild with the
last build's frozen parts, only the touched customers' rows rewritten, membership moving with
the profile."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from order_rows import insert_orders
from tests.differentiate.test_needs import USUAL, _plant

from xrm.differentiate import build_needs, update_needs
from xrm.differentiate._needs import assign_segments, derive_profiles, profile_sums
from xrm.differentiate._needs_state import read_model, read_state
from xrm.differentiate._needs_update import NOT_BUILT, _decay
from xrm.store import Store

NUMERIC = ["spend", "price_index", "online_share", "app_share", "purchases_per_month"]


def _insert(store: Store, orders: list[tuple[str, str, float, str, bool, str, int]]) -> None:
    """Orders (customer, day, price, category, app, channel, lines) as events and lines, received now."""
    events, lines = [], []
    for n, (cid, day, price, cat, app, channel, k) in enumerate(orders):
        mid = f"new-{cid}-{day}-{n}"
        events.append({
            "message_id": mid, "type": "track", "event": "Order Completed", "user_id": cid,
            "ts": pd.Timestamp(day), "order_id": mid, "revenue": price * k,
            "properties": json.dumps({"channel": channel}),
            "context": json.dumps({"app": {"name": "Kaffeekorb"}} if app else {"library": {}}),
        })
        lines += [{"message_id": mid, "line_no": i, "order_id": mid, "product_id": f"{cat}-1",
                   "category": cat, "price": price, "quantity": 1.0} for i in range(k)]
    insert_orders(store, events, lines)


def _needs(store: Store) -> pd.DataFrame:
    return store.sql("SELECT * FROM customer_needs ORDER BY customer_id").df().set_index("customer_id")


@pytest.fixture
def built(store: Store) -> Store:
    _plant(store)
    build_needs(store, k=3)  # the planted three: no search over k, a faster test
    return store


def test_update_before_any_build_says_what_to_do(store):
    _plant(store)
    assert update_needs(store) == {"touched": 0, "skipped": NOT_BUILT}


def test_incremental_update_equals_a_full_rebuild(built):
    store = built
    before = _needs(store)
    segment_of = before["segment_id"].to_dict()
    _insert(store, [
        # a coffee customer turns to cheap tea in the shop: weekly for twenty weeks, a year later
        *[(("coffee-00", str(pd.Timestamp("2025-01-06 09:00") + pd.Timedelta(weeks=w)), 3.0, "Tee", False,
            "store", 4)) for w in range(20)],
        ("tea-05", "2025-05-20 12:00", 15.0, "Kaffee", True, "online", 2),
        ("tea-05", "2024-03-02 12:00", 3.0, "Tee", False, "store", 1),  # late: an old date, sent now
        ("kitchen-07", "2025-05-21 18:30", 10.0, "Küche", True, "online", 1),  # the newest order
        ("newcomer", "2025-05-21 08:00", 7.0, "Müsli", False, "store", 3),  # a new customer
    ])
    out = update_needs(store)
    assert out["touched"] == 4 and out["new_customers"] == 1 and out["orders"] == 24
    touched = ["coffee-00", "kitchen-07", "newcomer", "tea-05"]
    after = _needs(store)

    # untouched rows are exactly as they were, computed_at included
    same = after.drop(index=touched)
    pd.testing.assert_frame_equal(same, before.drop(index=[t for t in touched if t in before.index]))

    # the touched rows equal a full rebuild over all orders with the build's frozen parts
    model = read_model(store)
    assert model is not None
    spec, end = model["spec"], model["end_ts"]
    assert end == pd.Timestamp("2025-05-22")
    per, cc = profile_sums(store, end=end, half_life_days=180.0, with_days=True)
    full, _, _ = derive_profiles(per, cc, end, categories=spec["categories"], references=spec["references"])
    full["segment_id"] = assign_segments(full, spec)
    got = after.loc[touched]
    np.testing.assert_allclose(got[NUMERIC].to_numpy(float), full.loc[touched, NUMERIC].to_numpy(float),
                               rtol=1e-9, atol=1e-12)
    for col in ("orders", "segment_id", "top_category"):
        assert got[col].tolist() == full.loc[touched, col].tolist(), col

    # every customer's stored decayed sums, brought to the same time, equal the rebuilt ones
    state, state_cc = read_state(store, list(per.index))
    factor = _decay(state["as_of"], end, 180.0)
    for col in ("wsum", "w_online", "w_app"):
        np.testing.assert_allclose(state[col] * factor, per.loc[state.index, col], rtol=1e-9)
    assert [len(d) for d in state["day_list"]] == per.loc[state.index, "days"].tolist()
    mine, _, _ = derive_profiles(state.assign(days=[len(d) for d in state["day_list"]]), state_cc, end,
                                 categories=spec["categories"], references=spec["references"])
    shares = [f"cat:{c}" for c in spec["categories"]]
    np.testing.assert_allclose(mine[shares].to_numpy(), full.loc[mine.index, shares].to_numpy(),
                               rtol=1e-9, atol=1e-12)

    # membership follows the profile: coffee-00 now buys like the tea group, and the counts add up
    tea_segment = segment_of["tea-00"]
    assert segment_of["coffee-00"] != tea_segment and got.loc["coffee-00", "segment_id"] == tea_segment
    assert got.loc["coffee-00", "top_category"] == "Tee"
    assert got.loc["newcomer", "orders"] == 1 and got.loc["newcomer", "top_category"] == "Müsli"
    sizes = dict(store.sql("SELECT segment_id, customers FROM needs_segments").fetchall())
    assert sizes == after["segment_id"].value_counts().to_dict() and sum(sizes.values()) == 121


def test_nothing_new_changes_nothing_and_a_second_update_composes(built):
    store = built
    assert update_needs(store)["touched"] == 0
    _insert(store, [("coffee-01", "2024-08-01 09:00", 15.0, "Kaffee", False, "online", 3)])
    assert update_needs(store)["touched"] == 1
    _insert(store, [("coffee-01", "2024-09-15 09:00", 6.0, "Tee", False, "store", 2)])
    assert update_needs(store)["orders"] == 1
    model = read_model(store)
    assert model is not None
    per, cc = profile_sums(store, end=model["end_ts"], half_life_days=180.0)
    full, _, _ = derive_profiles(per, cc, model["end_ts"], categories=model["spec"]["categories"],
                                 references=model["spec"]["references"])
    row = _needs(store).loc["coffee-01"]
    np.testing.assert_allclose(row[NUMERIC].to_numpy(float), full.loc["coffee-01", NUMERIC].to_numpy(float),
                               rtol=1e-9)
    assert sorted(USUAL) == sorted(model["spec"]["references"])


def test_the_server_updates_needs_in_its_scheduler_loop(tmp_path):
    from tests.api.live import serve_in_thread

    from xrm.config import Settings

    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        secret_key="s" * 32, schedule_poll_seconds=0.2)
    with Store.open(settings) as store:
        _plant(store, per_group=10)
        build_needs(store, k=3)
        everyone = _needs(store)
        before = everyone.loc["coffee-01"]
    for live in serve_in_thread(settings):  # a real uvicorn server that owns the store
        store = live.app.state.store
        _insert(store, [("coffee-01", "2024-08-01 09:00", 6.0, "Tee", False, "store", 3)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _needs(store).loc["coffee-01", "orders"] == before["orders"]:
            time.sleep(0.1)
        after = _needs(store).loc["coffee-01"]
        untouched = _needs(store).drop(index="coffee-01")
    assert after["orders"] == before["orders"] + 1 and after["online_share"] < before["online_share"]
    pd.testing.assert_frame_equal(untouched, everyone.drop(index="coffee-01"))
