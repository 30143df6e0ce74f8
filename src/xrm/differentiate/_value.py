"""Pipeline step "value and needs": needs profiles and segments, then value scores and tiers.

    >>> build_value(store)  # doctest: +SKIP
    {'needs': {'customers': 1830, 'k': 3, ...}, 'value': {'customers': 2357, 'tiers': [...], ...}}

Needs come first: the wallet of a customer is estimated from look-alikes in the same needs
segment.  Data too few for a model (no repeat buyer, a handful of customers) do not stop the
pipeline: that part reports ``skipped`` with the reason, and its tables are left as they were.
"""

from __future__ import annotations

from typing import Any

from xrm.differentiate._needs import build_needs
from xrm.differentiate._policy import ValuePolicy
from xrm.differentiate._score import score_value
from xrm.exceptions import ModelError
from xrm.store import Store

__all__ = ["build_value"]


def build_value(
    store: Store,
    *,
    policy: ValuePolicy | None = None,
    half_life_days: float = 180.0,
    k: int | None = None,
    customer_key: str = "user_id",
    events_table: str = "events",
) -> dict[str, Any]:
    """Rebuild needs profiles and segments, then fit, score and tier every customer."""
    out: dict[str, Any] = {}
    try:
        out["needs"] = build_needs(
            store, half_life_days=half_life_days, k=k, customer_key=customer_key, events_table=events_table
        )
    except ModelError as exc:
        out["needs"] = {"skipped": str(exc)}
    try:
        out["value"] = score_value(
            store, policy=policy or ValuePolicy(), customer_key=customer_key, events_table=events_table
        )
    except ModelError as exc:
        out["value"] = {"skipped": str(exc)}
    return out
