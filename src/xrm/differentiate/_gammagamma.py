"""Gamma-Gamma: spend per purchase, independent of how often a customer buys.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis",
Journal of Marketing Research 42(4), 415-430, §4; written out in Fader & Hardie (2013), "The
Gamma-Gamma model of monetary value" (brucehardie.com/notes/025).  A purchase's spend is
Gamma(p, ν); ν ~ Gamma(q, γ) across customers.  The data are each repeat customer's number of
repeat purchases x and their average spend m_x.

    >>> gg = GammaGamma().fit(summary); gg.expected_spend(summary)  # doctest: +SKIP

On the 946 CDNOW repeat customers the note reports p=6.25, q=3.74, γ=15.44.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from xrm.differentiate._data import columns
from xrm.differentiate._mle import Vector
from xrm.differentiate._model import ValueModel
from xrm.exceptions import ModelError

__all__ = ["GammaGamma"]

Array = npt.NDArray[np.float64]


def _spend_arrays(data: Any, model: str) -> tuple[Array, Array]:
    a = columns(data, ("frequency", "monetary_value"), model=model)
    x, m = a["frequency"], a["monetary_value"]
    if not (np.isfinite(x).all() and np.isfinite(m).all()):
        raise ModelError(f"{model}: frequency and monetary_value must be finite numbers")
    return x, m


def _dot(u: Array, v: Array) -> float:
    """A weighted sum without BLAS (np.dot wakes its threads: slow on a loaded machine)."""
    return float(np.einsum("i,i->", u, v))


class GammaGamma(ValueModel):
    """The Gamma-Gamma spend model fitted by maximum likelihood on repeat customers.

    Settings: ``penalizer`` (L2 on the parameters), ``start`` (p, q, γ), ``max_iter``, ``tol``.
    """

    kind: ClassVar[str] = "gamma-gamma"
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    defaults: ClassVar[dict[str, Any]] = {
        "penalizer": 0.0,
        "start": [1.0, 1.0, 1.0],
        "max_iter": 1000,
        "tol": 1e-12,
    }

    def fit(self, data: Any) -> GammaGamma:
        """Fit on customers with repeat purchases (others carry no spend information)."""
        x, m = _spend_arrays(data, self.kind)
        rep = x > 0
        bad = rep & (m <= 0)
        if bad.any():
            raise ModelError(
                f"{self.kind}: {int(bad.sum())} of {int(rep.sum())} repeat customers have an average "
                f"spend <= 0 (first at row {int(np.flatnonzero(bad)[0])}: "
                f"{float(m[np.flatnonzero(bad)[0]])!r}); the model needs positive spend (returns and "
                f"free orders break it). Exclude them: fit(summary[summary.monetary_value > 0])"
            )
        x, m = x[rep], m[rep]
        if len(x) < 2:
            raise ModelError(
                f"{self.kind}: {len(x)} customer(s) with repeat purchases; the spread of spend "
                f"across customers needs at least 2 (in practice hundreds)"
            )
        pen = float(self.config["penalizer"])
        n = float(len(x))
        # Fader & Hardie (2013), the likelihood of m_x given x (the note's §3), in logs:
        #   Γ(px+q)/(Γ(px)Γ(q)) γ^q m^(px-1) x^(px) / (γ+xm)^(px+q).
        # The Γ and ψ terms depend on x alone: evaluated once per distinct x (weighted by its
        # customers); per customer there is only log(γ + x m) and its reciprocal.
        ux, ix = np.unique(x, return_inverse=True)
        wx = np.bincount(ix.reshape(-1), minlength=len(ux)).astype(np.float64)
        log_ux = np.log(ux)
        xm = x * m
        log_m = np.log(m)
        sum_log_m, sum_x_log_m = float(log_m.sum()), _dot(x, log_m)

        def objective(params: Vector) -> tuple[float, Vector]:
            p, q, g = params
            pu = p * ux
            log_g_xm = np.log(g + xm)
            inv_g_xm = 1.0 / (g + xm)
            s_l, s_xl = float(log_g_xm.sum()), _dot(x, log_g_xm)
            ll = (
                _dot(wx, gammaln(pu + q) - gammaln(pu) + pu * log_ux) + n * (q * np.log(g) - gammaln(q))
                + p * sum_x_log_m - sum_log_m - p * s_xl - q * s_l
            )
            psi = digamma(pu + q)
            d_p = _dot(wx, ux * (psi - digamma(pu) + log_ux)) + sum_x_log_m - s_xl
            d_q = _dot(wx, psi) + n * (np.log(g) - digamma(q)) - s_l
            d_g = n * q / g - p * _dot(x, inv_g_xm) - q * float(inv_g_xm.sum())
            grad = -np.array([d_p, d_q, d_g]) + 2 * pen * params
            return (float(-ll + pen * _dot(params, params)) / n, grad / n)

        return self._fit_per_customer(objective, n)

    def mean_spend(self) -> float:
        """Population mean spend per purchase, E(Z) = pγ/(q-1) (finite only when q > 1)."""
        p, q, g = self._params()
        if q <= 1:
            raise ModelError(
                f"{self.kind}: q = {q:.4g} <= 1, so the population's mean spend is infinite; "
                f"the spend data are too heavy-tailed for this model (check for outliers)"
            )
        return p * g / (q - 1)

    def expected_spend(self, data: Any) -> Array:
        """E(Z | x, m_x) = (q-1)/(px+q-1) · pγ/(q-1) + px/(px+q-1) · m_x (Fader & Hardie 2013, §4).

        A weighted mean of the population mean and the customer's own average; customers with no
        repeat purchase get the population mean.  Spend <= 0 of a repeat customer is refused.
        """
        p, q, g = self._params()
        x, m = _spend_arrays(data, self.kind)
        bad = (x > 0) & (m <= 0)
        if bad.any():
            raise ModelError(
                f"{self.kind}: {int(bad.sum())} customer(s) have repeat purchases but an average "
                f"spend <= 0; exclude them (summary[summary.monetary_value > 0]) before scoring"
            )
        self.mean_spend()  # refuses q <= 1 (infinite mean) with its reason
        px = p * np.where(x > 0, x, 0.0)
        return np.asarray((p * g + px * np.where(x > 0, m, 0.0)) / (px + q - 1), dtype=np.float64)
