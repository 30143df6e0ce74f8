"""BG/NBD: beta-geometric / negative binomial purchasing with silent drop-out.

Fader, Hardie & Lee (2005), "'Counting your customers' the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284.  While alive a customer buys at Poisson rate
λ ~ Gamma(r, α); after each purchase they drop out with probability p ~ Beta(a, b).

    >>> m = BetaGeoNBD().fit(summary); m.p_alive(summary)  # doctest: +SKIP

On CDNOW (2,357 customers, 39 weeks) the paper reports r=0.243, α=4.414, a=0.793, b=2.426,
LL=-9582.4; ``tests/differentiate/test_cdnow.py`` pins them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def _row_codes(*cols: Array) -> npt.NDArray[np.intp]:
    """A code per row, equal for equal rows: hashed (pandas.factorize), not sorted, so it stays
    linear in the rows (np.unique(axis=0) sorts a void view and takes seconds at a million rows).

    The columns' bits are mixed into one 64-bit key and factorized once (one pass over integers:
    about ten times faster than factorizing complex pairs); every row is then checked against its
    code's representative row, and only if two different rows shared a key (a hash collision) are the
    columns factorized exactly, two at a time as one complex key."""
    import pandas as pd

    codes = np.asarray(pd.factorize(_row_hash(*cols))[0], dtype=np.intp)
    rep = _representatives(codes)[codes] if len(codes) else codes
    # (0.0 and -0.0 get two codes: harmless, their rows are merely not pooled.)
    if all(np.array_equal(col, col[rep]) for col in cols):
        return codes
    codes, _ = pd.factorize(cols[0] + 1j * cols[1] if len(cols) > 1 else cols[0])
    for col in cols[2:]:
        codes, _ = pd.factorize(codes + 1j * col)
    return np.asarray(codes, dtype=np.intp)


def _row_hash(*cols: Array) -> npt.NDArray[np.uint64]:
    """The columns' float bits mixed into one 64-bit key per row (equal rows, equal keys)."""
    key = np.zeros(len(cols[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in cols:
            bits = np.ascontiguousarray(col, dtype=np.float64).view(np.uint64)
            key = (key ^ bits) * np.uint64(0x9E3779B97F4A7C15)
            key ^= key >> np.uint64(29)
    return key


def _representatives(codes: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """One row index per code (rows with one code are identical, so any will do)."""
    rep = np.empty(int(codes.max()) + 1 if len(codes) else 0, dtype=np.intp)
    rep[codes] = np.arange(len(codes))
    return rep


def _compress(x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    """Identical (x, t_x, T) rows once, with their count as weight: many customers share them."""
    codes = _row_codes(x, t_x, T)
    rep = _representatives(codes)
    counts = np.bincount(codes, minlength=len(rep)).astype(np.float64)
    return x[rep], t_x[rep], T[rep], counts


class _Rows:
    """Purchase histories prepared for the likelihood: identical (x, t_x, T) rows once with their
    count as weight, and the distinct frequencies x, because every Γ and ψ term of the likelihood
    depends on x alone (a few hundred values for a million customers)."""

    def __init__(self, x: Array, t_x: Array, T: Array, *, compress: bool = True) -> None:
        if compress:
            x, t_x, T, w = _compress(x, t_x, T)
        else:
            w = np.ones_like(x)
        self.x, self.t_x, self.T, self.w = x, t_x, T, w
        self.ux, ix = np.unique(x, return_inverse=True)
        self.ix = ix.reshape(-1)
        self.wx: Array = np.bincount(self.ix, weights=w, minlength=len(self.ux)).astype(np.float64)  # per x
        self.rep_u = self.ux > 0


def _x_terms(p: Vector, rows: _Rows) -> tuple[Array, Array]:
    """Per distinct x: A1 + A2 of FHL (2005) eq. (6), and log((b+x-1)/a) (+inf at x = 0, where the
    drop-out branch is absent)."""
    r, alpha, a, b = p
    u = rows.ux
    a12 = (gammaln(r + u) - gammaln(r) + r * np.log(alpha)
           + gammaln(a + b) + gammaln(b + u) - gammaln(b) - gammaln(a + b + u))
    log_odds = np.full_like(u, np.inf)
    log_odds[rows.rep_u] = np.log(b + u[rows.rep_u] - 1) - np.log(a)
    return a12, log_odds


def _branches(p: Vector, rows: _Rows, log_odds: Array) -> tuple[Array, Array, Array, Array, Array]:
    """The two branches of eq. (6) per row, A3 = -(r+x) log(α+T) and A4 = log(a/(b+x-1)) -
    (r+x) log(α+t_x) (-inf when x = 0), their log-sum, and the logs they share with the gradient."""
    r, alpha, _, _ = p
    rx = r + rows.x
    log_T, log_tx = np.log(alpha + rows.T), np.log(alpha + rows.t_x)
    a3 = -rx * log_T
    a4 = -log_odds[rows.ix] - rx * log_tx
    return a3, a4, np.logaddexp(a3, a4), log_T, log_tx


def _ll_rows(p: Vector, rows: _Rows) -> Array:
    """Each row's log-likelihood, FHL (2005) eq. (6): A1 + A2 + log(exp(A3) + [x>0] exp(A4)), where
    B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1)."""
    a12, log_odds = _x_terms(p, rows)
    return np.asarray(a12[rows.ix] + _branches(p, rows, log_odds)[2], dtype=np.float64)


def _nll_and_grad(p: Vector, rows: _Rows, pen: float) -> tuple[float, Vector]:
    """The weighted negative log-likelihood and its analytic gradient.  The x-only terms are summed
    over the distinct x (weighted by their customers); only the two branches are per row."""
    r, alpha, a, b = p
    u, wx = rows.ux, rows.wx
    a12, log_odds = _x_terms(p, rows)
    a3, a4, m, log_T, log_tx = _branches(p, rows, log_odds)
    w3, w4 = np.exp(a3 - m), np.exp(a4 - m)  # softmax weights of the two branches
    w = rows.w
    inv_b = np.zeros_like(u)
    inv_b[rows.rep_u] = 1.0 / (b + u[rows.rep_u] - 1)
    ww4 = w * w4
    # Weighted sums by einsum, not np.dot/@: those call a multithreaded BLAS whose threads take
    # tens of milliseconds to wake on a loaded machine, per call.
    ll = _dot(wx, a12) + _dot(w, m)
    s_w4 = float(ww4.sum())
    d_r = (_dot(wx, digamma(r + u)) - rows.w.sum() * (digamma(r) - np.log(alpha))
           - _dot(w * w3, log_T) - _dot(ww4, log_tx))
    d_alpha = (rows.w.sum() * r / alpha
               - _dot(w * (r + rows.x), w3 / (alpha + rows.T) + w4 / (alpha + rows.t_x)))
    psi_ab = digamma(a + b)
    psi_abu = digamma(a + b + u)
    d_a = _dot(wx, psi_ab - psi_abu) + s_w4 / a
    d_b = _dot(wx, psi_ab + digamma(b + u) - digamma(b) - psi_abu) - _dot(ww4, inv_b[rows.ix])
    grad = -np.array([d_r, d_alpha, d_a, d_b]) + 2 * pen * p
    return float(-ll + pen * float(np.einsum("i,i->", p, p))), grad


def _dot(u: Array, v: Array) -> float:
    return float(np.einsum("i,i->", u, v))


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
    f = hyp2f1(a + b - 1 - r, a - 1, c, z)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # 2F1 may be <= 0 when c < 0 (a + b + x < 1): then no logarithm, the plain difference
        body = np.where(
            f > 0,
            -np.expm1((a - 1) * np.log1p(-z) + np.log(np.where(f > 0, f, 1.0))),
            1.0 - np.exp((a - 1) * np.log1p(-z)) * f,
        )
        out = np.asarray(c / (a - 1) * body, dtype=np.float64)
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ModelError(
            f"bg/nbd: expected purchases cannot be computed for {int(bad.sum())} customer(s) (first: "
            f"x={float(np.broadcast_to(x, bad.shape)[i]):g}, T={float(np.broadcast_to(T, bad.shape)[i]):g}, "
            f"t={float(np.broadcast_to(t, bad.shape)[i]):g}) with r={r:.4g}, alpha={alpha:.4g}, a={a:.4g}, "
            f"b={b:.4g}: the 2F1 series leaves floating-point range. Such extreme parameters come from "
            f"degenerate data; fit with penalizer > 0 or on a longer history"
        )
    return out


def _p_alive(p: tuple[float, ...], x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, a, b = p
    out = np.ones_like(x)
    rep = x > 0
    x, t_x, T = x[rep], t_x[rep], T[rep]
    log_odds = np.log(a / (b + x - 1)) + (r + x) * np.log((alpha + T) / (alpha + t_x))
    out[rep] = expit(-log_odds)
    return out


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
        rows = _Rows(d["frequency"], d["recency"], d["T"])
        pen = float(self.config["penalizer"])
        n = float(rows.w.sum())

        def objective(p: Vector) -> tuple[float, Vector]:
            value, grad = _nll_and_grad(p, rows, pen)
            return value / n, grad / n  # per customer: keeps the optimiser's scale sane

        return self._fit_per_customer(objective, n)

    # -- per customer ------------------------------------------------------------------------

    def _rfm(self, data: Any) -> Arrays:
        return rfm_arrays(data, model=self.kind, allow_empty=True)

    def log_likelihood(self, data: Any) -> Array:
        """Each customer's log-likelihood, FHL (2005) eq. (6)."""
        d = self._rfm(data)
        rows = _Rows(d["frequency"], d["recency"], d["T"], compress=False)
        return _ll_rows(np.array(self._params()), rows)

    def p_alive(self, data: Any) -> Array:
        """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((α+T)/(α+t_x))^(r+x)).

        Fader, Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model" (the note's
        closed form, which corrects FHL 2005 for customers with x = 0: they are alive).
        """
        d = self._rfm(data)
        return _p_alive(self._params(), d["frequency"], d["recency"], d["T"])

    def expected_purchases(self, data: Any, t: float | Array) -> Array:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units, FHL (2005) eq. (10)."""
        d = self._rfm(data)
        if np.ndim(t) == 0:
            return next(self.expected_purchases_path(d, [float(t)]))  # type: ignore[arg-type]
        x, T = d["frequency"], d["T"]
        t_arr = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        if (t_arr < 0).any():
            raise ModelError(f"{self.kind}: the horizon t must be >= 0, got {float(t_arr.min())}")
        return _expected(self._params(), t_arr, x, T) * self.p_alive(d)

    def expected_purchases_path(self, data: Any, ts: Sequence[float]) -> Iterator[Array]:
        """E[Y(t) | x, t_x, T] for each horizon in ``ts`` in turn (what discounted CLV sums).

        The data are checked and P(alive) computed once; the 2F1 term depends on (x, T) only, so
        it is evaluated once per distinct (x, T) pair (thousands for a million customers)."""
        if any(t < 0 for t in ts):
            raise ModelError(f"{self.kind}: the horizon t must be >= 0, got {min(ts)}")
        p = self._params()
        d = self._rfm(data)
        x, T = d["frequency"], d["T"]
        alive = _p_alive(p, x, d["recency"], T)
        codes = _row_codes(x, T)
        rep = _representatives(codes)
        ux, uT = x[rep], T[rep]
        for t in ts:
            yield _expected(p, np.full(len(rep), float(t)), ux, uT)[codes] * alive

    def expected_purchases_new(self, t: float | Array) -> Array:
        """E[X(t)]: repeat purchases of a new customer in ``t`` time units, FHL (2005) eq. (9)."""
        t_arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        zeros = np.zeros_like(t_arr)
        return _expected(self._params(), t_arr, zeros, zeros)

    def population(self) -> dict[str, float]:
        """Mean purchase rate r/α and mean drop-out probability a/(a+b)."""
        r, alpha, a, b = self._params()
        return {"mean_rate": r / alpha, "mean_dropout": a / (a + b)}
