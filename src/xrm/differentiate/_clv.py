"""Discounted customer lifetime value from a purchase model and a spend model.

    >>> df = score_customers(BetaGeoNBD().fit(s), GammaGamma().fit(s), s, horizon=12)  # doctest: +SKIP

CLV over ``horizon`` periods of ``period`` model time units (default: a month, in weeks), each
period's expected purchases discounted at ``discount_rate`` per period: the discrete-time counterpart
of the discounted expected transactions (DET) of Fader, Hardie & Lee (2005), "RFM and CLV: using
iso-value curves for customer base analysis", times the Gamma-Gamma expected spend:

    CLV = margin · E(Z | x, m_x) · Σ_{k=1..H} (E[Y(kΔ)] - E[Y((k-1)Δ)]) / (1 + d)^k
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from xrm.differentiate._data import columns
from xrm.differentiate._gammagamma import GammaGamma
from xrm.exceptions import ModelError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MONTH_IN_WEEKS", "PurchaseModel", "discounted_clv", "discounted_purchases", "score_customers"]

Array = npt.NDArray[np.float64]
MONTH_IN_WEEKS = 365.25 / 12 / 7


class PurchaseModel(Protocol):
    """What CLV needs of a transaction model (BG/NBD and Pareto/NBD both qualify)."""

    def expected_purchases(self, data: Any, t: float | Array) -> Array: ...

    def p_alive(self, data: Any) -> Array: ...


def _check(horizon: int, discount_rate: float, period: float, margin: float) -> None:
    problems = []
    if int(horizon) != horizon or horizon < 0:
        problems.append(f"horizon = {horizon!r} must be a whole number of periods >= 0")
    if not (discount_rate > -1 and np.isfinite(discount_rate)):
        problems.append(f"discount_rate = {discount_rate!r} per period must be > -1 (0.01 = 1%)")
    if not (period > 0 and np.isfinite(period)):
        problems.append(f"period = {period!r} must be a positive length in the model's time unit")
    if not np.isfinite(margin):
        problems.append(f"margin = {margin!r} must be a finite share of spend (1.0 = revenue)")
    if problems:
        raise ModelError("CLV settings are invalid: " + "; ".join(problems))


def discounted_clv(
    purchases: PurchaseModel,
    spend: GammaGamma,
    data: Any,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    period: float = MONTH_IN_WEEKS,
    margin: float = 1.0,
) -> Array:
    """Each customer's discounted value over ``horizon`` periods (see the module docstring)."""
    _check(horizon, discount_rate, period, margin)
    z = spend.expected_spend(data)
    steps = discounted_purchases(purchases, data, horizon=horizon, discount_rate=discount_rate, period=period)
    return np.asarray(margin * z * steps, dtype=np.float64)


def discounted_purchases(
    purchases: PurchaseModel,
    data: Any,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    period: float = MONTH_IN_WEEKS,
) -> Array:
    """Σ_{k=1..H} (E[Y(kΔ)] - E[Y((k-1)Δ)]) / (1+d)^k: each customer's discounted expected purchases."""
    _check(horizon, discount_rate, period, 1.0)
    steps: Array | None = None
    previous: Array | float = 0.0
    ts = [k * period for k in range(1, int(horizon) + 1)]
    path = getattr(purchases, "expected_purchases_path", None)  # one check of the data for all ts
    currents = path(data, ts) if path else (purchases.expected_purchases(data, t) for t in ts)
    for k, current in enumerate(currents, start=1):
        step = (current - previous) / (1.0 + discount_rate) ** k
        steps = step if steps is None else steps + step
        previous = current
    if steps is None:  # horizon 0
        steps = np.zeros_like(purchases.expected_purchases(data, 0.0))
    return np.asarray(steps, dtype=np.float64)


def score_customers(
    purchases: PurchaseModel,
    spend: GammaGamma,
    data: Any,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    period: float = MONTH_IN_WEEKS,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases and spend over the horizon, discounted CLV."""
    import pandas as pd

    _check(horizon, discount_rate, period, margin)
    ids = columns(data, ("frequency",), model="score")  # validates the frame early
    out = pd.DataFrame(index=range(len(ids["frequency"])))
    if hasattr(data, "columns") and "customer_id" in data.columns:
        out["customer_id"] = np.asarray(data["customer_id"])
    if not len(out):
        raise ModelError("score: there are no customers to score")
    out["p_alive"] = purchases.p_alive(data)
    out["expected_purchases"] = purchases.expected_purchases(data, horizon * period)
    out["expected_spend"] = spend.expected_spend(data)
    out["clv"] = discounted_clv(
        purchases, spend, data, horizon=horizon, discount_rate=discount_rate, period=period, margin=margin
    )
    return out
