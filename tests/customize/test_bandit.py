"""The Thompson-sampling policy's updates are the exact Laplace steps they claim to be, in both the
diagonal and the full-covariance form, and its samples have the posterior's moments."""

from __future__ import annotations

import numpy as np
import pytest

from xrm.customize import LogisticThompson


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


def _map_step(m: np.ndarray, prec: np.ndarray, x: np.ndarray, y: float) -> np.ndarray:
    """Reference: the MAP weights of one observation under N(m, prec^-1), by full d-dim Newton."""
    w = m.copy()
    for _ in range(50):
        p = _sigmoid(w @ x)
        grad = prec @ (w - m) + (p - y) * x
        w = w - np.linalg.solve(prec + p * (1 - p) * np.outer(x, x), grad)
    return w


@pytest.mark.parametrize("full", [False, True])
def test_updates_are_the_laplace_steps(full):
    rng = np.random.default_rng(3)
    d = 4
    policy = LogisticThompson.prior(2, [0.1, 0.3], d=d, slopes=(0.5, 0.0, -0.2), full=full)
    prec = np.diag(policy.precision[1]).copy()  # the prior's precision matrix
    m = policy.mean[1].copy()
    for _ in range(30):
        x = np.r_[1.0, rng.normal(0, 1, d - 1)]
        y = float(rng.random() < 0.4)
        if not full:
            prec = np.diag(policy.precision[1])  # the diagonal form keeps only the diagonal
        w = _map_step(m, prec, x, y)
        p = _sigmoid(w @ x)
        prec = prec + (np.diag(x * x) if not full else np.outer(x, x)) * p * (1 - p)
        m = w
        policy.update(1, x, y)
        np.testing.assert_allclose(policy.mean[1], m, rtol=1e-7, atol=1e-9)
    if full:
        assert policy.covariance is not None
        np.testing.assert_allclose(policy.covariance[1], np.linalg.inv(prec), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(policy.precision[1], 1 / np.diag(np.linalg.inv(prec)), rtol=1e-6)
    else:
        np.testing.assert_allclose(policy.precision[1], np.diag(prec), rtol=1e-9)
    assert policy.n_responses.tolist() == [0, 30]
    np.testing.assert_array_equal(policy.mean[0], LogisticThompson.prior(2, [0.1, 0.3], d=d,
                                                                         slopes=(0.5, 0.0, -0.2)).mean[0])


@pytest.mark.parametrize("full", [False, True])
def test_samples_have_the_posteriors_moments(full):
    rng = np.random.default_rng(0)
    d, n = 3, 5
    policy = LogisticThompson.prior(n, d=d, slopes=(0.0, 0.0), full=full)
    for _ in range(200):
        a, x = int(rng.integers(n)), np.r_[1.0, rng.normal(0, 1, d - 1)]
        policy.update(a, x, float(rng.random() < 0.3))
    x = np.tile(np.r_[1.0, 0.7, -1.2], (n, 1))
    cov = (policy.covariance if full else np.stack([np.diag(1 / q) for q in policy.precision]))
    assert cov is not None
    mu = np.einsum("ad,ad->a", policy.mean, x)
    sd = np.sqrt(np.einsum("ad,ade,ae->a", x, cov, x))
    draws = policy.sample_probability(x, rng, draws=40_000)
    scores = np.log(draws / (1 - draws))
    np.testing.assert_allclose(scores.mean(axis=0), mu, atol=4 * sd.max() / np.sqrt(40_000) * 1.5)
    np.testing.assert_allclose(scores.std(axis=0), sd, rtol=0.03)
    # Exploration scales the spread; 0 gives the mean scores themselves.
    policy.exploration = 0.0
    np.testing.assert_allclose(policy.sample_probability(x, rng)[0], 1 / (1 + np.exp(-mu)), rtol=1e-12)



def _trained(n: int, d: int, *, rounds: int = 300, seed: int = 0, **kw: float) -> LogisticThompson:
    rng = np.random.default_rng(seed)
    policy = LogisticThompson.prior(n, d=d, slopes=(0.0,) * (d - 1), full=True, **kw)
    for _ in range(rounds):
        a, x = int(rng.integers(n)), np.r_[1.0, rng.normal(0, 1, d - 1)]
        policy.update(a, x, float(rng.random() < 0.1 + 0.1 * a / n))
    return policy


@pytest.mark.parametrize(("exploration", "optimism"), [(1.0, 0.0), (0.1, 0.5)])
def test_one_decision_at_a_time_learns_the_best_offer(exploration, optimism):
    """``choose`` + ``update`` on one shared feature row: the regret of the last 500 rounds is a
    fraction of the first 500's, and the truly best offer is chosen most of the time by then."""
    rng = np.random.default_rng(5)
    n_offers, d, rounds = 6, 3, 3000
    theta = rng.normal(0, 1, (n_offers, d))
    theta[:, 0] -= 2
    policy = LogisticThompson.prior(n_offers, d=d, slopes=(0.0, 0.0), full=True, exploration=exploration,
                                    optimism=optimism)
    regret = np.empty(rounds)
    best_chosen = np.empty(rounds, dtype=bool)
    for t in range(rounds):
        x = np.r_[1.0, rng.normal(0, 1, d - 1)]
        p = 1 / (1 + np.exp(-(theta @ x)))
        a = policy.choose(x, rng)
        policy.update(a, x, float(rng.random() < p[a]))
        regret[t], best_chosen[t] = p.max() - p[a], a == int(p.argmax())
    assert regret[-500:].sum() < 0.4 * regret[:500].sum(), (regret[:500].sum(), regret[-500:].sum())
    assert best_chosen[-500:].mean() > 0.75
    assert policy.n_responses.sum() == rounds


@pytest.mark.parametrize(("exploration", "optimism"), [(1.0, 0.0), (0.25, 0.0), (0.1, 0.5)])
def test_propensities_sum_to_one_and_are_the_choices_frequencies(exploration, optimism):
    policy = _trained(5, 3, rounds=60, exploration=exploration, optimism=optimism)
    x = np.array([1.0, 0.0, 0.0])
    rng = np.random.default_rng(1)
    props = policy.propensities(x, rng, draws=20_000)
    assert props.sum() == pytest.approx(1.0)
    assert np.all(props >= 0)
    chosen = np.bincount([policy.choose(x, rng) for _ in range(20_000)], minlength=5) / 20_000
    np.testing.assert_allclose(chosen, props, atol=0.015)
    assert (props > 0).sum() >= 2  # randomised: more than one offer can be chosen


def test_deterministic_ucb_has_propensity_one_for_its_choice():
    policy = _trained(5, 3, exploration=0.0, optimism=1.0)
    x = np.array([1.0, -0.2, 0.5])
    rng = np.random.default_rng(2)
    props = policy.propensities(x, rng)
    a = policy.choose(x, rng)
    assert props[a] == 1.0 and props.sum() == 1.0
    mu, var = policy._score_moments(x)
    assert a == int(np.argmax(mu + np.sqrt(var)))


def test_a_shared_row_gives_the_per_offer_rows_moments_and_choice():
    """The fast path (one feature row for every offer) is the same model as one row per offer."""
    for full in (False, True):
        policy = _trained(4, 3, exploration=0.3, optimism=0.2)
        if not full:
            policy = LogisticThompson(policy.mean, policy.precision, policy.n_responses, None, 0.3, 0.2)
        x = np.array([1.0, 0.4, -1.1])
        mu1, var1 = policy._score_moments(x)
        mu2, var2 = policy._score_moments(np.tile(x, (4, 1)))
        np.testing.assert_allclose(mu1, mu2, rtol=1e-12)
        np.testing.assert_allclose(var1, var2, rtol=1e-12)
        assert policy.choose(x, np.random.default_rng(9)) == policy.choose(np.tile(x, (4, 1)),
                                                                          np.random.default_rng(9))


def test_updates_in_place_leave_copies_alone():
    """``update`` writes through views; a ``subset`` taken before (the Decider's old view) keeps the
    old posterior."""
    policy = _trained(3, 3)
    before = policy.subset(np.arange(3))
    policy.update(1, np.array([1.0, 2.0, -1.0]), 1.0)
    assert policy.covariance is not None and before.covariance is not None
    changed = np.any(policy.mean != before.mean, axis=1) | np.any(policy.covariance != before.covariance,
                                                                  axis=(1, 2))
    assert changed.tolist() == [False, True, False]
    np.testing.assert_allclose(policy.precision[1], 1 / np.diag(policy.covariance[1]), rtol=1e-12)


def test_state_round_trips_through_the_bandit_state_table(store):
    """What ``record_response`` writes to ``bandit_state`` and ``_load_policy`` reads back is the same
    posterior: same means, covariances, counts, hence the same next choice."""
    from xrm.customize import Offer, add_offers
    from xrm.customize._bandit import DECISION_FEATURES, MODEL_NAME
    from xrm.customize._decide import _load_policy
    from xrm.customize._offers import list_offers

    add_offers(store, [Offer(f"o{j}", "product", f"Offer {j}", 2.0, base_rate=0.02 * (j + 1))
                       for j in range(3)])
    offers = list_offers(store)
    policy = LogisticThompson.prior(3, [o.base_rate for o in offers], full=True)
    rng = np.random.default_rng(4)
    for _ in range(40):
        policy.update(int(rng.integers(3)), np.r_[1.0, rng.normal(0, 1, len(DECISION_FEATURES) - 1)],
                      float(rng.random() < 0.2))
    assert policy.covariance is not None
    for j, o in enumerate(offers[:2]):  # the third offer keeps no row: it loads as its prior
        store.sql(
            "INSERT INTO bandit_state (offer_id, model, feature_names, mean, precision, n_responses, "
            "updated_at, covariance) VALUES (?, ?, ?, ?, ?, ?, current_timestamp, ?)",
            [o.offer_id, MODEL_NAME, list(DECISION_FEATURES), policy.mean[j].tolist(),
             policy.precision[j].tolist(), int(policy.n_responses[j]), policy.covariance[j].ravel().tolist()],
        )
    loaded = _load_policy(store, offers)
    prior = LogisticThompson.prior(3, [o.base_rate for o in offers], full=True)
    assert loaded.covariance is not None and prior.covariance is not None
    np.testing.assert_array_equal(loaded.mean[:2], policy.mean[:2])
    np.testing.assert_array_equal(loaded.covariance[:2], policy.covariance[:2])
    np.testing.assert_array_equal(loaded.n_responses[:2], policy.n_responses[:2])
    np.testing.assert_array_equal(loaded.mean[2], prior.mean[2])
    np.testing.assert_array_equal(loaded.covariance[2], prior.covariance[2])
    x = np.r_[1.0, np.zeros(len(DECISION_FEATURES) - 1)]
    policy.mean[2], policy.covariance[2], policy.n_responses[2] = prior.mean[2], prior.covariance[2], 0
    assert loaded.choose(x, np.random.default_rng(7)) == policy.choose(x, np.random.default_rng(7))


def test_ranking_by_expected_value_follows_the_policys_choose():
    """``rank_offers`` (the Decider's and ``next_best_actions``' ranking) exploring on every decision
    picks offers as often as ``choose`` would, with unit values: optimism included (without it the
    uncertain offer below would rarely lead), and each logged propensity is that decision's share of
    draws, whose mean is the choice frequency."""
    from xrm.customize._decide import rank_offers

    policy = LogisticThompson.prior(3, [0.2, 0.1, 0.1], d=2, slopes=(0.0,), full=True, exploration=0.3,
                                    optimism=1.0)
    x = np.array([1.0, 0.5])
    for _ in range(400):  # offer 0 well known at about 20%; offer 2 barely known
        policy.update(0, x, 1.0 if _ % 5 == 0 else 0.0)
        policy.update(1, x, 1.0 if _ % 9 == 0 else 0.0)
    rng = np.random.default_rng(4)
    xs = np.tile(x, (3, 1))
    expected = policy.propensities(x, rng, draws=40_000)
    greedy = LogisticThompson(policy.mean, policy.precision, policy.n_responses, policy.covariance, 0.3, 0.0)
    assert expected[2] > 0.3 > greedy.propensities(x, rng, draws=40_000)[2]  # optimism matters here
    n = 4000
    picks, logged = np.zeros(3), np.zeros(3)
    for _ in range(n):
        r = rank_offers(policy, xs, np.ones(3), np.zeros(3), np.full(3, -1), k=1, max_per_category=1,
                        explore=1.0, rng=rng)
        assert r.explored and 0 < r.propensity[0] <= 1
        picks[r.chosen[0]] += 1
        logged[r.chosen[0]] += r.propensity[0]
    np.testing.assert_allclose(picks / n, expected, atol=0.03)
    # Each decision logs the share s_j of its 64 draws that chose its offer j (chosen with P s_j):
    # E[s_j^2] summed over offers is sum P_j^2 + (1 - sum P_j^2) / 64 (binomial shares).
    square = float(np.sum(expected ** 2))
    assert logged.sum() / n == pytest.approx(square + (1 - square) / 64, abs=0.02)


def test_mean_and_draws_are_mean_probability_and_sample_probability():
    policy = _trained(4, 3, exploration=0.2, optimism=1.0)
    x = np.array([1.0, 0.3, -0.4])
    mean, draws = policy.mean_and_draws(x, np.random.default_rng(6), 30_000)
    np.testing.assert_allclose(mean, policy.mean_probability(x), rtol=1e-12)
    again = policy.sample_probability(x, np.random.default_rng(6), 30_000)
    np.testing.assert_allclose(draws, again, rtol=1e-12)
    mu, var = policy._score_moments(x)
    scores = np.log(draws / (1 - draws))
    np.testing.assert_allclose(scores.mean(axis=0), mu + np.sqrt(var), atol=0.01)  # optimism 1 sd
    np.testing.assert_allclose(scores.std(axis=0), 0.2 * np.sqrt(var), rtol=0.03)


def _reference_ranking(policy, x, value, cost, codes, *, k, q, explore, rng, draws=64):
    """Session 6's numpy ranking (before the compiled kernel): the same random numbers in the same
    order, the draws walked by ``rank_many``, the propensities counted."""
    from xrm.customize._decide import rank_many

    explored = bool(rng.random() < explore)
    mu = np.einsum("ad,ad->a", policy.mean, x)
    var = np.einsum("ad,ade,ae->a", x, policy.covariance, x)
    p_mean = 1 / (1 + np.exp(-mu / np.sqrt(1 + np.pi * var / 8)))
    z = rng.standard_normal((draws, len(mu)))
    p_draws = 1 / (1 + np.exp(-(mu + np.sqrt(var) * (policy.optimism + policy.exploration * z))))
    greedy = rank_many((p_mean * value - cost)[None, :], codes, k, q)[0]
    ranks = rank_many(p_draws * value - cost, codes, k, q)
    used = ranks[0] if explored else greedy
    chosen = [int(j) for j in used if j >= 0]
    props = [max((1 - explore) * float(greedy[r] == j) + explore * np.mean(ranks[:, r] == j), 1e-6)
             for r, j in enumerate(chosen)]
    return explored, chosen, props, (p_draws[0] if explored else p_mean), p_mean


def test_the_compiled_ranking_is_the_numpy_one():
    """``rank_offers`` (one compiled call) makes session 6's numpy decisions from the same seed:
    offers, propensities and probabilities, with categories, ties, k > 1 and every explore."""
    from xrm.customize._decide import rank_offers

    data = np.random.default_rng(11)
    for case in range(60):
        n, k, q = int(data.integers(1, 9)), int(data.integers(1, 5)), int(data.integers(1, 3))
        policy = _trained(n, 3, rounds=40, seed=case, exploration=0.3, optimism=float(data.random()))
        x = np.c_[np.ones(n), data.normal(0, 1, (n, 2))]
        value = np.round(data.uniform(0.5, 3, n), 0)  # equal values: ties between draws' ranks
        cost = np.where(data.random(n) < 0.3, 2.5, 0.1)  # some offers never worth making
        codes = data.integers(-1, 3, n)
        explore = float(data.choice([0.0, 0.3, 1.0]))
        got = rank_offers(policy, x, value, cost, codes, k=k, max_per_category=q, explore=explore,
                          rng=np.random.default_rng(case))
        want = _reference_ranking(policy, x, value, cost, codes, k=k, q=q, explore=explore,
                                  rng=np.random.default_rng(case))
        assert (got.explored, got.chosen) == want[:2], case
        np.testing.assert_allclose(got.propensity, want[2], rtol=1e-12)
        np.testing.assert_allclose(got.p_used, want[3], rtol=1e-9)
        np.testing.assert_allclose(got.p_mean, want[4], rtol=1e-9)


def test_the_compiled_walk_is_rank_many_for_every_row():
    from xrm.customize import _decide_kernels
    from xrm.customize._decide import rank_many

    rng = np.random.default_rng(8)
    for _ in range(300):
        n, k, q = int(rng.integers(1, 12)), int(rng.integers(1, 6)), int(rng.integers(1, 3))
        codes = rng.integers(-1, 4, n)
        ev = np.round(rng.normal(0.1, 1, n), 1)  # ties on purpose
        out = np.empty(k, dtype=np.int64)
        _decide_kernels.select_top(ev, codes, k, q, np.zeros(4, dtype=np.int64), np.zeros(n, dtype=bool), out)
        assert out.tolist() == rank_many(ev[None, :], codes, k, q)[0].tolist()
