"""Purchase summaries on a real DuckDB store: semantics, the pipeline step, and CDNOW's summary."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from xrm.differentiate import SUMMARY_COLUMNS, build_purchase_summaries, order_events, purchase_summary
from xrm.exceptions import InputError
from xrm.pipeline import run_pipeline


def _events(rows: list[tuple[str | None, str, float | None]], **extra: object) -> pd.DataFrame:
    n = len(rows)
    df = pd.DataFrame(
        {
            "message_id": [f"m{i}" for i in range(n)],
            "type": "track",
            "event": "Order Completed",
            "user_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows]),
            "order_id": [f"o{i}" for i in range(n)],
            "revenue": [r[2] for r in rows],
        }
    )
    for k, v in extra.items():
        df[k] = v
    return df


def _summary(store, **kw) -> pd.DataFrame:
    expr = purchase_summary(order_events(store.table("events")), **kw)
    return expr.to_pyarrow().to_pandas().set_index("customer_id").sort_index()


def test_same_day_orders_are_one_purchase_and_spend_is_averaged_over_repeats(store, insert_events):
    insert_events(store, _events([
        ("a", "2024-01-01 09:00", 10.0),
        ("a", "2024-01-01 18:00", 5.0),   # same day: one purchase of 15
        ("a", "2024-01-08 10:00", 20.0),
        ("a", "2024-01-15 23:59", 40.0),
        ("b", "2024-01-10 12:00", 7.0),
    ]))
    s = _summary(store, observation_end="2024-01-29", time_unit="W")
    a, b = s.loc["a"], s.loc["b"]
    assert a.frequency == 2 and a.n_orders == 4
    assert a.recency == pytest.approx(2.0) and a["T"] == pytest.approx(4.0)
    assert a.monetary_value == pytest.approx(30.0)  # (20 + 40) / 2: the first purchase is excluded
    assert a.total_spend == pytest.approx(75.0)
    assert a.first_purchase == pd.Timestamp("2024-01-01 09:00")
    assert a.last_purchase == pd.Timestamp("2024-01-15 23:59")
    assert (b.frequency, b.recency, b.monetary_value) == (0, 0.0, 0.0)
    assert b["T"] == pytest.approx(19 / 7)
    assert list(s.reset_index().columns) == list(SUMMARY_COLUMNS)


def test_calibration_holdout_split(store, insert_events):
    insert_events(store, _events([
        ("a", "2024-01-01", 10.0),
        ("a", "2024-01-31", 20.0),        # calibration_end is inclusive
        ("a", "2024-02-05", 30.0),
        ("a", "2024-02-05", 6.0),
        ("a", "2024-02-20", 50.0),
        ("a", "2024-03-05", 99.0),        # after observation_end: ignored
        ("c", "2024-02-10", 5.0),         # first purchase in the holdout: not in the cohort
    ]))
    s = _summary(store, observation_end="2024-03-01", calibration_end=dt.date(2024, 1, 31), time_unit="D")
    assert list(s.index) == ["a"]
    a = s.loc["a"]
    assert (a.frequency, a.recency, a["T"]) == (1, 30.0, 30.0)
    assert a.frequency_holdout == 2
    assert a.spend_holdout == pytest.approx(86.0)
    assert a.monetary_value_holdout == pytest.approx(43.0)
    assert a.duration_holdout == pytest.approx(30.0)


def test_nulls_other_events_and_a_custom_key(store, insert_events):
    ev = _events([
        ("a", "2024-01-01", None),        # no revenue: counts as a purchase of 0
        ("a", "2024-01-03", 8.0),
        (None, "2024-01-02", 3.0),        # no customer: left out
    ], anonymous_id=["x1", "x1", "x2"])
    other = _events([("a", "2024-01-05", 100.0)])
    other["event"], other["message_id"] = "Product Viewed", "v0"
    insert_events(store, pd.concat([ev, other]))
    s = _summary(store, observation_end="2024-01-10", time_unit=1)
    assert list(s.index) == ["a"] and s.loc["a"].frequency == 1
    assert s.loc["a"].monetary_value == pytest.approx(8.0)
    by_device = _summary(store, observation_end="2024-01-10", time_unit="D", customer_key="anonymous_id")
    assert list(by_device.index) == ["x1", "x2"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"observation_end": "2024-13-01"}, "is not a date"),
        ({"observation_end": "2024-01-01", "calibration_end": "2024-02-01"}, "is after observation_end"),
        ({"observation_end": "2024-01-01", "time_unit": "fortnight"}, "time_unit 'fortnight'"),
        ({"observation_end": "2024-01-01", "time_unit": 0}, "positive number of days"),
        ({"observation_end": "2024-01-01", "customer_key": "profile_id"}, "no column(s) profile_id"),
    ],
)
def test_bad_arguments_are_refused_clearly(store, kw, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        purchase_summary(order_events(store.table("events")), **kw)


def test_build_writes_the_table_and_returns_counts(store, insert_events):
    insert_events(store, _events([
        ("a", "2024-01-01", 10.0), ("a", "2024-01-08", 20.0), ("b", "2024-01-04", 5.0),
    ]))
    out = build_purchase_summaries(store)
    assert out["customers"] == 2 and out["repeat_customers"] == 1 and out["orders"] == 3
    assert out["observation_end"] == "2024-01-08" and out["spend"] == pytest.approx(35.0)
    rows = store.sql(
        'SELECT customer_id, frequency, "T", time_unit_days, observation_end FROM purchase_summaries '
        "ORDER BY 1"
    ).fetchall()
    assert rows == [("a", 1, 1.0, 7.0, dt.date(2024, 1, 8)), ("b", 0, 4 / 7, 7.0, dt.date(2024, 1, 8))]
    # Running again replaces the table rather than adding to it.
    assert build_purchase_summaries(store)["customers"] == 2
    assert store.count("purchase_summaries") == 2


def test_build_on_an_empty_store(store, insert_events):
    assert build_purchase_summaries(store)["customers"] == 0
    assert store.count("purchase_summaries") == 0


def test_pipeline_runs_the_step(cdnow_store):
    results = {r.step: r for r in run_pipeline(cdnow_store, steps=("identities", "purchase summaries"))}
    step = results["purchase summaries"]
    assert step.status == "done" and step.summary["customers"] == 2357


def test_cdnow_summary_matches_the_published_one(cdnow_store, cdnow_published):
    """Fader & Hardie's CDNOW summary (weeks, same-day purchases merged) from the raw orders."""
    out = build_purchase_summaries(
        cdnow_store, observation_end="1998-06-30", calibration_end="1997-09-30", time_unit="W"
    )
    assert out["customers"] == 2357 and out["repeat_customers"] == 946
    ours = cdnow_store.sql("SELECT * FROM purchase_summaries").df()
    ours["ID"] = ours["customer_id"].astype(int)
    m = ours.merge(cdnow_published, on="ID", suffixes=("", "_pub"))
    assert len(m) == 2357
    assert (m["frequency"] == m["frequency_pub"]).all()
    # The published file rounds to 2 decimals.
    assert np.abs(m["recency"] - m["recency_pub"]).max() < 0.0051
    assert np.abs(m["T"] - m["T_pub"]).max() < 0.0051
    assert np.abs(m["monetary_value"] - m["monetary_value_pub"]).max() < 0.0051
    # FHL (2005) §6: the 1,411 customers without a repeat purchase made 334 in weeks 40-78.
    zero = ours[ours["frequency"] == 0]
    assert len(zero) == 1411 and zero["frequency_holdout"].sum() == 334
    assert (ours["duration_holdout"] == 39.0).all()
