from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from customize_helpers import T0, days, write_orders

from xrm.customize import (
    CustomerFacts,
    Offer,
    add_offers,
    apply_response_events,
    build_recommendations,
    next_best_actions,
    offer_rules_failed,
    record_response,
)
from xrm.exceptions import InputError

NOW = T0 + days(6 * 35 + 42)  # six weeks after the last of seven espresso orders


@pytest.fixture
def shop(store):
    names = {"beans": "espresso beans", "milk": "oat milk", "tea": "green tea", "cups": "paper cups"}
    orders = []
    for c in range(20):
        for b in range(7):
            items = ["beans"] if c % 2 == 0 else ["tea"]
            if b % 3 == 0:
                items.append("milk")
            orders.append((f"u{c}", f"o{c}-{b}", T0 + days(35 * b), items))
    write_orders(store, orders, names)
    build_recommendations(store, k=4)
    add_offers(store, [
        Offer("espresso", "product", "Espresso beans 1 kg", 4.10, category="coffee",
              product_ids=("beans",)),
        Offer("espresso-2", "product", "Espresso beans 2 kg", 6.00, category="coffee",
              product_ids=("beans",)),
        Offer("tea", "product", "Green tea", 3.0, category="tea", product_ids=("tea",)),
        Offer("milk", "product", "Oat milk", 1.5, category="dairy", product_ids=("milk",)),
        Offer("recipe", "content", "Latte art guide", 0.8, category="content", channels=("web",)),
    ])
    return store


def test_explanation_names_real_inputs(shop):
    decision = next_best_actions(shop, "u0", "email", k=3, explore=0.0, now=NOW)
    top = decision.offers[0]
    assert top.offer_id in ("espresso", "espresso-2")
    assert "bought espresso beans every 5 weeks, last 6 weeks ago" in top.explanation
    assert f"margin {top.value:.2f} €" in top.explanation
    assert top.expected_value == pytest.approx(top.p_response * top.value - top.cost)
    # The web-only content is not on email, and the reason is logged with the decision.
    assert decision.ineligible["recipe"].startswith("not offered on email")
    (inputs,) = shop.sql(
        "SELECT inputs FROM decisions WHERE decision_id = ?", [decision.decision_id]
    ).fetchone()
    assert json.loads(inputs)["ineligible"]["recipe"].startswith("not offered on email")
    logged = shop.sql(
        "SELECT offer_id, explanation, propensity FROM decision_items WHERE decision_id = ? ORDER BY rank",
        [decision.decision_id],
    ).fetchall()
    assert [r[0] for r in logged] == [o.offer_id for o in decision.offers]
    assert logged[0][2] == pytest.approx(1.0)  # no exploration: the greedy choice for sure


def test_diversity_one_offer_per_category(shop):
    decision = next_best_actions(shop, "u0", "email", k=4, explore=0.0, now=NOW)
    cats = [o.offer_id.split("-")[0] for o in decision.offers]
    assert len(cats) == len(set(cats))
    assert {"espresso", "espresso-2"} & {o.offer_id for o in decision.offers}


def test_a_response_changes_the_next_decision(shop):
    first = next_best_actions(shop, "u0", "email", k=1, explore=0.0, now=NOW)
    top = first.offers[0]
    decision = first
    for _ in range(30):
        if decision.offers[0].offer_id != top.offer_id:
            break
        record_response(shop, decision.decision_id, top.offer_id, "ignore")
        decision = next_best_actions(shop, "u0", "email", k=1, explore=0.0, now=NOW)
    assert decision.offers[0].offer_id != top.offer_id
    n, = shop.sql("SELECT n_responses FROM bandit_state WHERE offer_id = ?", [top.offer_id]).fetchone()
    assert n >= 1
    # A click moves the estimate the other way.
    after_ignores = decision
    other = after_ignores.offers[0]
    record_response(shop, after_ignores.decision_id, other.offer_id, "purchase")
    again = next_best_actions(shop, "u0", "email", k=1, explore=0.0, now=NOW)
    assert again.offers[0].p_mean > other.p_mean


def test_response_events_are_applied_once(shop):
    decision = next_best_actions(shop, "u2", "email", k=1, explore=0.0, now=NOW)
    props = json.dumps({"decision_id": decision.decision_id, "offer_id": decision.offers[0].offer_id})
    shop.sql(
        "INSERT INTO events (message_id, type, event, user_id, ts, properties) "
        "VALUES ('r1', 'track', 'Offer Clicked', 'u2', ?, ?)", [NOW, props],
    ).fetchall()
    assert apply_response_events(shop) == {"applied": 1, "skipped": 0}
    assert apply_response_events(shop) == {"applied": 0, "skipped": 0}
    assert shop.sql("SELECT outcome, reward FROM responses").fetchall() == [("click", 1.0)]
    with pytest.raises(InputError, match="no offer 'nope' in decision"):
        record_response(shop, decision.decision_id, "nope", "click")
    with pytest.raises(InputError, match="outcome = 'love'"):
        record_response(shop, decision.decision_id, decision.offers[0].offer_id, "love")


def test_propensities_of_an_exploring_policy(shop):
    rng = np.random.default_rng(0)
    decisions = [next_best_actions(shop, "u0", "email", k=2, explore=1.0, rng=rng, now=NOW) for _ in range(5)]
    for d in decisions:
        assert d.explored
        for o in d.offers:
            assert 0 < o.propensity <= 1


def test_eligibility_and_consent_always_respected(store):
    """Property test: random offers, customers and consent; no decided offer breaks a rule."""
    rng = np.random.default_rng(7)
    write_orders(store, [(f"u{c}", f"o{c}-{b}", T0 + days(10 * b), [f"p{(c + b) % 6}"])
                         for c in range(6) for b in range(3)])
    build_recommendations(store, k=3)
    channels, segments, tiers = ["email", "web", "app"], ["a", "b", None], ["MVC", "MGC", None]
    for case in range(12):
        store.sql("DELETE FROM offers").fetchall()
        offers = []
        for j in range(8):
            pick = rng.random(6)
            kind = rng.choice(["product", "bundle", "content", "service"])
            offers.append(Offer(
                f"o{j}", str(kind), f"offer {j}", value=float(rng.uniform(0.5, 20)),
                cost=float(rng.uniform(0, 0.3)),
                category=f"cat{rng.integers(4)}",
                product_ids=tuple(f"p{i}" for i in rng.choice(6, 2, replace=False))
                if kind in ("product", "bundle") else (),
                channels=tuple(rng.choice(channels, 2, replace=False)) if pick[0] < 0.5 else (),
                segments=("a",) if pick[1] < 0.3 else (),
                tiers=("MVC",) if pick[2] < 0.3 else (),
                exclude_owned=bool(pick[3] < 0.5),
                stock=int(rng.integers(0, 3)) if pick[4] < 0.4 else None,
                valid_to=date(2025, 1, 1) if pick[5] < 0.2 else None,
                base_rate=0.3,
            ))
        add_offers(store, offers)
        denied = {(f"u{c}", f"o{j}") for c in range(6) for j in range(8) if rng.random() < 0.3}

        def consent(customer, offer, channel, denied=denied):
            return (customer, offer.offer_id) not in denied

        for c in range(6):
            facts = CustomerFacts(f"u{c}", segment=segments[c % 3], tier=tiers[c % 3],
                                  owned=frozenset({f"p{(c + b) % 6}" for b in range(3)}), n_orders=3)
            channel = channels[case % 3]
            d = next_best_actions(store, f"u{c}", channel, k=4, eligible=consent, facts=facts,
                                  explore=0.5, rng=rng, now=NOW)
            by_id = {o.offer_id: o for o in offers}
            for ro in d.offers:
                o = by_id[ro.offer_id]
                assert offer_rules_failed(o, facts, channel, NOW.date()) is None
                assert (f"u{c}", o.offer_id) not in denied
            eligible = [o for o in offers if offer_rules_failed(o, facts, channel, NOW.date()) is None
                        and (f"u{c}", o.offer_id) not in denied]
            assert set(d.ineligible) == {o.offer_id for o in offers} - {o.offer_id for o in eligible}


def test_rules_in_words():
    facts = CustomerFacts("c", segment="b", tier="MGC", owned=frozenset({"p1"}))
    today = date(2026, 6, 1)
    assert offer_rules_failed(Offer("o", "content", "x", 1, stock=0), facts, "web", today) == "out of stock"
    assert offer_rules_failed(Offer("o", "content", "x", 1, tiers=("MVC",)), facts, "web", today) == (
        "tier MGC not in MVC")
    assert offer_rules_failed(
        Offer("o", "bundle", "x", 1, product_ids=("p1", "p2"), exclude_owned=True), facts, "web", today
    ) is None  # a bundle is owned only when every part is
    assert offer_rules_failed(
        Offer("o", "content", "x", 1, valid_from=date(2026, 7, 1)), facts, "web", today
    ) == "not valid before 2026-07-01"
