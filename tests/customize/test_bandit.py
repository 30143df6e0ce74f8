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

