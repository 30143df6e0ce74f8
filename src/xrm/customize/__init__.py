"""Customize: offers, recommendations, next-best-action decisions and learning from responses.

    >>> from xrm.customize import build_recommendations, next_best_actions
    >>> build_recommendations(store)                                  # doctest: +SKIP
    >>> next_best_actions(store, "u-17", channel="email", k=3)         # doctest: +SKIP

    >>> configure(store, "u-17", exclude_allergens=["nuts"])           # doctest: +SKIP

Consent and the contact policy plug in as ``eligible(customer, offer, channel) -> bool``
(default :func:`allow_all`); see docs/customize.md.
"""

from xrm.customize._bandit import DECISION_FEATURES, LogisticThompson
from xrm.customize._baskets import Baskets, read_purchases, split_last_basket
from xrm.customize._blend import Blend
from xrm.customize._build import build_recommendations, recommend_for
from xrm.customize._catalogue import catalogue_offers
from xrm.customize._configurator import (
    Configuration,
    Request,
    configure,
    configure_segment,
    read_configurations,
    request_from,
    solve,
)
from xrm.customize._decide import (
    RESPONSE_EVENTS,
    Decision,
    RankedOffer,
    apply_response_events,
    customer_facts,
    next_best_actions,
    record_response,
)
from xrm.customize._decider import CustomerRow, Decider, Refusal
from xrm.customize._eligibility import CustomerFacts, EligibilityHook, allow_all, offer_rules_failed
from xrm.customize._evaluate import evaluate, ranking_metrics, temporal_split
from xrm.customize._offers import (
    OFFER_KINDS,
    Offer,
    add_offers,
    get_offer,
    list_offers,
    load_offers,
    read_offers,
    remove_offer,
)
from xrm.customize._offpolicy import doubly_robust, ips, snips
from xrm.customize._product import Product, load_product, parse_product
from xrm.customize._signals import ALSSignal, CoOccurrence, Popularity, RepeatPurchase

__all__ = [
    "DECISION_FEATURES",
    "OFFER_KINDS",
    "RESPONSE_EVENTS",
    "ALSSignal",
    "Baskets",
    "Blend",
    "CoOccurrence",
    "Configuration",
    "CustomerFacts",
    "CustomerRow",
    "Decider",
    "Decision",
    "EligibilityHook",
    "LogisticThompson",
    "Offer",
    "Popularity",
    "Product",
    "RankedOffer",
    "Refusal",
    "RepeatPurchase",
    "Request",
    "add_offers",
    "allow_all",
    "apply_response_events",
    "build_recommendations",
    "catalogue_offers",
    "configure",
    "configure_segment",
    "customer_facts",
    "doubly_robust",
    "evaluate",
    "get_offer",
    "ips",
    "list_offers",
    "load_offers",
    "load_product",
    "next_best_actions",
    "offer_rules_failed",
    "parse_product",
    "ranking_metrics",
    "read_configurations",
    "read_offers",
    "read_purchases",
    "recommend_for",
    "record_response",
    "remove_offer",
    "request_from",
    "snips",
    "solve",
    "split_last_basket",
    "temporal_split",
]
