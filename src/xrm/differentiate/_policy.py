"""The settings of a value scoring run: horizon, discounting, margin, costs, tiers and wallet.

    >>> ValuePolicy(horizon_weeks=52, discount_rate=0.01, mvc_share=0.02).check()  # doctest: +SKIP

One object, saved whole with every scoring run (``value_runs.settings``), so a run can be
explained and repeated.  Every problem is reported at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from xrm.exceptions import ConfigError

__all__ = ["PURCHASE_MODELS", "ValuePolicy"]

# The purchase models a scoring run may use, by the name the API and the CLI take.
PURCHASE_MODELS: dict[str, str] = {"bgnbd": "bg/nbd", "paretonbd": "pareto/nbd"}


@dataclass(frozen=True)
class ValuePolicy:
    """How customers are valued and tiered (defaults in brackets).

    * ``model`` ["bgnbd"]: the purchase model, ``"bgnbd"`` or ``"paretonbd"``.
    * ``horizon_weeks`` [52]: the CLV horizon; ``discount_rate`` [0.01] per month.
    * ``margin`` [1.0]: share of spend that is margin (1.0 = CLV in revenue).
    * ``cost_per_order`` [0], ``cost_per_year`` [0]: cost to serve, in currency; a customer whose
      discounted margin is below it is *below zero* (BZ).
    * ``mvc_share`` [0.05]: the top share of customers by CLV who are *most valuable* (MVC).
    * ``mgc_share`` [0.20]: the share, by wallet headroom, of the rest who are *most growable*
      (MGC); only customers with P(alive) >= ``mgc_min_p_alive`` [0.5] qualify.
    * ``churn_alert_p_alive`` [0.3]: a customer whose P(alive) falls below it between two scoring
      runs (or rises back above it) gets a ``p_alive`` row in ``trait_changes``.
    * ``wallet_window_weeks`` [52]: the window of own spend compared with the wallet.
    * ``wallet_quantile`` [0.9]: the wallet is this quantile of look-alike customers' spend.
    * ``category_wallet`` [{}]: known category spend per customer and window, by needs segment
      (``"*"`` for all); where given it replaces the look-alike estimate.
    """

    model: str = "bgnbd"
    horizon_weeks: float = 52.0
    discount_rate: float = 0.01
    margin: float = 1.0
    cost_per_order: float = 0.0
    cost_per_year: float = 0.0
    mvc_share: float = 0.05
    mgc_share: float = 0.20
    mgc_min_p_alive: float = 0.5
    churn_alert_p_alive: float = 0.3
    wallet_window_weeks: float = 52.0
    wallet_quantile: float = 0.9
    category_wallet: Mapping[str, float] = field(default_factory=dict)

    def check(self) -> ValuePolicy:
        """Raise :class:`ConfigError` listing every invalid setting; return self when all are fine."""
        problems: list[str] = []

        def rule(ok: bool, name: str, text: str) -> None:
            if not ok:
                problems.append(f"{name} = {getattr(self, name)!r}: {text}")

        def finite(v: Any) -> bool:
            return isinstance(v, int | float) and math.isfinite(v)

        rule(self.model in PURCHASE_MODELS, "model", f"use one of {', '.join(PURCHASE_MODELS)}")
        rule(finite(self.horizon_weeks) and self.horizon_weeks > 0, "horizon_weeks", "must be > 0 weeks")
        rule(finite(self.discount_rate) and 0 <= self.discount_rate < 1, "discount_rate",
             "is per month and must be in [0, 1) (0.01 = 1 % a month)")
        rule(finite(self.margin) and 0 < self.margin <= 1, "margin", "is a share of spend in (0, 1]")
        for name in ("cost_per_order", "cost_per_year"):
            rule(finite(getattr(self, name)) and getattr(self, name) >= 0, name, "must be >= 0")
        for name in ("mvc_share", "mgc_share", "mgc_min_p_alive", "churn_alert_p_alive"):
            rule(finite(getattr(self, name)) and 0 <= getattr(self, name) <= 1, name, "must be in [0, 1]")
        rule(finite(self.mvc_share) and finite(self.mgc_share) and self.mvc_share + self.mgc_share <= 1,
             "mgc_share", "mvc_share + mgc_share must not exceed 1")
        rule(finite(self.wallet_window_weeks) and self.wallet_window_weeks > 0, "wallet_window_weeks",
             "must be > 0 weeks")
        rule(finite(self.wallet_quantile) and 0.5 <= self.wallet_quantile < 1, "wallet_quantile",
             "must be in [0.5, 1) (a high quantile: 0.9)")
        bad = {k: v for k, v in dict(self.category_wallet).items() if not (finite(v) and v > 0)}
        rule(not bad, "category_wallet", f"spend per segment must be > 0 (bad: {bad})")
        if problems:
            raise ConfigError("invalid value settings:\n  " + "\n  ".join(problems))
        return self

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["category_wallet"] = dict(self.category_wallet)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValuePolicy:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"unknown value setting(s) {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}"
            )
        return cls(**data).check()
