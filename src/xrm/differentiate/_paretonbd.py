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
from scipy.special import digamma, expit, gammaln, hyp2f1

from xrm.differentiate._bgnbd import _compress, _dot, _representatives, _row_codes
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


# -- the fitting fast path -------------------------------------------------------------------------

_MAX_TERMS = 400  # Euler's series converges at least like z^n; beyond this, finite differences


class _Rows:
    """Purchase histories prepared for the likelihood, as for BG/NBD: identical (x, t_x, T) rows
    once with their count, the Γ terms once per distinct x, and each A0 term (which depends on x
    and one time, t_x or T) once per distinct (x, t) pair: on CDNOW's published summary 1,016
    distinct rows need 943 series instead of 2,032 (customers without repeat purchases share one)."""

    def __init__(self, x: Array, t_x: Array, T: Array) -> None:
        self.x, self.t_x, self.T, self.w = _compress(x, t_x, T)
        self.ux, ix = np.unique(self.x, return_inverse=True)
        self.ix = ix.reshape(-1)
        self.wx: Array = np.bincount(self.ix, weights=self.w, minlength=len(self.ux)).astype(np.float64)
        n = len(self.x)
        codes = _row_codes(np.concatenate([self.x, self.x]), np.concatenate([self.t_x, self.T]))
        rep = _representatives(codes)
        both = np.concatenate([self.t_x, self.T])
        self.px, self.pt = np.concatenate([self.x, self.x])[rep], both[rep]  # the distinct pairs
        self.i_tx, self.i_T = codes[:n], codes[n:]
        self.ended = self.t_x >= self.T  # A0 = 0: the drop-out branch is absent


def _series(b: Array, c: Array, z: Array, n_terms: int) -> tuple[Array, Array, Array, Array]:
    """2F1(1, b; c; z) = Σ (b)_n/(c)_n z^n and its derivatives by b, c and z, summed together.

    With c > b > 0 and 0 <= z < 1 the terms fall at least like z^n; the sum stops once every
    row's term is below 1e-17 of its sum.  One pass of 1-D array operations per term: on CDNOW's
    thousand pairs that is faster than a rows × terms table (measured: 0.47 against 1.2 ms)."""
    term = np.ones_like(z)
    total, d_b, d_c, d_z = np.ones_like(z), np.zeros_like(z), np.zeros_like(z), np.zeros_like(z)
    h_b, h_c = np.zeros_like(z), np.zeros_like(z)  # Σ_{j<=k} 1/(b+j), Σ_{j<=k} 1/(c+j)
    for k in range(n_terms):
        h_b += 1.0 / (b + k)
        h_c += 1.0 / (c + k)
        ratio = (b + k) / (c + k)
        d_z += (k + 1) * term * ratio  # d/dz of the next term, c_{k+1} z^(k+1)
        term *= ratio * z
        total += term
        d_b += term * h_b
        d_c -= term * h_c
        if k % 8 == 7 and float(np.max(term / total)) < 1e-17:
            break
    return total, d_b, d_c, d_z


def _log_terms(p: Vector, px: Array, pt: Array) -> tuple[Array, Array] | None:
    """log of F(z(t)) / (c+t)^K (the two parts of A0, see :func:`_log_a0`) per distinct (x, t)
    pair, and its gradient by (r, α, s, β) (one row per pair); None where the series would be
    too long (α and β far apart), so that the caller falls back to finite differences."""
    r, alpha, s, beta = p
    K = r + s + px
    a_ge_b = alpha >= beta
    c = alpha if a_ge_b else beta
    diff = abs(alpha - beta)
    z = diff / (c + pt)
    z_max = float(z.max()) if len(z) else 0.0
    n_terms = 1 if z_max == 0 else int(np.ceil(np.log(1e-17) / np.log(z_max))) + 1
    if n_terms > _MAX_TERMS:
        return None
    b2 = r + px if a_ge_b else np.full_like(px, s + 1.0)
    f, f_b, f_c, f_z = _series(b2, K + 1, z, n_terms)
    shift = -s if a_ge_b else 1.0 - r - px
    log1m = np.log1p(-z)
    log_ct = np.log(c + pt)
    value = shift * log1m + np.log(f) - K * log_ct
    g_b, g_c = f_b / f, f_c / f  # d log F / d b2, d log F / d (K+1)
    dz = (-shift / (1.0 - z) + f_z / f)  # d value / d z
    z_own = (pt + (beta if a_ge_b else alpha)) / (c + pt) ** 2  # dz / dc, c the larger parameter
    z_other = -1.0 / (c + pt)  # dz / d(the smaller one)
    grad = np.empty((len(px), 4))
    if a_ge_b:
        grad[:, 0] = g_b + g_c - log_ct
        grad[:, 1] = dz * z_own - K / (c + pt)
        grad[:, 2] = -log1m + g_c - log_ct
        grad[:, 3] = dz * z_other
    else:
        grad[:, 0] = -log1m + g_c - log_ct
        grad[:, 1] = dz * z_other
        grad[:, 2] = g_b + g_c - log_ct
        grad[:, 3] = dz * z_own - K / (c + pt)
    return value, grad


def _nll_and_grad(p: Vector, rows: _Rows, pen: float) -> tuple[float, Vector | None]:
    """The weighted negative log-likelihood and its analytic gradient, or (value, None) when the
    series is too long (the optimiser then takes finite differences of :func:`_loglik`)."""
    r, alpha, s, beta = p
    terms = _log_terms(p, rows.px, rows.pt)
    if terms is None:
        with np.errstate(all="ignore"):
            ll = float(rows.w @ _loglik(p, rows.x, rows.t_x, rows.T))
        return -ll + pen * float(p @ p), None
    value, grad = terms
    x, w, ux, wx = rows.x, rows.w, rows.ux, rows.wx
    first, second = value[rows.i_tx], value[rows.i_T]
    q = np.where(rows.ended, 0.0, np.exp(np.minimum(second - first, 0.0)))
    with np.errstate(divide="ignore"):
        log_a0 = np.where(rows.ended, -np.inf, first + np.log1p(-q))
    # d log A0 = (d first - q d second) / (1 - q); irrelevant (weight 0) where A0 = 0
    inv = np.where(q < 1.0, 1.0 / np.where(q < 1.0, 1.0 - q, 1.0), 0.0)
    g_a0 = (grad[rows.i_tx] - q[:, None] * grad[rows.i_T]) * inv[:, None]
    rsx = r + s + x
    log_aT, log_bT = np.log(alpha + rows.T), np.log(beta + rows.T)
    alive = -(r + x) * log_aT - s * log_bT
    died = np.log(s) - np.log(rsx) + log_a0
    m = np.logaddexp(alive, died)
    w_alive, w_died = np.exp(alive - m), np.exp(died - m)
    ll = (_dot(wx, gammaln(r + ux)) + rows.w.sum() * (-gammaln(r) + r * np.log(alpha) + s * np.log(beta))
          + _dot(w, m))
    wa, wd = w * w_alive, w * w_died
    n = rows.w.sum()
    d_r = (_dot(wx, digamma(r + ux)) + n * (np.log(alpha) - digamma(r)) - _dot(wa, log_aT)
           + _dot(wd, g_a0[:, 0] - 1.0 / rsx))
    d_alpha = n * r / alpha - _dot(wa, (r + x) / (alpha + rows.T)) + _dot(wd, g_a0[:, 1])
    d_s = n * np.log(beta) - _dot(wa, log_bT) + _dot(wd, 1.0 / s - 1.0 / rsx + g_a0[:, 2])
    d_beta = n * s / beta - _dot(wa, s / (beta + rows.T)) + _dot(wd, g_a0[:, 3])
    out = -np.array([d_r, d_alpha, d_s, d_beta]) + 2 * pen * p
    return float(-ll + pen * _dot(p, p)), out


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
        rows = _Rows(d["frequency"], d["recency"], d["T"])
        pen = float(self.config["penalizer"])
        n = float(rows.w.sum())

        def objective(p: Vector) -> tuple[float, Vector | None]:
            with np.errstate(all="ignore"):
                value, grad = _nll_and_grad(p, rows, pen)
            return value / n, (None if grad is None else grad / n)

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
