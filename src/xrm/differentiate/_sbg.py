"""Shifted-beta-geometric (sBG): retention and survival of contractual (subscription) cohorts.

Fader & Hardie (2007), "How to project customer retention", Journal of Interactive Marketing
21(1), 76-90.  At the end of each period an alive customer cancels with probability θ, and
θ ~ Beta(α, β) across customers.  The data are cohort counts: how many of those who started are
still active after 0, 1, 2, ... periods.

    >>> m = ShiftedBetaGeometric().fit([1000, 631, 468, 382, 326, 289, 262, 241])  # doctest: +SKIP
    >>> m.survival(range(13))  # doctest: +SKIP

The paper's worked example (Table 1, first 7 years) gives α=0.704, β=1.182 for the "regular"
cohort and α=0.668, β=3.806 for the "high end" cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, hyp2f1

from xrm.differentiate._mle import Vector
from xrm.differentiate._model import ValueModel
from xrm.exceptions import ModelError

__all__ = ["ShiftedBetaGeometric"]

Array = npt.NDArray[np.float64]


def _cohorts(data: Any, model: str) -> list[Array]:
    """One count array per cohort; a flat sequence of numbers is one cohort."""
    seq = list(data)
    if not seq:
        raise ModelError(f"{model}: no cohort counts given; pass e.g. [1000, 631, 468, ...]")
    nested = all(isinstance(c, Sequence | np.ndarray) and not isinstance(c, str) for c in seq)
    cohorts = [np.asarray(c, dtype=np.float64) for c in (seq if nested else [seq])]
    problems = []
    for i, c in enumerate(cohorts):
        name = f"cohort {i}"
        if c.ndim != 1 or len(c) < 2:
            problems.append(f"{name} needs the starting count and at least one later count, got {c.tolist()}")
        elif not np.isfinite(c).all() or (c < 0).any() or (c != np.floor(c)).any():
            problems.append(f"{name} must hold whole counts >= 0, got {c.tolist()}")
        elif (np.diff(c) > 0).any():
            k = int(np.flatnonzero(np.diff(c) > 0)[0]) + 1
            problems.append(
                f"{name}: survivors rise from {c[k - 1]:g} to {c[k]:g} at period {k}; counts of a "
                f"cohort can only fall (new customers start a new cohort)"
            )
        elif c[0] == 0:
            problems.append(f"{name} starts with 0 customers")
    if problems:
        raise ModelError(f"{model}: bad cohort data:\n  - " + "\n  - ".join(problems))
    return cohorts


class ShiftedBetaGeometric(ValueModel):
    """The sBG model fitted by maximum likelihood on one or more cohorts sharing α and β.

    Settings: ``start`` (α, β), ``max_iter``, ``tol``.
    """

    kind: ClassVar[str] = "sbg"
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    defaults: ClassVar[dict[str, Any]] = {"start": [1.0, 1.0], "max_iter": 1000, "tol": 1e-12}

    def fit(self, cohorts: Any) -> ShiftedBetaGeometric:
        """Fit on survivor counts: ``[1000, 631, 468]`` or a list of such cohorts."""
        data = _cohorts(cohorts, self.kind)
        lost = [c[:-1] - c[1:] for c in data]  # churned in period t = 1..n
        alive = [c[-1] for c in data]
        periods = [np.arange(1, len(c), dtype=np.float64) for c in data]
        if sum(float(lo.sum()) for lo in lost) == 0:
            raise ModelError(
                f"{self.kind}: no customer of any cohort churned, so the churn rate cannot be "
                f"estimated (the MLE is θ = 0); wait for more periods"
            )
        if sum(alive) == 0 and all(len(c) == 2 for c in data):
            raise ModelError(f"{self.kind}: everyone churned in the first period; α/β are not identified")
        n = float(sum(c[0] for c in data))

        def objective(p: Vector) -> tuple[float, Vector | None]:
            a, b = p
            ll = 0.0
            for lo, n_alive, t in zip(lost, alive, periods, strict=True):
                # Fader & Hardie (2007) §3 and appendix: P(T=t) = B(α+1, β+t-1)/B(α, β),
                # S(t) = B(α, β+t)/B(α, β); LL = Σ lost_t ln P(T=t) + alive_n ln S(n).
                log_p = betaln(a + 1, b + t - 1) - betaln(a, b)
                ll += float(lo @ log_p) + n_alive * float(betaln(a, b + t[-1]) - betaln(a, b))
            return -ll / n, None

        return self._fit_per_customer(objective, n)

    def survival(self, t: Any) -> Array:
        """S(t) = B(α, β+t) / B(α, β): the share of a cohort still active after t periods (§3)."""
        a, b = self._params()
        t_arr = np.asarray(t, dtype=np.float64)
        if (t_arr < 0).any():
            raise ModelError(f"{self.kind}: periods t must be >= 0, got {float(t_arr.min())}")
        return np.asarray(np.exp(betaln(a, b + t_arr) - betaln(a, b)), dtype=np.float64)

    def retention_rate(self, t: Any) -> Array:
        """r_t = S(t)/S(t-1) = (β+t-1)/(α+β+t-1), rising with t as the cohort sorts itself (eq. 8)."""
        a, b = self._params()
        t_arr = np.asarray(t, dtype=np.float64)
        if (t_arr < 1).any():
            raise ModelError(f"{self.kind}: retention is defined for periods t >= 1")
        return np.asarray((b + t_arr - 1) / (a + b + t_arr - 1), dtype=np.float64)

    def expected_lifetime(self) -> float:
        """Mean number of periods a new customer stays, E(T) = (α+β-1)/(α-1); infinite if α <= 1."""
        a, b = self._params()
        if a <= 1:
            raise ModelError(
                f"{self.kind}: α = {a:.4g} <= 1, so the expected lifetime is infinite; "
                f"use discounted_expected_residual_lifetime (finite for any discount rate > 0)"
            )
        return (a + b - 1) / (a - 1)

    def discounted_expected_residual_lifetime(self, discount_rate: float, renewals: int = 0) -> float:
        """DERL: discounted remaining periods of a customer who has made ``renewals`` renewals.

        Fader & Hardie (2010), "Customer-base valuation in a contractual setting: the perils of
        ignoring heterogeneity", Marketing Science 29(1), eq. (6):
        DERL(d | n-1 renewals) = (β+n-1)/(α+β+n-1) · 2F1(1, β+n; α+β+n; 1/(1+d)), with n-1 = renewals.
        Evaluated just before the next renewal: that payment counts in full, each later one is
        discounted one more period, i.e. Σ_{k>=1} S(n-1+k)/S(n-1) / (1+d)^(k-1).  Multiply by
        the margin per period for the residual lifetime value.
        """
        a, b = self._params()
        if not discount_rate > 0:
            raise ModelError(f"{self.kind}: discount_rate must be > 0 per period, got {discount_rate!r}")
        if renewals < 0:
            raise ModelError(f"{self.kind}: renewals must be >= 0, got {renewals}")
        n = renewals + 1
        series = hyp2f1(1.0, b + n, a + b + n, 1.0 / (1.0 + discount_rate))
        return float((b + n - 1) / (a + b + n - 1) * series)
