"""Who may get which offer: the offer's own rules, then a pluggable consent / contact-policy hook.

    >>> facts = CustomerFacts("c1", segment="families", owned=frozenset({"P1"}))
    >>> offer_rules_failed(Offer("o", "product", "x", 1.0, product_ids=("P1",), exclude_owned=True),
    ...                    facts, "email", date(2026, 1, 1))
    'already owns P1'

The hook is where Interact plugs in consent and the contact policy: any callable
``eligible(customer, offer, channel) -> bool``.  Until then it defaults to :func:`allow_all`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from xrm.customize._offers import Offer

__all__ = ["CustomerFacts", "EligibilityHook", "allow_all", "offer_rules_failed"]


class EligibilityHook(Protocol):
    """``eligible(customer, offer, channel)``: False blocks the offer (consent, contact policy)."""

    def __call__(self, customer: str, offer: Offer, channel: str) -> bool: ...


def allow_all(customer: str, offer: Offer, channel: str) -> bool:
    """The default hook: every customer may be contacted on every channel (until Interact's)."""
    return True


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules need to know about one customer (segment and tier come from Differentiate)."""

    customer: str
    segment: str | None = None
    tier: str | None = None
    owned: frozenset[str] = field(default_factory=frozenset)
    n_orders: int = 0


def offer_rules_failed(offer: Offer, facts: CustomerFacts, channel: str, today: date) -> str | None:
    """The first of the offer's own rules that the customer fails, in words; None if all pass."""
    if offer.valid_from and today < offer.valid_from:
        return f"not valid before {offer.valid_from}"
    if offer.valid_to and today > offer.valid_to:
        return f"expired on {offer.valid_to}"
    if offer.stock is not None and offer.stock <= 0:
        return "out of stock"
    if offer.channels and channel not in offer.channels:
        return f"not offered on {channel} (only {', '.join(offer.channels)})"
    if offer.segments and facts.segment not in offer.segments:
        return f"segment {facts.segment or 'unknown'} not in {', '.join(offer.segments)}"
    if offer.tiers and facts.tier not in offer.tiers:
        return f"tier {facts.tier or 'unknown'} not in {', '.join(offer.tiers)}"
    if offer.exclude_owned:
        owned = [p for p in offer.product_ids if p in facts.owned]
        # A bundle is "owned" only when every part is; a product as soon as it is bought.
        if owned and (offer.kind != "bundle" or len(owned) == len(offer.product_ids)):
            return f"already owns {', '.join(owned)}"
    return None
