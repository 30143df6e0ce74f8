"""Differentiate on any batch engine: summaries and needs profiles aggregate in the engine (Ibis);
the models are fitted here on the collected per-customer arrays.

    >>> summary, info = summaries_on(engine)  # doctest: +SKIP
    >>> scores, fits = value_on_summary(engine.collect(summary))  # doctest: +SKIP

What reaches Python is one row per customer (the sufficient statistics of the models), never
the events; on a cluster that is the driver's memory limit (about 100 bytes per customer).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from xrm.differentiate._bgnbd import BetaGeoNBD
from xrm.differentiate._clv import score_customers
from xrm.differentiate._gammagamma import GammaGamma
from xrm.differentiate._needs import _feature_matrix, needs_profiles
from xrm.differentiate._segments import cluster, standardise
from xrm.differentiate._summary import order_events, purchase_summary
from xrm.exceptions import ModelError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

__all__ = ["needs_on", "summaries_on", "value_on_summary"]


def summaries_on(
    engine: Any,
    *,
    events_table: str = "events",
    customer_key: str = "user_id",
    calibration_end: dt.date | str | None = None,
    time_unit: str | float = "W",
) -> tuple[ir.Table | None, dict[str, Any]]:
    """The purchase summary expression (observation end = the day of the last order) and its dates;
    ``None`` when there are no orders."""
    orders = order_events(engine.table(events_table))
    last = orders.ts.max().to_pyarrow().as_py()
    if last is None:
        return None, {"observation_end": None}
    obs = last.date()
    expr = purchase_summary(
        orders, observation_end=obs, calibration_end=calibration_end, time_unit=time_unit,
        customer_key=customer_key,
    )
    return expr, {"observation_end": obs.isoformat(), "calibration_end": str(calibration_end or obs)}


def value_on_summary(
    summary: pd.DataFrame, *, horizon: int = 12, discount_rate: float = 0.01
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """BG/NBD and Gamma-Gamma fitted on a collected summary; per-customer P(alive), expected
    purchases and spend, CLV (the same models ``score_value`` fits on the store)."""
    summary = summary.sort_values("customer_id").reset_index(drop=True)
    if not len(summary):
        raise ModelError("value: there are no customers with orders to fit the models on")
    purchases = BetaGeoNBD().fit(summary)
    x, m = summary["frequency"].to_numpy(), summary["monetary_value"].to_numpy(float)
    usable = (x > 0) & (m > 0)
    spend = GammaGamma().fit({"frequency": x[usable], "monetary_value": m[usable]})
    scored = summary[["customer_id", "frequency", "recency", "T", "monetary_value"]].copy()
    scored["monetary_value"] = np.clip(scored["monetary_value"], 0.0, None)
    scores = score_customers(purchases, spend, scored, horizon=horizon, discount_rate=discount_rate)
    return scores, {"customers": len(summary), "purchases": purchases.summary(), "spend": spend.summary()}


def needs_on(
    engine: Any,
    *,
    events_table: str = "events",
    customer_key: str = "user_id",
    half_life_days: float = 180.0,
    k: int | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Needs profiles (aggregated in the engine) and k-means segments (here), numbered by size."""
    profiles, categories, known = needs_profiles(
        engine, half_life_days=half_life_days, customer_key=customer_key, events_table=events_table
    )
    if profiles.empty:
        return profiles, {"customers": 0, "skipped": "no orders"}
    x, _ = _feature_matrix(profiles, categories)
    z, _ = standardise(x)
    result = cluster(z, k=k if (categories or known) else 1, seed=seed)
    sizes = np.bincount(result.labels, minlength=result.k)
    relabel = np.empty(result.k, dtype=np.int64)
    relabel[np.argsort(-sizes, kind="stable")] = np.arange(result.k)
    profiles = profiles.copy()
    profiles["segment_id"] = relabel[result.labels]
    return profiles.reset_index(), {
        "customers": len(profiles), "k": result.k, "silhouette": result.silhouette, "categories": categories,
    }
