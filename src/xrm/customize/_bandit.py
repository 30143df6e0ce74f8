"""Learning from responses: Thompson sampling over offers with one Bayesian logistic model each.

Each offer ``a`` has weights ``w_a ~ N(m_a, S_a)`` over the decision features ``x``;
P(response | x, a) = sigmoid(w_a . x).  A decision samples each offer's score ``w_a . x`` (Thompson
sampling); a response ``y`` (1: click or purchase, 0: ignore) updates ``m_a, S_a`` at once by the
Laplace approximation of Chapelle & Li 2011, "An Empirical Evaluation of Thompson Sampling", NIPS,
Algorithm 3: ``m' = argmin_w 1/2 (w - m)' S^-1 (w - m) + log(1 + exp(-y' w . x))`` and
``S'^-1 = S^-1 + p (1 - p) x x'`` with ``p = sigmoid(m' . x)``.

Two shapes of ``S``: diagonal (``1 / precision``, Chapelle & Li's own choice) or, with
``covariance``, the full matrix kept by rank-one (Sherman-Morrison) updates: what the Decider and
``bandit_state`` keep (model ``thompson-logistic v2``), since on the bench simulation it reaches
about half the diagonal's regret.  The full one learns from correlated features at O(d^2) per
response; both solve the MAP step as a one-dimensional Newton problem, since
``m' = m - (p - y) S x`` lies on a line.

A draw of the scores is ``mu + sd (optimism + exploration z)`` with ``z ~ N(0, 1)`` per offer:
``optimism`` 0 is Thompson sampling (scaled by ``exploration``), ``exploration`` 0 a deterministic
upper confidence bound (a Laplace GLM-UCB), both at once a randomised UCB that keeps every offer's
propensity above 0 for off-policy evaluation (:meth:`LogisticThompson.propensities`). With
``scale="probability"`` the draw is in probability instead: the predictive mean plus
``sd sqrt(c) (optimism + exploration z)``, ``c`` the offer's mean ``p (1 - p)`` over its responses,
a bound of about ``1 / sqrt(n)`` whatever the offer's rate, as LinUCB's (on the logit, an offer
whose rate is low gets a bound in probability about ``sqrt(p)`` times smaller, and is left
behind more often). On the bench simulation, over 20 runs of each of seeds 0-2, that is 8% less
regret than the logit bound (session 8, docs/customize.md): :data:`OPTIMISM`, :data:`EXPLORATION`
and :data:`SCALE` are the values tuned there, and what the Decider ranks with.
The score moments, one decision (:meth:`choose`) and one update are each one compiled call
(:mod:`xrm.customize._decide_kernels`, numba, imported on first use), the update in place; the
random numbers come from the caller's Generator, drawn by numpy.

    >>> policy = LogisticThompson.prior(n_offers=3, base_rates=[0.05, 0.1, 0.02])
    >>> policy.update(1, np.array([1.0, 0.5, 0.0, 0.0, 0.0]), reward=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from xrm.exceptions import InputError

__all__ = [
    "DECISION_FEATURES", "EXPLORATION", "MODEL_NAME", "OPTIMISM", "SCALE", "LogisticThompson", "sigmoid",
]

# v1: diagonal posterior; v2: full covariance (customize migration 4 turned v1 rows into v2).
MODEL_NAME = "thompson-logistic v2"
# bias; recommender affinity for the offer's products; how due a repeat purchase is; the customer
# already owns one of the products; the customer has no purchase history.
DECISION_FEATURES = ("bias", "affinity", "due", "owned", "new_customer")
# Prior: affinity and due-ness raise the response rate before anything is learned.
_PRIOR_SLOPES = (2.0, 1.0, 0.0, 0.0)
# The product's policy: a bound in probability of 0.2 posterior standard deviations (scaled by the
# offer's Bernoulli spread) with 0.03 of one of noise (tuned on seeds 0-2 of the bench simulation,
# 20 runs each; session 7's logit bound was optimism 1, exploration 0.1: docs/customize.md).
OPTIMISM, EXPLORATION, SCALE = 0.2, 0.03, "probability"
# The Bernoulli variance p (1 - p) of the one prior pseudo-response in a "probability" bound's mean
# (p = 0.05, the offers' default base rate).
_PRIOR_VARIANCE = 0.05 * 0.95


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    # np.minimum / np.maximum rather than np.clip: the same, without np.clip's Python-level wrapper.
    return 1.0 / (1.0 + np.exp(-np.minimum(np.maximum(z, -35.0), 35.0)))


@dataclass
class LogisticThompson:
    """Per-offer Gaussian posteriors: ``mean`` and ``precision`` (``n_offers x d``), and optionally
    the full ``covariance`` (``n_offers x d x d``); ``precision`` is then 1 / its diagonal."""

    mean: np.ndarray
    precision: np.ndarray
    n_responses: np.ndarray
    covariance: np.ndarray | None = None
    # Scale of the sampled scores' spread: below 1 explores less (Chapelle & Li 2011, section 4.3,
    # found 0.25-0.5 better than the exact posterior on display-ad data).
    exploration: float = 1.0
    # Posterior standard deviations added to every score before the draw (an upper confidence
    # bound, as in UCB): 0 is plain Thompson sampling; with ``exploration`` 0 it is deterministic UCB.
    optimism: float = 0.0
    # Where the draws are made: "logit" (the score) or "probability" (the predictive mean plus a
    # bound scaled by the offer's Bernoulli spread; module docstring).
    scale: str = "logit"
    # The prior's precision of the bias weight: what a "probability" bound subtracts from S^-1[0, 0]
    # to count the offer's information.
    prior_precision: float = 1.0

    def __post_init__(self) -> None:
        if self.scale not in ("logit", "probability"):
            raise InputError(f"scale = {self.scale!r}: a policy draws on the 'logit' or in 'probability'")

    @classmethod
    def prior(
        cls, n_offers: int, base_rates: Sequence[float] | None = None, *, d: int = len(DECISION_FEATURES),
        precision: float = 1.0, slopes: Sequence[float] | None = None, full: bool = False,
        exploration: float = 1.0, optimism: float = 0.0, scale: str = "logit",
    ) -> LogisticThompson:
        """Base rates set the intercepts, ``slopes`` the other prior means; ``full`` keeps S whole."""
        rates = np.full(n_offers, 0.05) if base_rates is None else np.asarray(base_rates, dtype=float)
        mean = np.zeros((n_offers, d))
        mean[:, 0] = np.log(rates / (1 - rates))
        prior_slopes = list(_PRIOR_SLOPES if slopes is None else slopes)[: d - 1]
        mean[:, 1 : 1 + len(prior_slopes)] = prior_slopes
        cov = np.tile(np.eye(d) / precision, (n_offers, 1, 1)) if full else None
        n = np.zeros(n_offers, dtype=np.int64)
        return cls(mean, np.full((n_offers, d), float(precision)), n, cov, exploration, optimism, scale,
                   float(precision))

    def _score_moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of each offer's score ``w_a . x_a`` under the posterior; ``x`` is either
        one row per offer (``n_offers x d``) or one row for all (``d``), in one compiled loop."""
        return _kernels().moments(*self._arrays()[:4], _rows(x))

    def _spread(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre and spread of each offer's draws, on the policy's ``scale`` (one compiled call)."""
        return _kernels().spread(*self._arrays(), _rows(x))

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, np.ndarray, float, float, bool]:
        """What the compiled kernels read: mean, covariance (a placeholder when diagonal),
        precision, whether the covariance is full, the response counts, the bias's prior precision,
        the prior pseudo-response's variance and whether the draws are in probability."""
        cov = self.covariance
        return (self.mean, _NO_COV if cov is None else cov, self.precision, cov is not None, self.n_responses,
                float(self.prior_precision), _PRIOR_VARIANCE, self.scale == "probability")

    def mean_probability(self, x: np.ndarray) -> np.ndarray:
        """Posterior-mean P(response) per offer for feature rows ``x`` (``n_offers x d``).

        Uses the probit approximation of the predictive mean (MacKay 1992, "The evidence framework
        applied to classification networks", eq. 4.9): sigmoid(mu / sqrt(1 + pi s^2 / 8)).
        """
        mu, var = self._score_moments(x)
        return sigmoid(mu / np.sqrt(1 + math.pi * var / 8))

    def sample_probability(self, x: np.ndarray, rng: np.random.Generator, draws: int = 1) -> np.ndarray:
        """``draws x n_offers`` response probabilities of the policy's draws of the scores,
        ``mu + sd (optimism + exploration z)`` (or in probability, by ``scale``): what :meth:`choose`
        ranks by, as probabilities.

        Only the score ``w_a . x_a`` matters, and it is Gaussian: one normal draw per offer instead
        of one per weight (the same distribution, d times fewer draws).
        """
        return self.mean_and_draws(x, rng, draws)[1]

    def mean_and_draws(
        self, x: np.ndarray, rng: np.random.Generator, draws: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`mean_probability` and :meth:`sample_probability` from one pass over the posterior
        (a decision that logs both pays for the ``d x d`` products once)."""
        mu, var = self._score_moments(x)
        mean = sigmoid(mu / np.sqrt(1 + math.pi * var / 8))
        centre, sd = self._spread(x)
        z = rng.standard_normal((draws, len(mu)))
        z *= self.exploration
        z += self.optimism
        z *= sd
        z += centre
        if self.scale == "probability":
            return mean, np.clip(z, 0.0, 1.0, out=z)
        # sigmoid in place: a decision's few thousand values, without sigmoid()'s temporaries
        np.minimum(z, 35.0, out=z)
        np.maximum(z, -35.0, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1.0
        return mean, np.reciprocal(z, out=z)

    def choose(self, x: np.ndarray, rng: np.random.Generator) -> int:
        """The offer ranked first by one draw of the scores ``mu + sd (optimism + exploration z)``
        (or in probability, by ``scale``), for one decision (``argmax`` of scores: sigmoid is
        increasing), in one compiled call that takes ``z = rng.standard_normal(n_offers)``."""
        z = rng.standard_normal(len(self.mean))
        return int(_kernels().choose(*self._arrays(), _rows(x), z, float(self.optimism),
                                     float(self.exploration)))

    def propensities(self, x: np.ndarray, rng: np.random.Generator, draws: int = 4096) -> np.ndarray:
        """P(:meth:`choose` picks each offer | x), estimated from ``draws`` draws (exact 0 / 1 when
        ``exploration`` is 0: deterministic UCB then needs the caller's own mixing, e.g. epsilon)."""
        centre, sd = self._spread(x)
        n = 1 if self.exploration == 0 else draws
        scores = centre + sd * (self.optimism + self.exploration * rng.standard_normal((n, len(centre))))
        return np.bincount(scores.argmax(axis=1), minlength=len(centre)) / n

    def draw_weights(self, rng: np.random.Generator, draws: int) -> np.ndarray:
        """``draws x n_offers x d`` weight vectors from the posterior (``mean + L z``, ``S = L L'``)."""
        z = rng.standard_normal((draws, *self.mean.shape))
        if self.covariance is None:
            return self.mean + z / np.sqrt(self.precision)
        return self.mean + np.einsum("ade,mae->mad", _cholesky(self.covariance), z)

    def subset(self, offers: Sequence[int] | np.ndarray) -> LogisticThompson:
        """The posteriors of ``offers`` only (copies), in that order."""
        cov = None if self.covariance is None else self.covariance[offers]
        return LogisticThompson(self.mean[offers], self.precision[offers], self.n_responses[offers], cov,
                                self.exploration, self.optimism, self.scale, self.prior_precision)

    def update(self, offer: int, x: np.ndarray, reward: float, *, iterations: int = 20) -> None:
        """Fold one response (reward in [0, 1]) for ``offer`` with features ``x`` into its posterior,
        in place on the offer's rows (one compiled call: a decision's whole budget is tens of µs).

        The MAP weights are ``m - (p - reward) S x``: the score ``s`` solves
        ``s = s0 - (sigmoid(s) - reward) v`` (``s0 = m . x``, ``v = x' S x``), found by Newton's method
        (g(s) is increasing, so it converges from s0 in a few steps); then ``S`` takes the
        Sherman-Morrison step ``(S^-1 + c x x')^-1 = S - c S x x' S / (1 + c x' S x)``, ``c = p (1 - p)``
        (the diagonal form adds ``c x * x`` to its precision).
        """
        _kernels().update(*self._arrays(), int(offer), np.ascontiguousarray(x, dtype=float), float(reward),
                          int(iterations))
        self.n_responses[offer] += 1


# What the kernels take for the covariance of a diagonal posterior (never read).
_NO_COV = np.zeros((1, 1, 1))
_KERNELS: ModuleType | None = None


def _kernels() -> ModuleType:
    """:mod:`xrm.customize._decide_kernels`, imported on first use (numba: not at CLI start)."""
    global _KERNELS
    if _KERNELS is None:
        from xrm.customize import _decide_kernels

        _KERNELS = _decide_kernels
    return _KERNELS


def _rows(x: np.ndarray) -> np.ndarray:
    """Feature rows as the kernels take them: C-ordered floats, ``1 x d`` for one row shared by
    every offer (a 1-d row, or a broadcast one)."""
    if x.ndim == 1:
        x = x[None, :]
    elif x.strides[0] == 0:
        x = x[:1]
    return np.ascontiguousarray(x, dtype=np.float64)


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of covariances; one that rounding left not quite positive
    definite is made so by clipping its eigenvalues (a draw from it stays well defined)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh((cov + np.swapaxes(cov, -1, -2)) / 2)
        return np.asarray(vecs * np.sqrt(np.maximum(vals, 1e-12))[..., None, :])
