"""Off-policy estimates on a simulated logging policy whose true values are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from xrm.customize import LogisticThompson, doubly_robust, ips, snips
from xrm.exceptions import InputError


def _simulate(n: int, seed: int):
    rng = np.random.default_rng(seed)
    n_actions, d = 5, 3
    theta = rng.normal(0, 1, (n_actions, d))
    x = np.c_[np.ones(n), rng.normal(0, 1, (n, d - 1))]
    p_reward = 1 / (1 + np.exp(-(x @ theta.T)))  # n x actions, known exactly
    logits = 0.5 * rng.normal(0, 1, (n, n_actions))
    logging = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # a stochastic logger
    actions = np.array([rng.choice(n_actions, p=row) for row in logging])
    rewards = (rng.random(n) < p_reward[np.arange(n), actions]).astype(float)
    target = np.zeros_like(logging)
    target[np.arange(n), (x[:, 1] > 0).astype(int) * 2] = 1.0  # deterministic: action 0 or 2
    true_value = float((target * p_reward).sum(axis=1).mean())
    return actions, rewards, logging, target, p_reward, true_value


def test_ips_snips_and_dr_recover_the_true_value():
    actions, rewards, logging, target, p_reward, truth = _simulate(40_000, seed=11)
    rows = np.arange(len(actions))
    pi_e, pi_0 = target[rows, actions], logging[rows, actions]
    assert ips(rewards, pi_e, pi_0) == pytest.approx(truth, abs=0.02)
    assert snips(rewards, pi_e, pi_0) == pytest.approx(truth, abs=0.02)
    # A deliberately biased reward model: DR stays right, the model alone would not.
    q = np.clip(p_reward + 0.15, 0, 1)
    dr = doubly_robust(rewards, pi_e, pi_0, q[rows, actions], (target * q).sum(axis=1))
    assert dr == pytest.approx(truth, abs=0.02)
    assert abs((target * q).sum(axis=1).mean() - truth) > 0.1
    # The logging policy's own value is the plain mean reward.
    assert snips(rewards, pi_0, pi_0) == pytest.approx(rewards.mean())


def test_zero_propensity_is_refused():
    with pytest.raises(InputError, match="propensities must be in"):
        ips(np.ones(2), np.ones(2), np.array([0.5, 0.0]))


def test_thompson_sampling_learns_the_best_offer():
    rng = np.random.default_rng(5)
    n_offers, d, rounds = 6, 3, 3000
    theta = rng.normal(0, 1, (n_offers, d))
    theta[:, 0] -= 2  # low response rates, as in marketing
    policy = LogisticThompson.prior(n_offers, slopes=(0.0, 0.0), d=d)
    regret_first = regret_last = 0.0
    for t in range(rounds):
        x = np.r_[1.0, rng.normal(0, 1, d - 1)]
        p = 1 / (1 + np.exp(-(theta @ x)))
        xs = np.tile(x, (n_offers, 1))
        a = int(np.argmax(policy.sample_probability(xs, rng)[0]))
        policy.update(a, x, float(rng.random() < p[a]))
        regret = p.max() - p[a]
        if t < 500:
            regret_first += regret
        elif t >= rounds - 500:
            regret_last += regret
    assert regret_last < 0.5 * regret_first, (regret_first, regret_last)
    assert policy.n_responses.sum() == rounds
