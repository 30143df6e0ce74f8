"""Value tiers (Peppers & Rogers) and the migration of customers between tiers across runs.

    >>> tiers = assign_tiers(ids, clv, net_value, headroom, p_alive, policy)  # doctest: +SKIP

Peppers & Rogers (*Managing Customer Relationships*, 2nd ed. 2011, ch. 5) rank customers by
actual value (lifetime value) and by strategic value (the value they could still bring):

* **BZ**, below zero: the discounted margin does not cover the cost to serve (``net_value < 0``);
* **MVC**, most valuable: the top ``mvc_share`` of all customers by CLV (among those not BZ);
* **MGC**, most growable: of the rest, the top ``mgc_share`` of all customers by wallet headroom,
  among those still likely alive (P(alive) >= ``mgc_min_p_alive``);
* **normal**: everyone else (Peppers & Rogers' "migrators", to be kept and moved up).

Ties break by customer id, so a refit on the same data gives the same tiers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from xrm.differentiate._policy import ValuePolicy

__all__ = ["TIERS", "assign_tiers", "tier_table"]

TIERS: tuple[str, ...] = ("MVC", "MGC", "normal", "BZ")

Array = npt.NDArray[np.float64]


def _top(order_keys: tuple[Array, ...], eligible: npt.NDArray[np.bool_], count: int) -> npt.NDArray[np.intp]:
    """Indices of the ``count`` eligible rows that come first in the lexicographic ``order_keys``."""
    order = np.lexsort(order_keys)  # last key sorts first
    order = order[eligible[order]]
    return order[:count]


def assign_tiers(
    customer_id: npt.NDArray[np.object_],
    clv: Array,
    net_value: Array,
    headroom: Array,
    p_alive: Array,
    policy: ValuePolicy,
) -> npt.NDArray[np.object_]:
    """Each customer's tier (see the module docstring)."""
    n = len(clv)
    tiers = np.full(n, "normal", dtype=object)
    if not n:
        return tiers
    ids = np.asarray(customer_id).astype(str)
    below = net_value < 0
    tiers[below] = "BZ"
    n_mvc = math.ceil(policy.mvc_share * n)
    mvc = _top((ids, -clv), ~below & (clv > 0), n_mvc)
    tiers[mvc] = "MVC"
    n_mgc = math.ceil(policy.mgc_share * n)
    growable = (tiers == "normal") & (headroom > 0) & (p_alive >= policy.mgc_min_p_alive)
    mgc = _top((ids, -headroom), growable, n_mgc)
    tiers[mgc] = "MGC"
    return tiers


def tier_table(tiers: npt.NDArray[np.object_], clv: Array, spend: Array) -> list[dict[str, Any]]:
    """Per tier: customers, their share, their share of total CLV and of historic spend."""
    n = max(len(tiers), 1)
    total_clv = float(np.clip(clv, 0, None).sum()) or 1.0
    total_spend = float(np.clip(spend, 0, None).sum()) or 1.0
    rows = []
    for t in TIERS:
        m = tiers == t
        rows.append({
            "tier": t,
            "customers": int(m.sum()),
            "customer_share": float(m.sum() / n),
            "clv": float(clv[m].sum()),
            "clv_share": float(np.clip(clv[m], 0, None).sum() / total_clv),
            "spend_share": float(np.clip(spend[m], 0, None).sum() / total_spend),
        })
    return rows
