"""The bound in probability (``scale="probability"``, the Decider's policy since session 8): its
centre and spread are what the docstring says, from the posterior alone, and choose, propensities
and the Decider's ranking all draw from that one distribution."""

from __future__ import annotations

import numpy as np
import pytest

from xrm.customize import LogisticThompson
from xrm.customize._bandit import _PRIOR_VARIANCE, SCALE
from xrm.exceptions import InputError


def _trained(full: bool, *, n: int = 4, d: int = 3, rounds: int = 400, **kw: float | str) -> LogisticThompson:
    rng = np.random.default_rng(1)
    policy = LogisticThompson.prior(n, [0.1, 0.05, 0.2, 0.05][:n], d=d, slopes=(0.0,) * (d - 1), full=full,
                                    precision=2.0, scale="probability", **kw)  # type: ignore[arg-type]
    for t in range(rounds):
        a = t % (n - 1)  # the last offer never answered: its bound is the prior's
        x = np.r_[1.0, rng.normal(0, 1, d - 1)]
        policy.update(a, x, float(rng.random() < 0.1 + 0.05 * a))
    return policy


@pytest.mark.parametrize("full", [True, False])
def test_the_spread_is_the_score_sd_times_the_offers_mean_bernoulli_spread(full):
    """centre = the predictive mean; spread = sd * sqrt(c), c = (sum of p (1 - p) over the offer's
    responses + the prior pseudo-response's) / (n + 1): the sum read back from S^-1[0, 0] minus the
    prior's 2, checked against that sum kept by hand."""
    rng = np.random.default_rng(1)
    policy = LogisticThompson.prior(4, [0.1, 0.05, 0.2, 0.05], d=3, slopes=(0.0, 0.0), full=full,
                                    precision=2.0, scale="probability")
    seen = np.zeros(4)
    for t in range(400):
        a = t % 3
        x = np.r_[1.0, rng.normal(0, 1, 2)]
        policy.update(a, x, float(rng.random() < 0.1 + 0.05 * a))
        p = 1 / (1 + np.exp(-policy.mean[a] @ x))  # the update's p is at the new MAP weights
        seen[a] += p * (1 - p)
    x = np.array([1.0, 0.4, -0.8])
    centre, sd = policy._spread(x)
    mu, var = policy._score_moments(x)
    c = (seen + _PRIOR_VARIANCE) / (policy.n_responses + 1)
    np.testing.assert_allclose(centre, policy.mean_probability(np.tile(x, (4, 1))), rtol=1e-12)
    np.testing.assert_allclose(sd, np.sqrt(c * var), rtol=1e-6)
    assert c[3] == pytest.approx(_PRIOR_VARIANCE)  # never answered: the prior alone
    # On the logit the same policy draws around the score's mean with its sd.
    policy.scale = "logit"
    np.testing.assert_allclose(policy._spread(x), (mu, np.sqrt(var)), rtol=1e-12)


def test_choose_propensities_and_draws_share_one_distribution():
    policy = _trained(True, optimism=0.2, exploration=0.5)
    x = np.array([1.0, -0.3, 0.9])
    centre, sd = policy._spread(x)
    mean, draws = policy.mean_and_draws(x, np.random.default_rng(3), 40_000)
    np.testing.assert_allclose(mean, policy.mean_probability(x), rtol=1e-12)
    z = np.random.default_rng(3).standard_normal((40_000, 4))  # the draws' normals, the same order
    np.testing.assert_allclose(draws, np.clip(centre + sd * (0.2 + 0.5 * z), 0, 1), rtol=1e-12)
    rng = np.random.default_rng(4)
    picks = np.bincount([policy.choose(x, rng) for _ in range(20_000)], minlength=4) / 20_000
    np.testing.assert_allclose(picks, policy.propensities(x, rng, draws=40_000), atol=0.015)
    np.testing.assert_allclose(picks, np.bincount(draws.argmax(axis=1), minlength=4) / 40_000, atol=0.015)


def test_the_deciders_ranking_follows_choose_in_probability():
    """``rank_offers`` exploring on every decision, unit values: the same choice frequencies as
    ``choose``, each logged propensity that decision's share of its draws."""
    from xrm.customize._decide import rank_offers

    policy = _trained(True, optimism=0.2, exploration=0.5)
    x = np.array([1.0, 0.2, 0.1])
    rng = np.random.default_rng(5)
    expected = policy.propensities(x, rng, draws=40_000)
    assert (expected > 0.03).sum() >= 2  # a case where more than one offer is chosen
    picks = np.zeros(4)
    for _ in range(4000):
        r = rank_offers(policy, np.tile(x, (4, 1)), np.ones(4), np.zeros(4), np.full(4, -1), k=1,
                        max_per_category=1, explore=1.0, rng=rng)
        assert r.explored and 0 < r.propensity[0] <= 1
        picks[r.chosen[0]] += 1
    np.testing.assert_allclose(picks / 4000, expected, atol=0.03)


def test_one_decision_at_a_time_learns_the_best_offer_in_probability():
    rng = np.random.default_rng(5)
    n_offers, d, rounds = 6, 3, 3000
    theta = rng.normal(0, 1, (n_offers, d))
    theta[:, 0] -= 2
    policy = LogisticThompson.prior(n_offers, d=d, slopes=(0.0, 0.0), full=True, exploration=0.03,
                                    optimism=0.2, scale="probability")
    regret = np.empty(rounds)
    for t in range(rounds):
        x = np.r_[1.0, rng.normal(0, 1, d - 1)]
        p = 1 / (1 + np.exp(-(theta @ x)))
        a = policy.choose(x, rng)
        policy.update(a, x, float(rng.random() < p[a]))
        regret[t] = p.max() - p[a]
    assert regret[-500:].sum() < 0.4 * regret[:500].sum(), (regret[:500].sum(), regret[-500:].sum())


def test_the_decider_loads_the_tuned_scale_and_a_wrong_scale_is_refused():
    assert SCALE == "probability"
    assert _trained(False).subset([1, 0]).scale == "probability"
    with pytest.raises(InputError, match="scale = 'prob'"):
        LogisticThompson.prior(2, scale="prob")
