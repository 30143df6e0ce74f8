"""Differentiate: each customer's value (purchase summaries, lifetime-value models, wallet, tiers)
and needs (preference profiles, needs-based segments).

    >>> from xrm.differentiate import BetaGeoNBD, GammaGamma, purchase_summary, score_customers
    >>> from xrm.differentiate import build_value, score_value  # the store-level steps
    >>> from xrm.differentiate import build_needs, update_needs  # needs: full build, incremental

Purchase summaries are Ibis expressions (DuckDB or Spark); the models fit in NumPy/SciPy on them.
Names load on first use, so the models never import Ibis or DuckDB.  See docs/value.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xrm._lazy import lazy_exports

if TYPE_CHECKING:
    from xrm.differentiate._bgnbd import BetaGeoNBD
    from xrm.differentiate._build import build_purchase_summaries
    from xrm.differentiate._charts import tracking_data, value_charts
    from xrm.differentiate._clv import (
        MONTH_IN_WEEKS,
        PurchaseModel,
        discounted_clv,
        discounted_purchases,
        score_customers,
    )
    from xrm.differentiate._dropouts import dropout_ranking
    from xrm.differentiate._gammagamma import GammaGamma
    from xrm.differentiate._model import FORMAT_VERSION, ValueModel
    from xrm.differentiate._needs import build_needs, needs_profiles, segment_report
    from xrm.differentiate._needs_update import update_needs
    from xrm.differentiate._paretonbd import ParetoNBD
    from xrm.differentiate._policy import ValuePolicy
    from xrm.differentiate._runs import tier_migration, value_report
    from xrm.differentiate._sbg import ShiftedBetaGeometric
    from xrm.differentiate._score import fit_value_models, load_value_models, score_value
    from xrm.differentiate._summary import (
        SUMMARY_COLUMNS,
        order_events,
        purchase_summary,
        time_unit_days,
    )
    from xrm.differentiate._tiers import TIERS, assign_tiers
    from xrm.differentiate._value import build_value
    from xrm.differentiate._wallet import estimate_wallet

_WHERE = {
    "BetaGeoNBD": "_bgnbd",
    "build_purchase_summaries": "_build",
    "tracking_data": "_charts",
    "value_charts": "_charts",
    "MONTH_IN_WEEKS": "_clv",
    "PurchaseModel": "_clv",
    "discounted_clv": "_clv",
    "discounted_purchases": "_clv",
    "score_customers": "_clv",
    "dropout_ranking": "_dropouts",
    "GammaGamma": "_gammagamma",
    "FORMAT_VERSION": "_model",
    "ValueModel": "_model",
    "build_needs": "_needs",
    "needs_profiles": "_needs",
    "segment_report": "_needs",
    "update_needs": "_needs_update",
    "ValuePolicy": "_policy",
    "tier_migration": "_runs",
    "value_report": "_runs",
    "fit_value_models": "_score",
    "load_value_models": "_score",
    "score_value": "_score",
    "TIERS": "_tiers",
    "assign_tiers": "_tiers",
    "build_value": "_value",
    "estimate_wallet": "_wallet",
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
    "TIERS",
    "BetaGeoNBD",
    "GammaGamma",
    "ParetoNBD",
    "PurchaseModel",
    "ShiftedBetaGeometric",
    "ValueModel",
    "ValuePolicy",
    "assign_tiers",
    "build_needs",
    "build_purchase_summaries",
    "build_value",
    "discounted_clv",
    "discounted_purchases",
    "dropout_ranking",
    "estimate_wallet",
    "fit_value_models",
    "load_value_models",
    "needs_profiles",
    "order_events",
    "purchase_summary",
    "score_customers",
    "score_value",
    "segment_report",
    "tier_migration",
    "time_unit_days",
    "tracking_data",
    "update_needs",
    "value_charts",
    "value_report",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
