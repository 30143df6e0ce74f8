"""The Decider on the full-covariance policy: what it stores, how responses move it, old stores."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from customize_helpers import T0, days, write_orders

from xrm.customize import Decider, LogisticThompson, Offer, add_offers, build_recommendations
from xrm.customize._bandit import DECISION_FEATURES, MODEL_NAME
from xrm.store import Store

NOW = T0 + days(6 * 35 + 42)
D = len(DECISION_FEATURES)


@pytest.fixture
def shop(store: Store) -> Store:
    orders = [(f"u{c}", f"o{c}-{b}", T0 + days(35 * b), ["beans"] if c % 2 == 0 else ["tea"])
              for c in range(12) for b in range(6)]
    write_orders(store, orders, {"beans": "espresso beans", "tea": "green tea"})
    build_recommendations(store, k=4)
    add_offers(store, [
        Offer("espresso", "product", "Espresso beans 1 kg", 4.10, category="coffee", product_ids=("beans",)),
        Offer("tea", "product", "Green tea", 3.0, category="tea", product_ids=("tea",)),
        Offer("guide", "content", "Brewing guide", 0.8, category="content", channels=("web",)),
    ])
    return store


def _state(store: Store, offer_id: str) -> tuple[str, np.ndarray, np.ndarray, int]:
    row = store.sql(
        "SELECT model, mean, covariance, n_responses FROM bandit_state WHERE offer_id = ?", [offer_id]
    ).fetchone()
    assert row is not None, f"no bandit_state row for {offer_id}"
    model, mean, cov, n = row
    return model, np.array(mean), np.array(cov).reshape(D, D), n


def test_responses_update_the_whole_matrix_and_the_next_decision_reads_it(shop: Store) -> None:
    decider = Decider(shop, seed=1)
    expected = LogisticThompson.prior(1, [0.05], full=True)  # the offers' default base rate
    first = decider.decide("u0", "web", k=1, explore=0.0, now=NOW)
    top = first.offers[0]
    features = shop.sql("SELECT features FROM decision_items WHERE decision_id = ?",
                        [first.decision_id]).fetchall()
    assert features == []  # not written until the response flushes the log
    outcomes = ["ignore", "click", "ignore", "ignore"]
    for outcome in outcomes:
        d = decider.decide("u0", "web", k=1, explore=0.0, now=NOW)
        chosen = d.offers[0]
        assert decider.apply_response(d.decision_id, chosen.offer_id, outcome)
        (x,), = shop.sql("SELECT features FROM decision_items WHERE decision_id = ? AND offer_id = ?",
                         [d.decision_id, chosen.offer_id]).fetchall()
        if chosen.offer_id == top.offer_id:
            expected.update(0, np.array(x), {"ignore": 0.0, "click": 1.0}[outcome])
    model, mean, cov, n = _state(shop, top.offer_id)
    assert model == MODEL_NAME == "thompson-logistic v2"
    assert n == expected.n_responses[0]
    assert expected.covariance is not None
    np.testing.assert_allclose(mean, expected.mean[0], rtol=1e-9)
    np.testing.assert_allclose(cov, expected.covariance[0], rtol=1e-9, atol=1e-12)
    # Correlated features (bias and affinity move together): the matrix is not diagonal any more.
    assert abs(cov[0, 1]) > 1e-3
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # The next decision reads the new posterior at once (no refresh by the clock: check_every=2 s).
    after = decider.decide("u0", "web", k=3, explore=0.0, now=NOW)
    p = {o.offer_id: o.p_mean for o in after.offers}
    assert p[top.offer_id] != pytest.approx(top.p_mean)


def test_exploring_decisions_log_propensities_from_the_full_posterior(shop: Store) -> None:
    decider = Decider(shop, seed=2)
    for _ in range(3):  # a posterior with off-diagonal terms
        d = decider.decide("u1", "web", k=1, explore=0.0, now=NOW)
        decider.apply_response(d.decision_id, d.offers[0].offer_id, "ignore")
    decisions = [decider.decide(f"u{c % 12}", "web", k=2, explore=1.0, now=NOW) for c in range(40)]
    decider.flush()
    logged = dict(((r[0], r[1]), r[2]) for r in shop.sql(
        "SELECT decision_id, rank, propensity FROM decision_items").fetchall())
    for d in decisions:
        assert d.explored
        for o in d.offers:
            assert 0 < o.propensity <= 1
            assert logged[(d.decision_id, o.rank)] == pytest.approx(o.propensity)
    # Exploration really varies: over 40 customers x draws more than one offer leads somewhere.
    assert len({d.offers[0].offer_id for d in decisions}) > 1


def test_draws_have_the_posterior_covariance() -> None:
    policy = LogisticThompson.prior(2, [0.1, 0.2], full=True)
    rng = np.random.default_rng(0)
    for _ in range(30):
        policy.update(1, np.array([1.0, rng.random(), 0.5, 0.0, 0.0]), float(rng.random() < 0.3))
    w = policy.draw_weights(rng, 40_000)[:, 1, :]
    assert policy.covariance is not None
    np.testing.assert_allclose(w.mean(axis=0), policy.mean[1], atol=0.03)
    np.testing.assert_allclose(np.cov(w.T), policy.covariance[1], atol=0.03)


def test_a_store_with_the_diagonal_state_migrates_to_the_diagonal_matrix(shop: Store, settings) -> None:
    """A store written before migration 4 (bandit_state without covariance, model v1)."""
    precision = [2.0, 4.0, 1.0, 1.0, 5.0]
    mean = [-2.0, 1.5, 1.0, 0.0, 0.3]
    shop.close()
    con = duckdb.connect(str(settings.store_path))
    con.execute("ALTER TABLE bandit_state DROP COLUMN covariance")
    con.execute("INSERT INTO bandit_state VALUES ('tea', 'thompson-logistic v1', ?, ?, ?, 7, "
                "current_timestamp)", [list(DECISION_FEATURES), mean, precision])
    con.execute("UPDATE xrm_meta SET version = 3 WHERE capability = 'customize'")
    con.close()
    with Store.open(settings) as s:
        assert s.schema_versions()["customize"][0] >= 4  # migration 4 ran (later ones may follow)
        model, got_mean, cov, n = _state(s, "tea")
        assert (model, n) == ("thompson-logistic v2", 7)
        np.testing.assert_allclose(got_mean, mean)
        np.testing.assert_allclose(cov, np.diag(1 / np.array(precision)))
        # The Decider reads it: the same P(response) as the diagonal posterior it came from.
        decider = Decider(s, seed=3)
        d = decider.decide("u1", "web", k=3, explore=0.0, now=NOW)
        tea = next(o for o in d.offers if o.offer_id == "tea")
        decider.flush()
        (x,), = s.sql("SELECT features FROM decision_items WHERE decision_id = ? AND offer_id = 'tea'",
                      [d.decision_id]).fetchall()
        diagonal = LogisticThompson(np.array([mean]), np.array([precision]), np.array([7]))
        assert tea.p_mean == pytest.approx(float(diagonal.mean_probability(np.array([x]))[0]))
