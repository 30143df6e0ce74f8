"""Differentiate: each customer's value (history, lifetime value, tiers) and needs."""

from __future__ import annotations

from typing import Any

from xrm.exceptions import NotYetImplemented

__all__ = ["build_purchase_summaries"]


def build_purchase_summaries(store: Any) -> dict[str, Any]:
    raise NotYetImplemented("purchase summaries are not built yet (issue 2)")
