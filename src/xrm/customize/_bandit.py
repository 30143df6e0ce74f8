"""Learning from responses: Thompson sampling over offers with one Bayesian logistic model each.

Each offer ``a`` has weights ``w_a ~ N(m_a, diag(1/q_a))`` over the decision features ``x``;
P(response | x, a) = sigmoid(w_a . x).  A decision samples ``w_a`` (Thompson sampling); a response
``y`` (1: click or purchase, 0: ignore) updates ``m_a, q_a`` at once by the Laplace approximation
of Chapelle & Li 2011, "An Empirical Evaluation of Thompson Sampling", NIPS, Algorithm 3:
``m = argmin_w 1/2 sum_i q_i (w_i - m_i)^2 + log(1 + exp(-y' w . x))`` and
``q_i += x_i^2 p (1 - p)`` with ``p = sigmoid(m . x)``.

    >>> policy = LogisticThompson.prior(n_offers=3, base_rates=[0.05, 0.1, 0.02])
    >>> policy.update(1, np.array([1.0, 0.5, 0.0, 0.0, 0.0]), reward=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DECISION_FEATURES", "MODEL_NAME", "LogisticThompson", "sigmoid"]

MODEL_NAME = "thompson-logistic v1"
# bias; recommender affinity for the offer's products; how due a repeat purchase is; the customer
# already owns one of the products; the customer has no purchase history.
DECISION_FEATURES = ("bias", "affinity", "due", "owned", "new_customer")
# Prior: affinity and due-ness raise the response rate before anything is learned.
_PRIOR_SLOPES = (2.0, 1.0, 0.0, 0.0)


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


@dataclass
class LogisticThompson:
    """Per-offer Gaussian posteriors (``mean`` and ``precision``, shape ``n_offers x d``)."""

    mean: np.ndarray
    precision: np.ndarray
    n_responses: np.ndarray

    @classmethod
    def prior(
        cls, n_offers: int, base_rates: Sequence[float] | None = None, *, d: int = len(DECISION_FEATURES),
        precision: float = 1.0, slopes: Sequence[float] | None = None,
    ) -> LogisticThompson:
        rates = np.full(n_offers, 0.05) if base_rates is None else np.asarray(base_rates, dtype=float)
        mean = np.zeros((n_offers, d))
        mean[:, 0] = np.log(rates / (1 - rates))
        prior_slopes = list(_PRIOR_SLOPES if slopes is None else slopes)[: d - 1]
        mean[:, 1 : 1 + len(prior_slopes)] = prior_slopes
        return cls(mean, np.full((n_offers, d), precision), np.zeros(n_offers, dtype=np.int64))

    def mean_probability(self, x: np.ndarray) -> np.ndarray:
        """Posterior-mean P(response) per offer for feature rows ``x`` (``n_offers x d``).

        Uses the probit approximation of the predictive mean (MacKay 1992, "The evidence framework
        applied to classification networks", eq. 4.9): sigmoid(mu / sqrt(1 + pi s^2 / 8)).
        """
        mu = np.einsum("ad,ad->a", self.mean, x)
        var = np.einsum("ad,ad->a", 1 / self.precision, x * x)
        return sigmoid(mu / np.sqrt(1 + math.pi * var / 8))

    def sample_probability(self, x: np.ndarray, rng: np.random.Generator, draws: int = 1) -> np.ndarray:
        """``draws x n_offers`` response probabilities from posterior samples of the weights."""
        noise = rng.standard_normal((draws, *self.mean.shape)) / np.sqrt(self.precision)
        w = self.mean + noise
        return sigmoid(np.einsum("mad,ad->ma", w, x))

    def update(self, offer: int, x: np.ndarray, reward: float, *, iterations: int = 8) -> None:
        """Fold one response (reward in [0, 1]) for ``offer`` with features ``x`` into its posterior."""
        m, q = self.mean[offer], self.precision[offer]
        w = m.copy()
        # Newton's method on the 1-observation MAP problem (a few steps converge).
        for _ in range(iterations):
            p = float(sigmoid(w @ x))
            grad = q * (w - m) + (p - reward) * x
            hess = np.diag(q) + p * (1 - p) * np.outer(x, x)
            step = np.linalg.solve(hess, grad)
            w = w - step
            if np.abs(step).max() < 1e-8:
                break
        p = float(sigmoid(w @ x))
        self.mean[offer] = w
        self.precision[offer] = q + x * x * p * (1 - p)
        self.n_responses[offer] += 1
