"""BG/NBD: beta-geometric / negative binomial purchasing with silent drop-out.

Fader, Hardie & Lee (2005), "'Counting your customers' the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284.  While alive a customer buys at Poisson rate
λ ~ Gamma(r, α); after each purchase they drop out with probability p ~ Beta(a, b).

    >>> m = BetaGeoNBD().fit(summary); m.p_alive(summary)  # doctest: +SKIP

On CDNOW (2,357 customers, 39 weeks) the paper reports r=0.243, α=4.414, a=0.793, b=2.426,
LL=-9582.4; ``tests/differentiate/test_cdnow.py`` pins them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from xrm.differentiate._data import Arrays, rfm_arrays
from xrm.differentiate._mle import Vector
from xrm.differentiate._model import ValueModel
from xrm.exceptions import ModelError

__all__ = ["BetaGeoNBD"]

Array = npt.NDArray[np.float64]


def _compress(x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    """Identical (x, t_x, T) rows once, with their count as weight: many customers share them."""
    rows = np.stack([x, t_x, T], axis=1)
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    return uniq[:, 0], uniq[:, 1], uniq[:, 2], counts.astype(np.float64)


def _ll_terms(p: Vector, x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    r, alpha, a, b = p
    # FHL (2005) eq. (6), in logs: LL = A1 + A2 + log(exp(A3) + [x>0] exp(A4)), where
    # B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1).
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    rep = x > 0
    a4 = np.full_like(x, -np.inf)
    a4[rep] = np.log(a) - np.log(b + x[rep] - 1) - (r + x[rep]) * np.log(alpha + t_x[rep])
    return a1, a2, a3, a4


def _nll_and_grad(p: Vector, x: Array, t_x: Array, T: Array, w: Array, pen: float) -> tuple[float, Vector]:
    r, alpha, a, b = p
    a1, a2, a3, a4 = _ll_terms(p, x, t_x, T)
    m = np.logaddexp(a3, a4)
    ll = a1 + a2 + m
    w3, w4 = np.exp(a3 - m), np.exp(a4 - m)  # softmax weights of the two branches
    rep = x > 0
    inv_b = np.zeros_like(x)
    inv_b[rep] = 1.0 / (b + x[rep] - 1)
    log_tx = np.log(alpha + t_x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * log_tx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 * inv_b
    grad = -np.array([w @ d_r, w @ d_alpha, w @ d_a, w @ d_b]) + 2 * pen * p
    return float(-(w @ ll) + pen * (p @ p)), grad


def _expected(p: tuple[float, ...], t: Array, x: Array, T: Array) -> Array:
    """(a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], z = t/(α+T+t).

    The numerator of FHL (2005) eq. (10) after Euler's transformation of its 2F1 (Fader & Hardie
    2013, "Overcoming the BG/NBD model's #NUM! error problem"): the series' first two arguments
    no longer grow with x, so heavy buyers do not overflow.  With x = T = 0 it is eq. (9), E[X(t)].
    """
    r, alpha, a, b = p
    if abs(a - 1.0) < 1e-4:  # removable singularity at a = 1: average the two sides
        lo, hi = (r, alpha, 1.0 - 2e-4, b), (r, alpha, 1.0 + 2e-4, b)
        return 0.5 * (_expected(lo, t, x, T) + _expected(hi, t, x, T))
    z = t / (alpha + T + t)
    c = a + b + x - 1
    body = -np.expm1((a - 1) * np.log1p(-z) + np.log(hyp2f1(a + b - 1 - r, a - 1, c, z)))
    return np.asarray(c / (a - 1) * body, dtype=np.float64)


class BetaGeoNBD(ValueModel):
    """The BG/NBD model fitted by maximum likelihood; predictions per customer.

    Settings: ``penalizer`` (L2 on the parameters, 0 = plain MLE), ``start`` (r, α, a, b),
    ``max_iter``, ``tol``.
    """

    kind: ClassVar[str] = "bg/nbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    defaults: ClassVar[dict[str, Any]] = {
        "penalizer": 0.0,
        "start": [1.0, 1.0, 1.0, 1.0],
        "max_iter": 1000,
        "tol": 1e-12,
    }

    def fit(self, data: Any) -> BetaGeoNBD:
        """Fit on a purchase summary (columns frequency, recency, T): ``BetaGeoNBD().fit(summary)``."""
        d = rfm_arrays(data, model=self.kind)
        if not (d["frequency"] > 0).any():
            raise ModelError(
                f"{self.kind}: none of the {len(d['frequency'])} customers has a repeat purchase, so "
                f"the purchase rate and drop-out cannot be told apart; fit on a longer history"
            )
        x, t_x, T, w = _compress(d["frequency"], d["recency"], d["T"])
        pen = float(self.config["penalizer"])
        n = float(w.sum())

        def objective(p: Vector) -> tuple[float, Vector]:
            value, grad = _nll_and_grad(p, x, t_x, T, w, pen)
            return value / n, grad / n  # per customer: keeps the optimiser's scale sane

        return self._fit_per_customer(objective, n)

    # -- per customer ------------------------------------------------------------------------

    def _rfm(self, data: Any) -> Arrays:
        return rfm_arrays(data, model=self.kind, allow_empty=True)

    def log_likelihood(self, data: Any) -> Array:
        """Each customer's log-likelihood, FHL (2005) eq. (6)."""
        d = self._rfm(data)
        a1, a2, a3, a4 = _ll_terms(np.array(self._params()), d["frequency"], d["recency"], d["T"])
        return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=np.float64)

    def p_alive(self, data: Any) -> Array:
        """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((α+T)/(α+t_x))^(r+x)).

        Fader, Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model" (the note's
        closed form, which corrects FHL 2005 for customers with x = 0: they are alive).
        """
        r, alpha, a, b = self._params()
        d = self._rfm(data)
        x, t_x, T = d["frequency"], d["recency"], d["T"]
        out = np.ones_like(x)
        rep = x > 0
        log_odds = (
            np.log(a) - np.log(b + x[rep] - 1)
            + (r + x[rep]) * (np.log(alpha + T[rep]) - np.log(alpha + t_x[rep]))
        )
        out[rep] = expit(-log_odds)
        return out

    def expected_purchases(self, data: Any, t: float | Array) -> Array:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units, FHL (2005) eq. (10)."""
        p = self._params()
        d = self._rfm(data)
        x, T = d["frequency"], d["T"]
        t_arr = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        if (t_arr < 0).any():
            raise ModelError(f"{self.kind}: the horizon t must be >= 0, got {float(t_arr.min())}")
        return _expected(p, t_arr, x, T) * self.p_alive(d)

    def expected_purchases_new(self, t: float | Array) -> Array:
        """E[X(t)]: repeat purchases of a new customer in ``t`` time units, FHL (2005) eq. (9)."""
        t_arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        zeros = np.zeros_like(t_arr)
        return _expected(self._params(), t_arr, zeros, zeros)

    def population(self) -> dict[str, float]:
        """Mean purchase rate r/α and mean drop-out probability a/(a+b)."""
        r, alpha, a, b = self._params()
        return {"mean_rate": r / alpha, "mean_dropout": a / (a + b)}
