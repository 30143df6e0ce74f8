"""Value traits in the store: fitted models saved, every customer scored and tiered, wallet, migration.

Runs on a real DuckDB store holding the CDNOW orders (and synthetic purchases for edge cases).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from xrm.differentiate import (
    FORMAT_VERSION,
    MONTH_IN_WEEKS,
    BetaGeoNBD,
    GammaGamma,
    ValuePolicy,
    build_purchase_summaries,
    build_value,
    estimate_wallet,
    load_value_models,
    score_customers,
    score_value,
    tier_migration,
    value_report,
)
from xrm.exceptions import ConfigError, ModelError

VALUE_COLUMNS = (
    "p_alive", "expected_purchases", "expected_spend", "clv", "net_value", "historic_spend",
    "spend_12m", "wallet", "share_of_wallet", "headroom",
)


@pytest.fixture
def scored(cdnow_store):
    build_purchase_summaries(cdnow_store)
    return cdnow_store


def _values(store) -> pd.DataFrame:
    return store.sql("SELECT * FROM customer_value ORDER BY customer_id").df()


def _summary(store) -> pd.DataFrame:
    return store.sql("SELECT * FROM purchase_summaries ORDER BY customer_id").df()


def test_scores_every_customer_with_the_models_it_saved(scored):
    # A 12-month horizon at 1 % a month: exactly what score_customers computes from the same fit.
    out = score_value(scored, horizon_weeks=12 * MONTH_IN_WEEKS, discount_rate=0.01)
    v, s = _values(scored), _summary(scored)
    assert out["customers"] == len(v) == 2357 and out["spend_excluded"] == 0
    nulls = " + ".join(f"count(*) FILTER ({c} IS NULL OR isnan({c}))" for c in VALUE_COLUMNS)
    assert scored.sql(f"SELECT {nulls} FROM customer_value").fetchall()[0][0] == 0
    assert v.p_alive.between(0, 1).all() and (v.clv >= 0).all() and (v.expected_purchases >= 0).all()

    bg = BetaGeoNBD().fit(s)
    spend = s[(s.frequency > 0) & (s.monetary_value > 0)]
    gg = GammaGamma().fit(spend)
    for name, value in bg.params_.items():
        assert out["params"][name] == pytest.approx(value, rel=1e-6)
    want = score_customers(bg, gg, s, horizon=12, discount_rate=0.01)
    np.testing.assert_allclose(v.clv, want.clv, rtol=1e-6)
    np.testing.assert_allclose(v.p_alive, want.p_alive, rtol=1e-9)
    np.testing.assert_allclose(v.expected_purchases, want.expected_purchases, rtol=1e-6)
    np.testing.assert_allclose(v.historic_spend, s.total_spend + s.spend_holdout)

    rows = scored.sql("SELECT role, model, format_version, n, log_likelihood, params, se FROM value_models"
                      " ORDER BY role").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("purchases", "bg/nbd", FORMAT_VERSION), ("spend", "gamma-gamma", FORMAT_VERSION)
    ]
    assert rows[0][3] == 2357 and rows[0][4] == pytest.approx(bg.log_likelihood_, rel=1e-8)
    assert rows[1][3] == len(spend) and set(json.loads(rows[1][6])) == {"p", "q", "gamma"}
    purchases, gg_loaded, fit_id = load_value_models(scored)
    assert fit_id == out["fit_id"]
    np.testing.assert_allclose(purchases.p_alive(s), v.p_alive, rtol=1e-12)
    np.testing.assert_allclose(gg_loaded.expected_spend(s), v.expected_spend, rtol=1e-12)


def test_tiers_follow_clv_and_headroom(scored):
    out = score_value(scored, mvc_share=0.03, mgc_share=0.15)
    v = _values(scored)
    n = len(v)
    mvc, mgc, normal = (v[v.tier == t] for t in ("MVC", "MGC", "normal"))
    assert len(mvc) == math.ceil(0.03 * n) and len(mgc) == math.ceil(0.15 * n)
    assert mvc.clv.min() >= v[v.tier != "MVC"].clv.max()
    eligible = normal[(normal.headroom > 0) & (normal.p_alive >= 0.5)]
    assert mgc.headroom.min() >= eligible.headroom.max()
    assert (mgc.p_alive >= 0.5).all() and not (v.tier == "BZ").any()
    shares = {t["tier"]: t for t in out["tiers"]}
    assert shares["MVC"]["clv_share"] == pytest.approx(mvc.clv.sum() / v.clv.sum())
    assert shares["MVC"]["clv_share"] > 0.3  # the top 3 % carry a large share of value
    assert sum(t["customer_share"] for t in out["tiers"]) == pytest.approx(1.0)


def test_cost_to_serve_makes_below_zero_customers(scored):
    score_value(scored, margin=0.3, cost_per_order=4.0, cost_per_year=1.0)
    v = _values(scored)
    bz = v.tier == "BZ"
    assert bz.any() and (bz == (v.net_value < 0)).all()
    assert (v.net_value <= v.clv).all()
    assert v.loc[~bz & (v.tier == "MVC"), "clv"].min() >= v.loc[~bz & (v.tier != "MVC"), "clv"].max()


def test_refit_is_stable_and_migration_is_counted(scored):
    first = score_value(scored)
    second = score_value(scored)  # a refit on the same data
    for k, value in first["params"].items():
        assert second["params"][k] == pytest.approx(value, rel=1e-6)
    same = tier_migration(scored)
    assert same["moved"] == 0 and same["stability"] == 1.0 and same["to_run"] == second["run_id"]
    third = score_value(scored, refit=False, mvc_share=0.10)  # reuses the saved fit
    assert third["fit_id"] == second["fit_id"] and "fit" not in third
    moved = tier_migration(scored)
    n = third["customers"]
    up = sum(m["customers"] for m in moved["moves"] if m["to"] == "MVC" and m["from"] != "MVC")
    assert up == math.ceil(0.10 * n) - math.ceil(0.05 * n)
    assert not any(m["from"] == "MVC" and m["to"] != "MVC" for m in moved["moves"])
    back = tier_migration(scored, from_run=first["run_id"], to_run=third["run_id"])
    assert back["moved"] >= up
    with pytest.raises(ModelError, match="no tier history"):
        tier_migration(scored, from_run="run-nope", to_run=third["run_id"])


def test_pareto_nbd_and_a_configured_wallet(scored):
    out = score_value(scored, model="paretonbd", category_wallet={"*": 150.0})
    v = _values(scored)
    assert out["model"] == "pareto/nbd" and out["wallet"]["method"] == "configured"
    assert (v.wallet_source == "configured").all()
    np.testing.assert_allclose(v.wallet, np.maximum(150.0, v.spend_12m))
    np.testing.assert_allclose(v.share_of_wallet, v.spend_12m / v.wallet)
    assert "category spend per segment as configured" in out["wallet"]["note"]


def test_lookalike_wallet_says_what_it_is(scored):
    out = score_value(scored)
    v = _values(scored)
    assert "no wallet survey data" in out["wallet"]["note"]
    assert (v.wallet >= v.spend_12m).all() and v.share_of_wallet.between(0, 1).all()
    buyers = v.spend_12m[v.spend_12m > 0]
    q90 = float(np.quantile(buyers, 0.9))
    below = v.spend_12m < q90
    np.testing.assert_allclose(v.wallet[below], q90)  # one look-alike group: no needs data


def test_estimate_wallet_by_group():
    rng = np.random.default_rng(1)
    spend = np.concatenate([rng.uniform(0, 100, 50), rng.uniform(0, 1000, 50), [0.0] * 5])
    groups = np.array(["a"] * 50 + ["b"] * 50 + ["c"] * 5, dtype=object)
    wallet, source = estimate_wallet(spend, groups, quantile=0.8, configured={"c": 42.0})
    assert wallet[:50].max() < 100 < wallet[50:100].min()  # look-alikes, not everyone
    assert (wallet >= spend).all() and list(source[-5:]) == ["configured"] * 5
    assert (wallet[-5:] == 42.0).all()
    q = np.quantile(spend[:50][spend[:50] > 0], 0.8)
    assert wallet[int(np.argmin(spend[:50]))] == pytest.approx(q)


def test_non_positive_spend_is_excluded_and_counted(scored, insert_events):
    # Three repeat customers whose repeat orders were free or returned.
    rows = []
    for i, amount in enumerate([0.0, -5.0, 0.0]):
        for j, day in enumerate(("1997-02-01", "1997-05-01", "1997-09-01")):
            rows.append((f"free{i}", day, 12.0 if j == 0 else amount))
    insert_events(scored, pd.DataFrame({
        "message_id": [f"free-{k}" for k in range(len(rows))], "type": "track",
        "event": "Order Completed", "user_id": [r[0] for r in rows],
        "ts": pd.to_datetime([r[1] for r in rows]), "revenue": [r[2] for r in rows],
    }))
    build_purchase_summaries(scored)
    out = score_value(scored)
    assert out["spend_excluded"] == 3 and out["fit"]["spend_excluded"]["customers"] == 3
    v = _values(scored).set_index("customer_id")
    free = v.loc[["free0", "free1", "free2"]]
    assert np.isfinite(free.expected_spend).all() and (free.expected_spend > 0).all()
    assert (free.expected_spend < v.expected_spend.median()).all()  # shrunk from an average of 0


def test_empty_store_gets_a_clear_message(store):
    out = score_value(store)
    assert out["customers"] == 0 and "load `Order Completed` events" in out["skipped"]
    both = build_value(store)
    assert "skipped" in both["value"] and "skipped" in both["needs"]
    assert store.count("customer_value") == 0
    with pytest.raises(ModelError, match="no value scoring run"):
        value_report(store)


def test_too_few_customers_is_refused_not_nan(store, insert_events):
    insert_events(store, pd.DataFrame({
        "message_id": ["a", "b"], "type": "track", "event": "Order Completed", "user_id": ["x", "x"],
        "ts": pd.to_datetime(["2024-01-01", "2024-02-01"]), "revenue": [10.0, 12.0],
    }))
    build_purchase_summaries(store)
    with pytest.raises(ModelError, match=r"too few|at least 2|no interior"):
        score_value(store)
    assert "skipped" in build_value(store)["value"]  # the pipeline step goes on
    assert store.count("customer_value") == 0


def test_settings_are_checked_together():
    with pytest.raises(ConfigError) as err:
        ValuePolicy(model="bg", discount_rate=2.0, mvc_share=0.9, mgc_share=0.5, wallet_quantile=0.2).check()
    text = str(err.value)
    for name in ("model", "discount_rate", "mgc_share", "wallet_quantile"):
        assert name in text
    with pytest.raises(ConfigError, match="unknown value setting"):
        ValuePolicy.from_dict({"horizon": 52})


def test_policy_and_keywords_are_not_mixed(store):
    with pytest.raises(ConfigError, match="not both"):
        score_value(store, policy=ValuePolicy(), mvc_share=0.1)


def test_a_saved_model_of_another_format_is_refused(scored):
    out = score_value(scored)
    scored.sql(
        "UPDATE value_models SET saved = json_merge_patch(saved, '{\"format_version\": 99}') "
        "WHERE fit_id = ? AND role = 'spend'", [out["fit_id"]]
    ).fetchall()
    with pytest.raises(ModelError, match="format v99"):
        load_value_models(scored)
    with pytest.raises(ModelError, match="format v99"):
        score_value(scored, refit=False)


def test_report_lists_top_customers(scored):
    score_value(scored)
    rep = value_report(scored, top=5)
    clvs = [r["clv"] for r in rep["top_customers"]]
    assert len(clvs) == 5 and clvs == sorted(clvs, reverse=True)
    assert rep["top_customers"][0]["tier"] == "MVC" and rep["run"]["customers"] == 2357


def test_pipeline_runs_value_and_needs(cdnow_store):
    from xrm.pipeline import run_pipeline

    results = {r.step: r for r in run_pipeline(
        cdnow_store, steps=("identities", "purchase summaries", "value and needs")
    )}
    step = results["value and needs"]
    assert step.status == "done", step.message
    assert step.summary["value"]["customers"] == 2357 and step.summary["needs"]["k"] == 1
    assert cdnow_store.count("customer_value") == 2357 and cdnow_store.count("customer_needs") == 2357
