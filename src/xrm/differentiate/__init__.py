"""Differentiate: each customer's value (purchase summaries, lifetime-value models) and needs.

    >>> from xrm.differentiate import BetaGeoNBD, GammaGamma, purchase_summary, score_customers

Purchase summaries are Ibis expressions (DuckDB or Spark); the models fit in NumPy/SciPy on them.
Names load on first use, so the models never import Ibis or DuckDB.  See docs/value.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xrm.differentiate._bgnbd import BetaGeoNBD
    from xrm.differentiate._build import build_purchase_summaries
    from xrm.differentiate._clv import MONTH_IN_WEEKS, PurchaseModel, discounted_clv, score_customers
    from xrm.differentiate._gammagamma import GammaGamma
    from xrm.differentiate._model import FORMAT_VERSION, ValueModel
    from xrm.differentiate._paretonbd import ParetoNBD
    from xrm.differentiate._sbg import ShiftedBetaGeometric
    from xrm.differentiate._summary import (
        SUMMARY_COLUMNS,
        order_events,
        purchase_summary,
        time_unit_days,
    )

_WHERE = {
    "BetaGeoNBD": "_bgnbd",
    "build_purchase_summaries": "_build",
    "MONTH_IN_WEEKS": "_clv",
    "PurchaseModel": "_clv",
    "discounted_clv": "_clv",
    "score_customers": "_clv",
    "GammaGamma": "_gammagamma",
    "FORMAT_VERSION": "_model",
    "ValueModel": "_model",
    "ParetoNBD": "_paretonbd",
    "ShiftedBetaGeometric": "_sbg",
    "SUMMARY_COLUMNS": "_summary",
    "order_events": "_summary",
    "purchase_summary": "_summary",
    "time_unit_days": "_summary",
}

__all__ = [
    "FORMAT_VERSION",
    "MONTH_IN_WEEKS",
    "SUMMARY_COLUMNS",
    "BetaGeoNBD",
    "GammaGamma",
    "ParetoNBD",
    "PurchaseModel",
    "ShiftedBetaGeometric",
    "ValueModel",
    "build_purchase_summaries",
    "discounted_clv",
    "order_events",
    "purchase_summary",
    "score_customers",
    "time_unit_days",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'xrm.differentiate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"xrm.differentiate.{module}"), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
