"""The server's Decider: the same decisions as next_best_actions, from memory, logged in groups."""

from __future__ import annotations

import numpy as np
import pytest
from customize_helpers import T0, days, write_orders

from xrm.customize import Decider, Offer, add_offers, build_recommendations, next_best_actions
from xrm.customize._decide import category_codes, rank_many

NOW = T0 + days(6 * 35 + 42)


@pytest.fixture
def shop(store):
    names = {"beans": "espresso beans", "milk": "oat milk", "tea": "green tea"}
    orders = []
    for c in range(16):
        for b in range(7):
            items = ["beans"] if c % 2 == 0 else ["tea"]
            if b % 3 == 0 and c % 4 < 2:
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
        Offer("milk", "product", "Oat milk", 1.5, category="dairy", product_ids=("milk",),
              exclude_owned=True),
        Offer("set", "bundle", "Tea and milk", 5.0, product_ids=("tea", "milk"), exclude_owned=True),
        Offer("recipe", "content", "Latte art guide", 0.8, category="content", channels=("web",)),
    ])
    return store


def _walk(ev: np.ndarray, cats: list[str | None], k: int, q: int) -> list[int]:
    """The ranking walk, spelled out: best first, at most q per category, positive only."""
    chosen: list[int] = []
    seen: dict[str, int] = {}
    for j in np.argsort(-ev, kind="stable"):
        if ev[j] <= 0 or len(chosen) == k:
            break
        c = cats[j]
        if c is not None and seen.get(c, 0) >= q:
            continue
        if c is not None:
            seen[c] = seen.get(c, 0) + 1
        chosen.append(int(j))
    return chosen


def test_rank_many_is_the_walk_for_every_row() -> None:
    rng = np.random.default_rng(3)
    for _ in range(400):
        n, k, q = int(rng.integers(0, 12)), int(rng.integers(1, 6)), int(rng.integers(1, 3))
        cats = [None if rng.random() < 0.3 else f"c{rng.integers(4)}" for _ in range(n)]
        ev = np.round(rng.normal(0.1, 1, size=(int(rng.integers(1, 6)), n)), 1)  # ties on purpose
        got = rank_many(ev, category_codes(cats), k, q)
        for r in range(len(ev)):
            assert [int(j) for j in got[r] if j >= 0] == _walk(ev[r], cats, k, q)


def test_same_decisions_as_next_best_actions(shop) -> None:
    decider = Decider(shop, seed=1)
    assert decider.customer_key == "user_id"
    for c in range(16):
        for channel in ("email", "web"):
            slow = next_best_actions(shop, f"u{c}", channel, k=3, explore=0.0, now=NOW)
            fast = decider.decide(f"u{c}", channel, k=3, explore=0.0, now=NOW)
            assert [o.offer_id for o in fast.offers] == [o.offer_id for o in slow.offers]
            assert [o.p_mean for o in fast.offers] == pytest.approx([o.p_mean for o in slow.offers])
            assert [o.explanation for o in fast.offers] == [o.explanation for o in slow.offers]
            assert fast.ineligible == slow.ineligible
            assert all(o.propensity == pytest.approx(1.0) for o in fast.offers)


def test_decisions_are_logged_in_one_flush_and_responses_change_the_next(shop) -> None:
    decider = Decider(shop, seed=2)
    decisions = [decider.decide(f"u{c}", "web", k=2, explore=0.5, now=NOW) for c in range(8)]
    assert shop.count("decisions") == 0  # not written per decision
    assert decider.flush() == 8
    assert shop.count("decisions") == 8
    logged = shop.sql("SELECT decision_id, rank, offer_id, propensity, features FROM decision_items "
                      "ORDER BY decision_id, rank").fetchall()
    assert len(logged) == sum(len(d.offers) for d in decisions)
    by_id = {(d.decision_id, o.rank): o for d in decisions for o in d.offers}
    for decision_id, rank, offer_id, propensity, features in logged:
        o = by_id[(decision_id, rank)]
        assert (offer_id, propensity) == (o.offer_id, pytest.approx(o.propensity))
        assert len(features) == 5
    # A response goes through the log (flushed first) into the policy, and the next decision sees it.
    d = decider.decide("u0", "web", k=1, explore=0.0, now=NOW)
    top = d.offers[0]
    for _ in range(3):
        assert decider.apply_response(d.decision_id, top.offer_id, "ignore")
    again = decider.decide("u0", "web", k=3, explore=0.0, now=NOW)
    after = {o.offer_id: o.p_mean for o in again.offers}
    assert after.get(top.offer_id, 0.0) < top.p_mean


def test_refusals_and_rules_always_hold_and_unknown_customers_get_popular_offers(shop) -> None:
    decider = Decider(shop, seed=3)
    refused = {"tea", "espresso-2"}
    rng = np.random.default_rng(5)
    for c in range(16):
        d = decider.decide(f"u{c}", str(rng.choice(["email", "web"])), k=4, explore=1.0, now=NOW,
                           refusal=lambda o: "no consent" if o.offer_id in refused else None)
        assert not refused & {o.offer_id for o in d.offers}
        assert {d.ineligible[r] for r in refused} == {"no consent"}
        if c % 4 < 2:  # bought milk: never offered it again, nor the bundle while owning both
            assert "milk" not in {o.offer_id for o in d.offers}
    stranger = decider.decide("somebody-new", "web", k=3, explore=0.0, now=NOW)
    assert stranger.offers and all(o.p_mean > 0 for o in stranger.offers)
    assert "new customer; bought by 50% of customers" in stranger.offers[0].explanation


def test_a_new_offer_is_seen_after_refresh(shop) -> None:
    decider = Decider(shop, seed=4, check_every=3600)
    add_offers(shop, [Offer("mug", "content", "A free mug", 50.0, category="gift", base_rate=0.5)])
    assert "mug" not in {o.offer_id for o in decider.decide("u1", "web", k=5, now=NOW).offers}
    decider.refresh()
    assert decider.decide("u1", "web", k=5, explore=0.0, now=NOW).offers[0].offer_id == "mug"


class _Notes:
    """A rider: rows of a table of its own, written with the decision log (as the API's audit)."""

    def __init__(self, fail: bool = False) -> None:
        self.rows: list[list[str]] = []
        self.fail = fail

    @property
    def pending(self) -> int:
        return len(self.rows)

    def take(self) -> list[list[str]]:
        rows, self.rows = self.rows, []
        return rows

    def write(self, tx, rows) -> None:
        tx.executemany("INSERT INTO notes VALUES (?)", rows)
        if self.fail:
            raise OSError("disk full")

    def give_back(self, rows) -> None:
        self.rows[:0] = rows


def test_riders_are_written_in_the_log_transaction_and_kept_when_it_fails(shop) -> None:
    shop.sql("CREATE TABLE notes (note VARCHAR)")
    decider = Decider(shop, seed=5, check_every=None)
    notes = _Notes(fail=True)
    decider.riders.append(notes)
    for c in range(3):
        notes.rows.append([f"read u{c}"])
        decider.decide(f"u{c}", "web", now=NOW)
    with pytest.raises(OSError, match="disk full"):
        decider.flush()
    # Neither the decisions nor the notes were written; both wait for the next flush.
    assert (shop.count("decisions"), shop.count("notes"), decider.pending, notes.pending) == (0, 0, 3, 3)
    notes.fail = False
    assert decider.flush() == 3
    assert (shop.count("decisions"), shop.count("notes"), decider.pending, notes.pending) == (3, 3, 0, 0)


def test_by_default_every_decision_ranks_by_the_tuned_optimistic_draw(shop) -> None:
    """The Decider's default is the bench's policy (``OPTIMISM`` sd above the mean, a little noise):
    every decision explores, each offer's P(response) used is above its posterior mean (the upper
    bound), and the logged propensities are the shares of draws (above 0, at most 1)."""
    from xrm.customize._bandit import EXPLORATION, OPTIMISM

    decider = Decider(shop, seed=6)
    assert (decider.explore, decider._view.policy.optimism, decider._view.policy.exploration) == (
        1.0, OPTIMISM, EXPLORATION)
    decisions = [decider.decide(f"u{c % 16}", "web", k=3, now=NOW) for c in range(48)]
    for d in decisions:
        assert d.explored and d.offers
        for o in d.offers:
            assert o.p_response > o.p_mean and 0 < o.propensity <= 1
    decider.flush()
    assert shop.sql("SELECT DISTINCT explore, explored FROM decisions").fetchall() == [(1.0, True)]
    # The same customers greedily: the posterior mean, propensity 1.
    greedy = decider.decide("u0", "web", k=3, explore=0.0, now=NOW)
    assert all(o.p_response == o.p_mean and o.propensity == 1.0 for o in greedy.offers)
