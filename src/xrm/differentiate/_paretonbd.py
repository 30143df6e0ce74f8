"""Pareto/NBD: Poisson purchasing and exponential lifetimes, gamma-mixed across customers.

Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they and what will they
do next?", Management Science 33(1), 1-24; the likelihood and related expressions as derived in
Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related expressions"
(brucehardie.com/notes/009).  While alive a customer buys at rate λ ~ Gamma(r, α); their lifetime
is exponential with rate μ ~ Gamma(s, β).

    >>> m = ParetoNBD().fit(summary); m.expected_purchases(summary, 52)  # doctest: +SKIP

On CDNOW (2,357 customers, 39 weeks) Fader, Hardie & Lee (2005, Marketing Science, Table 1)
report r=0.553, α=10.578, s=0.606, β=11.669, LL=-9595.0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import expit, gammaln, hyp2f1

from xrm.differentiate._bgnbd import _compress
from xrm.differentiate._data import Arrays, rfm_arrays
from xrm.differentiate._mle import Vector
from xrm.differentiate._model import ValueModel
from xrm.exceptions import ModelError

__all__ = ["ParetoNBD"]

Array = npt.NDArray[np.float64]


def _log_a0(p: tuple[float, ...] | Vector, x: Array, t_x: Array, T: Array) -> Array:
    """log A0 of the Pareto/NBD likelihood (Fader & Hardie 2005 note, eqs. 22-23).

    A0 = F(z(t_x)) / (c+t_x)^K - F(z(T)) / (c+T)^K with K = r+s+x, c = max(α, β).  Each 2F1 is
    evaluated after Euler's transformation, 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z), which
    leaves a series with first argument 1, bounded by 1/(1-z): heavy buyers cannot overflow it.
    The difference is taken in logs with log1p; A0 = 0 (log = -inf) when t_x = T.
    """
    r, alpha, s, beta = p
    K = r + s + x
    if alpha >= beta:
        c, b2, shift = alpha, r + x, -s  # 2F1(K, s+1; K+1; z) = (1-z)^-s 2F1(1, r+x; K+1; z)
    else:
        c, b2, shift = beta, s + 1.0, 1.0 - r - x  # 2F1(K, r+x; K+1; z) = (1-z)^(1-r-x) 2F1(1, s+1; ...)
    diff = abs(alpha - beta)

    def log_term(t: Array) -> Array:
        z = diff / (c + t)
        return shift * np.log1p(-z) + np.log(hyp2f1(1.0, b2, K + 1, z)) - K * np.log(c + t)

    first, second = log_term(t_x), log_term(T)
    with np.errstate(divide="ignore"):
        return np.asarray(first + np.log1p(-np.minimum(np.exp(second - first), 1.0)), dtype=np.float64)


def _loglik(p: tuple[float, ...] | Vector, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = p
    const = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    died = np.log(s / (r + s + x)) + _log_a0(p, x, t_x, T)
    return np.asarray(const + np.logaddexp(alive, died), dtype=np.float64)


class ParetoNBD(ValueModel):
    """The Pareto/NBD model fitted by maximum likelihood; predictions per customer.

    Settings: ``penalizer`` (L2 on the parameters), ``start`` (r, α, s, β), ``max_iter``, ``tol``.
    """

    kind: ClassVar[str] = "pareto/nbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    defaults: ClassVar[dict[str, Any]] = {
        "penalizer": 0.0,
        "start": [1.0, 1.0, 1.0, 1.0],
        "max_iter": 1000,
        "tol": 1e-12,
    }

    def fit(self, data: Any) -> ParetoNBD:
        """Fit on a purchase summary (columns frequency, recency, T): ``ParetoNBD().fit(summary)``."""
        d = rfm_arrays(data, model=self.kind)
        if not (d["frequency"] > 0).any():
            raise ModelError(
                f"{self.kind}: none of the {len(d['frequency'])} customers has a repeat purchase, so "
                f"the purchase rate and lifetime cannot be told apart; fit on a longer history"
            )
        x, t_x, T, w = _compress(d["frequency"], d["recency"], d["T"])
        pen = float(self.config["penalizer"])
        n = float(w.sum())

        def objective(p: Vector) -> tuple[float, Vector | None]:
            with np.errstate(all="ignore"):
                ll = w @ _loglik(p, x, t_x, T)
            return float(-ll + pen * (p @ p)) / n, None

        return self._fit_per_customer(objective, n)

    def _rfm(self, data: Any) -> Arrays:
        return rfm_arrays(data, model=self.kind, allow_empty=True)

    def log_likelihood(self, data: Any) -> Array:
        """Each customer's log-likelihood (Fader & Hardie 2005 note, eqs. 22-23)."""
        d = self._rfm(data)
        return _loglik(self._params(), d["frequency"], d["recency"], d["T"])

    def p_alive(self, data: Any) -> Array:
        """P(alive at T | x, t_x, T) = 1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0).

        Fader & Hardie (2005 note), the P(alive) expression derived from the likelihood.
        """
        r, alpha, s, beta = p = self._params()
        d = self._rfm(data)
        x, t_x, T = d["frequency"], d["recency"], d["T"]
        with np.errstate(divide="ignore"):
            log_odds = (
                np.log(s / (r + s + x)) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                + _log_a0(p, x, t_x, T)
            )
        return np.asarray(expit(-log_odds), dtype=np.float64)

    def expected_purchases(self, data: Any, t: float | Array) -> Array:
        """E[Y(t) | x, t_x, T] = (r+x)(β+T)/((α+T)(s-1)) [1 - ((β+T)/(β+T+t))^(s-1)] P(alive).

        Schmittlein, Morrison & Colombo (1987), eq. (22); the s -> 1 limit, ln((β+T+t)/(β+T)),
        is used near s = 1.
        """
        r, alpha, s, beta = self._params()
        d = self._rfm(data)
        x, T = d["frequency"], d["T"]
        t_arr = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        if (t_arr < 0).any():
            raise ModelError(f"{self.kind}: the horizon t must be >= 0, got {float(t_arr.min())}")
        growth = (r + x) * (beta + T) / (alpha + T) * _one_minus_pow(np.log1p(t_arr / (beta + T)), s)
        return np.asarray(growth * self.p_alive(d), dtype=np.float64)

    def expected_purchases_new(self, t: float | Array) -> Array:
        """E[X(t)] = rβ/(α(s-1)) [1 - (β/(β+t))^(s-1)] for a new customer (SMC 1987, eq. 17)."""
        r, alpha, s, beta = self._params()
        t_arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return np.asarray(r * beta / alpha * _one_minus_pow(np.log1p(t_arr / beta), s), dtype=np.float64)


def _one_minus_pow(log_growth: Array, s: float) -> Array:
    """[1 - exp(-(s-1) L)] / (s-1), and its limit L at s = 1, without cancellation."""
    if abs(s - 1.0) < 1e-10:
        return log_growth
    return np.asarray(-np.expm1(-(s - 1.0) * log_growth) / (s - 1.0), dtype=np.float64)
