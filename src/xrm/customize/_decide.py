"""Next-best action: rank a customer's eligible offers by expected value, log it, learn from replies.

    >>> decision = next_best_actions(store, "u-17", channel="email", k=3)        # doctest: +SKIP
    >>> record_response(store, decision.decision_id, decision.offers[0].offer_id, "click")  # doctest: +SKIP

Expected value = P(response) x value - cost.  P(response) comes from the per-offer Bayesian
logistic policy (:mod:`xrm.customize._bandit`) over the customer's features for that offer.  With
probability ``explore`` a decision ranks by a posterior draw (Thompson sampling), otherwise by the
posterior mean: exploration is bounded by ``explore``, and every ranked offer is logged with its
propensity, P(that offer at that rank | context), so policies can be evaluated off-line.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from xrm.customize._bandit import DECISION_FEATURES, MODEL_NAME, LogisticThompson
from xrm.customize._build import repeat_words
from xrm.customize._eligibility import CustomerFacts, EligibilityHook, allow_all, offer_rules_failed
from xrm.customize._offers import Offer, list_offers
from xrm.exceptions import InputError
from xrm.store import Store

__all__ = [
    "OUTCOMES",
    "Decision",
    "RankedOffer",
    "apply_response_events",
    "customer_facts",
    "next_best_actions",
    "record_response",
]

OUTCOMES = {"click": 1.0, "purchase": 1.0, "ignore": 0.0}
# Segment-spec track events that carry responses; their properties name decision_id and offer_id.
RESPONSE_EVENTS = {"Offer Clicked": "click", "Offer Purchased": "purchase", "Offer Ignored": "ignore"}
_CURRENCY = {"EUR": "€", "USD": "$", "GBP": "£"}
_PROPENSITY_DRAWS = 256


@dataclass
class RankedOffer:
    rank: int
    offer_id: str
    name: str
    p_response: float
    p_mean: float
    value: float
    cost: float
    expected_value: float
    propensity: float
    explanation: str


@dataclass
class Decision:
    decision_id: str
    customer: str
    channel: str
    placement: str | None
    decided_at: datetime
    explored: bool
    offers: list[RankedOffer]
    ineligible: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def customer_facts(store: Store, customer: str, *, customer_key: str = "user_id") -> CustomerFacts:
    """What the store knows of a customer: products owned and orders (segment and tier: None yet)."""
    from xrm.customize._baskets import CUSTOMER_KEYS

    if customer_key not in CUSTOMER_KEYS:
        raise InputError(f"customer_key = {customer_key!r}: use one of {', '.join(CUSTOMER_KEYS)}")
    rows = store.sql(
        f"""
        SELECT list(DISTINCT coalesce(l.product_id, l.sku)) FILTER (WHERE coalesce(l.product_id, l.sku)
               IS NOT NULL), count(DISTINCT e.message_id)
        FROM events e LEFT JOIN order_lines l USING (message_id)
        WHERE e.event = 'Order Completed' AND e.{customer_key} = ?
        """, [customer],
    ).fetchall()
    owned, n_orders = rows[0] if rows else (None, 0)
    return CustomerFacts(customer, owned=frozenset(owned or ()), n_orders=int(n_orders or 0))


def _features(store: Store, facts: CustomerFacts, offers: list[Offer], now: datetime) -> tuple[
    np.ndarray, list[str]
]:
    """Feature rows (one per offer, DECISION_FEATURES) and the words behind them."""
    products = sorted({p for o in offers for p in o.product_ids})
    recs: dict[str, tuple[float, str]] = {}
    cycles: dict[str, tuple[str | None, int, float | None, datetime]] = {}
    if products:
        for pid, score, reason in store.sql(
            "SELECT product_id, score, reason FROM recommendations WHERE customer = ? "
            "AND list_contains(?, product_id)", [facts.customer, products],
        ).fetchall():
            recs[pid] = (float(score), str(reason or ""))
        for pid, pname, n, interval, last in store.sql(
            "SELECT product_id, product_name, n_orders, mean_interval_days, last_ts FROM purchase_cycles "
            "WHERE customer = ? AND list_contains(?, product_id)", [facts.customer, products],
        ).fetchall():
            cycles[pid] = (pname, int(n), None if interval is None else float(interval), last)
    naive_now = now.replace(tzinfo=None)
    x = np.zeros((len(offers), len(DECISION_FEATURES)))
    words = []
    for j, o in enumerate(offers):
        affinity, due, said = 0.0, 0.0, []
        for pid in o.product_ids:
            if pid in recs:
                affinity = max(affinity, recs[pid][0])
            if pid in cycles:
                pname, n, interval, last = cycles[pid]
                since = max((naive_now - last).total_seconds() / 86_400, 0.0)
                if interval:
                    due = max(due, min(since / interval, 2.0) / 2.0)
                said.append(repeat_words(pname or pid, n, interval, since))
        if not said:
            said += [recs[p][1] for p in o.product_ids if p in recs and recs[p][1]][:1]
        x[j] = (1.0, affinity, due, float(any(p in facts.owned for p in o.product_ids)),
                float(facts.n_orders == 0))
        words.append("; ".join(said))
    return x, words


def _load_policy(store: Store, offers: list[Offer]) -> LogisticThompson:
    policy = LogisticThompson.prior(len(offers), [o.base_rate for o in offers])
    index = {o.offer_id: j for j, o in enumerate(offers)}
    for offer_id, names, mean, precision, n in store.sql(
        "SELECT offer_id, feature_names, mean, precision, n_responses FROM bandit_state WHERE model = ?",
        [MODEL_NAME],
    ).fetchall():
        j = index.get(offer_id)
        if j is not None and tuple(names) == DECISION_FEATURES:
            policy.mean[j], policy.precision[j], policy.n_responses[j] = mean, precision, n
    return policy


def _rank(ev: np.ndarray, categories: list[str | None], k: int, max_per_category: int) -> list[int]:
    """Offers by expected value, best first, skipping those not worth making and over-represented
    categories (diversity: at most ``max_per_category`` offers of one category in the top-k)."""
    chosen: list[int] = []
    seen: dict[str, int] = {}
    for j in np.argsort(-ev, kind="stable"):
        if ev[j] <= 0 or len(chosen) == k:
            break
        cat = categories[j]
        if cat is not None and seen.get(cat, 0) >= max_per_category:
            continue
        if cat is not None:
            seen[cat] = seen.get(cat, 0) + 1
        chosen.append(int(j))
    return chosen


def next_best_actions(
    store: Store,
    customer: str,
    channel: str,
    *,
    placement: str | None = None,
    k: int = 3,
    eligible: EligibilityHook = allow_all,
    facts: CustomerFacts | None = None,
    explore: float = 0.1,
    max_per_category: int = 1,
    rng: np.random.Generator | None = None,
    now: datetime | None = None,
    customer_key: str = "user_id",
) -> Decision:
    """Rank the eligible offers for one customer on one channel, log the decision, return it.

    ``eligible(customer, offer, channel)`` is the consent and contact-policy hook (Interact's);
    an offer it refuses is never ranked, whatever its value.
    """
    if not 0 <= explore <= 1:
        raise InputError(f"explore = {explore}: must be between 0 (never) and 1 (always)")
    if k < 1:
        raise InputError(f"k = {k}: ask for at least one offer")
    rng = rng or np.random.default_rng()
    now = now or datetime.now(UTC)
    today: date = now.date()
    facts = facts or customer_facts(store, customer, customer_key=customer_key)
    all_offers = list_offers(store)
    ineligible: dict[str, str] = {}
    offers: list[Offer] = []
    for o in all_offers:
        reason = offer_rules_failed(o, facts, channel, today)
        if reason is None and not eligible(customer, o, channel):
            reason = "refused by consent / contact policy"
        if reason:
            ineligible[o.offer_id] = reason
        else:
            offers.append(o)
    decision_id = uuid.uuid4().hex
    explored = bool(rng.random() < explore)
    ranked: list[RankedOffer] = []
    x = np.zeros((0, len(DECISION_FEATURES)))
    if offers:
        x, words = _features(store, facts, offers, now)
        policy = _load_policy(store, offers)
        value = np.array([o.value for o in offers])
        cost = np.array([o.cost for o in offers])
        cats = [o.category for o in offers]
        p_mean = policy.mean_probability(x)
        # Without exploration every draw would be discarded: take one (the logged ranking is greedy).
        draws = policy.sample_probability(x, rng, _PROPENSITY_DRAWS if explore > 0 else 1)
        p_used = draws[0] if explored else p_mean
        chosen = _rank(p_used * value - cost, cats, k, max_per_category)
        # Propensity: (1 - explore) x [same offer at this rank under the mean] + explore x the
        # share of posterior draws (the one used included) that put it there.
        greedy = _rank(p_mean * value - cost, cats, k, max_per_category)
        counts = np.zeros((k, len(offers)))
        for d in draws if explore > 0 else ():
            for r, j in enumerate(_rank(d * value - cost, cats, k, max_per_category)):
                counts[r, j] += 1
        unit = _CURRENCY.get(store.settings.currency, "")
        for r, j in enumerate(chosen):
            o = offers[j]
            same = float(r < len(greedy) and greedy[r] == j)
            prop = (1 - explore) * same + explore * counts[r, j] / len(draws)
            margin = f"margin {o.value:.2f} {unit or store.settings.currency}"
            extra = [f"tier {facts.tier}"] if facts.tier else []
            text = "; ".join(
                p for p in (words[j], *extra, margin, f"P(response) {p_used[j]:.1%}", f"offer: {o.name}") if p
            )
            ranked.append(RankedOffer(
                rank=r + 1, offer_id=o.offer_id, name=o.name, p_response=float(p_used[j]),
                p_mean=float(p_mean[j]), value=o.value, cost=o.cost,
                expected_value=float(p_used[j] * o.value - o.cost), propensity=max(prop, 1e-6),
                explanation=text,
            ))
    decision = Decision(decision_id, customer, channel, placement, now, explored, ranked, ineligible)
    index = {o.offer_id: j for j, o in enumerate(offers)}
    inputs = {
        "facts": {"segment": facts.segment, "tier": facts.tier, "n_orders": facts.n_orders,
                  "owned": sorted(facts.owned)[:100]},
        "ineligible": ineligible,
        "feature_names": list(DECISION_FEATURES),
    }
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [decision_id, customer, channel, placement, now.replace(tzinfo=None), MODEL_NAME, explore,
             explored, k, len(all_offers), len(offers), json.dumps(inputs)],
        )
        if ranked:
            tx.executemany(
                "INSERT INTO decision_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[decision_id, ro.rank, ro.offer_id, ro.p_response, ro.p_mean, ro.value, ro.cost,
                  ro.expected_value, ro.propensity, x[index[ro.offer_id]].tolist(), ro.explanation]
                 for ro in ranked],
            )
    return decision


def record_response(
    store: Store, decision_id: str, offer_id: str, outcome: str, *,
    response_id: str | None = None, at: datetime | None = None,
) -> bool:
    """Log a response to a decided offer and update that offer's policy at once.

    Returns False (and changes nothing) when ``response_id`` was already applied.
    """
    if outcome not in OUTCOMES:
        raise InputError(f"outcome = {outcome!r} is not one of {', '.join(OUTCOMES)}")
    rows = store.sql(
        "SELECT i.features, d.customer FROM decision_items i JOIN decisions d USING (decision_id) "
        "WHERE decision_id = ? AND offer_id = ?", [decision_id, offer_id],
    ).fetchall()
    if not rows:
        raise InputError(
            f"no offer {offer_id!r} in decision {decision_id!r}; a response must name a decision id "
            f"and one of the offers that decision ranked"
        )
    response_id = response_id or uuid.uuid4().hex
    if store.sql("SELECT 1 FROM responses WHERE response_id = ?", [response_id]).fetchall():
        return False
    features, customer = np.asarray(rows[0][0], dtype=float), rows[0][1]
    reward = OUTCOMES[outcome]
    state = store.sql(
        "SELECT mean, precision, n_responses FROM bandit_state WHERE offer_id = ? AND model = ?",
        [offer_id, MODEL_NAME],
    ).fetchall()
    if state:
        policy = LogisticThompson(np.array([state[0][0]]), np.array([state[0][1]]), np.array([state[0][2]]))
    else:
        rate = store.sql("SELECT base_rate FROM offers WHERE offer_id = ?", [offer_id]).fetchall()
        policy = LogisticThompson.prior(1, [rate[0][0] if rate else 0.05])
    policy.update(0, features, reward)
    when = (at or datetime.now(UTC)).replace(tzinfo=None)
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO responses (response_id, decision_id, offer_id, customer, outcome, reward, "
            "responded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [response_id, decision_id, offer_id, customer, outcome, reward, when],
        )
        tx.execute(
            "INSERT OR REPLACE INTO bandit_state VALUES (?, ?, ?, ?, ?, ?, current_timestamp)",
            [offer_id, MODEL_NAME, list(DECISION_FEATURES), policy.mean[0].tolist(),
             policy.precision[0].tolist(), int(policy.n_responses[0])],
        )
    return True


def apply_response_events(store: Store) -> dict[str, int]:
    """Apply response events (``Offer Clicked`` / ``Purchased`` / ``Ignored``) not applied yet."""
    names = list(RESPONSE_EVENTS)
    rows = store.sql(
        """
        SELECT message_id, event, ts, properties->>'decision_id', properties->>'offer_id'
        FROM events
        WHERE type = 'track' AND list_contains(?, event)
          AND message_id NOT IN (SELECT response_id FROM responses)
        ORDER BY ts, message_id
        """, [names],
    ).fetchall()
    applied = skipped = 0
    for message_id, event, ts, decision_id, offer_id in rows:
        if not decision_id or not offer_id:
            skipped += 1
            continue
        try:
            record_response(
                store, decision_id, offer_id, RESPONSE_EVENTS[event], response_id=message_id, at=ts
            )
            applied += 1
        except InputError:
            skipped += 1
    return {"applied": applied, "skipped": skipped}
