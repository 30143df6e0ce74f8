"""A starting catalogue of offers from what was sold, ranked by the next-best action like any other."""

from __future__ import annotations

from customize_helpers import T0, days, write_orders

from xrm.customize import add_offers, build_recommendations, catalogue_offers, next_best_actions


def test_catalogue_offers_cover_every_product_and_are_ranked(store) -> None:
    names = {"beans": "espresso beans", "tea": "green tea", "milk": "oat milk"}
    orders = [(f"u{c}", f"o{c}-{b}", T0 + days(30 * b), ["beans" if c % 2 else "tea", "milk"])
              for c in range(8) for b in range(4)]
    write_orders(store, orders, names)
    offers = catalogue_offers(store)
    by_id = {o.offer_id: o for o in offers}
    assert {"p-beans", "p-tea", "p-milk"} <= by_id.keys()
    assert by_id["p-milk"].product_ids == ("milk",) and by_id["p-milk"].value == 0.5  # 25 % of 2.00
    assert by_id["bundle-1"].product_ids == ("milk", "beans") or by_id["bundle-1"].product_ids == (
        "milk", "tea")
    assert {"guide-brewing", "guide-recipes", "call-retention"} <= by_id.keys()
    assert add_offers(store, offers) == len(offers)
    build_recommendations(store, k=3)
    decision = next_best_actions(store, "u1", "web", k=3, explore=0.0, now=T0 + days(130))
    assert decision.offers and all(o.offer_id in by_id for o in decision.offers)
    assert any("espresso beans" in o.explanation for o in decision.offers)
