"""Offers made from what a business sells: one per product, a few bundles, content, a service call.

A starting catalogue for a store that has orders but no offers yet (the sample business, a first
installation): every product sold becomes an offer worth a quarter of its median price as
margin, the best-selling pairs become bundles, and two pieces of content and a retention call
stand for the non-product actions. Replace or extend it with your own file (`xrm offers load`).

    >>> add_offers(store, catalogue_offers(store))  # doctest: +SKIP
    41
"""

from __future__ import annotations

from xrm.customize._offers import Offer
from xrm.store import Store

__all__ = ["catalogue_offers"]

MARGIN_SHARE = 0.25  # margin assumed per product offer, as a share of its median price


def catalogue_offers(store: Store) -> list[Offer]:
    """Offers for every product in ``order_lines``, three bundles, two content pieces, one call."""
    rows = store.sql(
        "SELECT coalesce(product_id, sku) AS p, any_value(name), any_value(category), median(price), "
        "count(*) "
        "FROM order_lines WHERE coalesce(product_id, sku) IS NOT NULL GROUP BY 1 ORDER BY 5 DESC, 1"
    ).fetchall()
    offers = [
        Offer(f"p-{p}", "product", str(name), value=round(MARGIN_SHARE * float(price or 10), 2),
              # Without a category each product is its own, so diversity does not hide it.
              cost=0.05, category=str(cat) if cat else f"product {p}", product_ids=(p,), base_rate=0.05)
        for p, name, cat, price, _ in rows
    ]
    top = [r[0] for r in rows[:6]]
    for n in range(min(3, len(top) // 2)):
        a, b = top[2 * n], top[2 * n + 1]
        offers.append(Offer(f"bundle-{n + 1}", "bundle", f"Bundle {a} + {b}", value=4.0, cost=0.3,
                            category="bundle", product_ids=(a, b), exclude_owned=True, base_rate=0.03))
    offers += [
        Offer("guide-brewing", "content", "Brewing guide", value=0.5, category="content",
              channels=("web", "app"), consent_purpose=None, base_rate=0.1),
        Offer("guide-recipes", "content", "Recipes of the month", value=0.4, category="content",
              channels=("web", "app", "email"), base_rate=0.08),
        Offer("call-retention", "service", "Retention call", value=12.0, cost=2.0, category="service",
              channels=("phone",), base_rate=0.2),
    ]
    return offers
