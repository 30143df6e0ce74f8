"""Next-best action: rank a customer's eligible offers by expected value, log it, learn from replies.

    >>> decision = next_best_actions(store, "u-17", channel="email", k=3)        # doctest: +SKIP
    >>> record_response(store, decision.decision_id, decision.offers[0].offer_id, "click")  # doctest: +SKIP

Expected value = P(response) x value - cost.  P(response) comes from the per-offer Bayesian
logistic policy (:mod:`xrm.customize._bandit`) over the customer's features for that offer.  With
probability ``explore`` a decision ranks by the policy's own draw of the scores (an upper
confidence bound in probability with a little Thompson noise: ``OPTIMISM``, ``EXPLORATION``,
``SCALE``, what the bandit bench measures), otherwise by the posterior mean: exploration is
bounded by ``explore``, and every ranked offer is logged with its propensity, P(that offer at
that rank | context), so policies can be evaluated off-line.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson

from xrm.customize._bandit import (
    DECISION_FEATURES,
    EXPLORATION,
    MODEL_NAME,
    OPTIMISM,
    SCALE,
    LogisticThompson,
    _kernels,
    _rows,
)
from xrm.customize._build import repeat_words
from xrm.customize._eligibility import CustomerFacts, EligibilityHook, allow_all, offer_rules_failed
from xrm.customize._offers import Offer, list_offers
from xrm.exceptions import InputError
from xrm.store import Store

__all__ = [
    "OUTCOMES",
    "RESPONSE_EVENTS",
    "Decision",
    "RankedOffer",
    "Ranking",
    "apply_response_events",
    "category_codes",
    "customer_facts",
    "decision_rows",
    "explanation",
    "next_best_actions",
    "rank_many",
    "rank_offers",
    "record_response",
    "write_decisions",
]

OUTCOMES = {"click": 1.0, "purchase": 1.0, "ignore": 0.0}
# Segment-spec track events that carry responses; their properties name decision_id and offer_id.
RESPONSE_EVENTS = {"Offer Clicked": "click", "Offer Purchased": "purchase", "Offer Ignored": "ignore"}
_CURRENCY = {"EUR": "€", "USD": "$", "GBP": "£"}
# Draws per exploring decision: it ranks by the first, and the draws are exchangeable, so the share
# of them that ranks an offer at a rank is that decision's exact propensity given the draws.
_PROPENSITY_DRAWS = 64
_NO_DRAWS = np.zeros((0, 0))  # a never-exploring decision's draws


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
    # Profile ids live in identify's customer_events view (events + profile_id), not in events.
    table = "customer_events" if customer_key == "profile_id" else "events"
    key: Any = int(customer) if customer_key == "profile_id" and str(customer).isdigit() else customer
    rows = store.sql(
        f"""
        SELECT list(DISTINCT coalesce(l.product_id, l.sku)) FILTER (WHERE coalesce(l.product_id, l.sku)
               IS NOT NULL), count(DISTINCT e.message_id)
        FROM {table} e LEFT JOIN order_lines l USING (message_id)
        WHERE e.event = 'Order Completed' AND e.{customer_key} = ?
        """, [key],
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
    policy = LogisticThompson.prior(len(offers), [o.base_rate for o in offers], full=True,
                                    exploration=EXPLORATION, optimism=OPTIMISM, scale=SCALE)
    index = {o.offer_id: j for j, o in enumerate(offers)}
    for offer_id, names, mean, cov, n in store.sql(
        "SELECT offer_id, feature_names, mean, covariance, n_responses FROM bandit_state WHERE model = ?",
        [MODEL_NAME],
    ).fetchall():
        j = index.get(offer_id)
        if j is not None and tuple(names) == DECISION_FEATURES:
            _set_state(policy, j, mean, cov, n)
    return policy


def _set_state(policy: LogisticThompson, j: int, mean: list[float], cov: list[float], n: int) -> None:
    """One offer's stored posterior (``cov`` row-major ``d x d``) into ``policy`` (full covariance)."""
    d = len(mean)
    matrix = np.asarray(cov, dtype=float).reshape(d, d)
    assert policy.covariance is not None
    policy.mean[j], policy.covariance[j], policy.n_responses[j] = mean, matrix, n
    policy.precision[j] = 1.0 / np.diag(matrix)


def category_codes(categories: list[str | None]) -> np.ndarray:
    """Each offer's category as a small integer (-1: none), for :func:`rank_many`."""
    index: dict[str, int] = {}
    return np.array([-1 if c is None else index.setdefault(c, len(index)) for c in categories],
                    dtype=np.int64)


def rank_many(ev: np.ndarray, codes: np.ndarray, k: int, max_per_category: int) -> np.ndarray:
    """The top-k of every row of ``ev`` (draws x offers) at once: ``draws x k`` offer indices, -1 where
    fewer than k offers are worth making.

    Walking one row best first, an offer is taken when its expected value is positive and fewer
    than ``max_per_category`` of its category were taken before it; the walk stops at k.  So an
    offer can only be taken if it is among the best ``max_per_category`` of its category in its
    row: those candidates are found per category (a few small sorts), then the best k of them,
    ties to the lower offer index as in a stable sort of the whole row.
    """
    m, n = ev.shape
    out = np.full((m, k), -1, dtype=np.int64)
    if n == 0:
        return out
    if k == 1:  # the first pick is never held back by its category: each row's best, if positive
        best = np.argmax(ev, axis=1)  # the first of equal maxima, as the stable walk
        return np.where(ev[np.arange(m), best] > 0, best, -1)[:, None]
    if m == 1:  # one row: the walk itself is quicker than the array work
        taken: dict[int, int] = {}
        r = 0
        row = ev[0]
        for j in np.argsort(-row, kind="stable").tolist():
            if row[j] <= 0 or r == k:
                break
            c = int(codes[j])
            if c >= 0:
                if taken.get(c, 0) >= max_per_category:
                    continue
                taken[c] = taken.get(c, 0) + 1
            out[0, r] = j
            r += 1
        return out
    if max_per_category == 1:
        # The best of each category (an offer without one is its own): offers grouped by
        # category, the group maxima by reduceat, the first offer reaching its group's maximum.
        own = np.where(codes >= 0, codes, codes.max(initial=0) + 1 + np.arange(n))
        perm = np.argsort(own, kind="stable")
        sorted_own = own[perm]
        starts = np.flatnonzero(np.concatenate(([True], sorted_own[1:] != sorted_own[:-1])))
        ev_p = ev[:, perm]
        best = np.maximum.reduceat(ev_p, starts, axis=1)
        sizes = np.diff(np.append(starts, n))  # np.r_ costs more than the rest of these together
        at = np.where(ev_p == np.repeat(best, sizes, axis=1), perm, n)
        cand = np.minimum.reduceat(at, starts, axis=1)
        cand_ev = best
    else:
        groups = [np.flatnonzero(codes == c) for c in np.unique(codes[codes >= 0])]
        parts = [np.flatnonzero(codes < 0)[None, :].repeat(m, axis=0)]
        for members in groups:
            if len(members) <= max_per_category:
                parts.append(members[None, :].repeat(m, axis=0))
            else:
                top_q = np.argsort(-ev[:, members], axis=1, kind="stable")[:, :max_per_category]
                parts.append(members[top_q])
        cand = np.concatenate(parts, axis=1)
        cand_ev = np.take_along_axis(ev, cand, axis=1)
    order = np.lexsort((cand, -cand_ev), axis=-1)[:, :k]
    top = np.take_along_axis(cand, order, axis=1)
    ok = np.take_along_axis(cand_ev, order, axis=1) > 0
    out[:, : top.shape[1]] = np.where(ok, top, -1)
    return out


@dataclass
class Ranking:
    """One decision's ranking: offer indices best first, the P(response) used and the propensities."""

    explored: bool
    chosen: list[int]
    p_used: np.ndarray
    p_mean: np.ndarray
    propensity: list[float]


def rank_offers(
    policy: LogisticThompson, x: np.ndarray, value: np.ndarray, cost: np.ndarray, codes: np.ndarray,
    *, k: int, max_per_category: int, explore: float, rng: np.random.Generator,
    draws: int = _PROPENSITY_DRAWS,
) -> Ranking:
    """Rank offers by expected value under the policy, greedy or (with P ``explore``) by the policy's
    draw of the scores (:meth:`LogisticThompson.sample_probability`, as its ``choose``), with each
    chosen offer's propensity P(that offer at that rank | context).

    An exploring decision ranks by the first of ``draws`` draws; the propensity is the share of
    those draws (the one used included, so never 0) that put the offer at that rank, mixed with
    the greedy ranking's weight ``1 - explore``. The random numbers are
    ``rng.random()`` then ``rng.standard_normal((draws, n))``; the rest is one compiled call
    (:func:`xrm.customize._decide_kernels.rank_decision`) that walks each draw as :func:`rank_many`.
    """
    if draws < 1 and explore > 0:
        raise InputError(f"draws = {draws}: an exploring decision needs at least one draw")
    explored = bool(rng.random() < explore)
    z = rng.standard_normal((int(draws), len(policy.mean))) if explore > 0 else _NO_DRAWS
    used, props, p_used, p_mean = _kernels().rank_decision(
        *policy._arrays(), _rows(x), np.asarray(value, dtype=np.float64), np.asarray(cost, dtype=np.float64),
        np.asarray(codes, dtype=np.int64), z, explored, float(policy.optimism), float(policy.exploration),
        float(explore), int(k), int(max_per_category),
    )
    chosen = [j for j in used.tolist() if j >= 0]
    return Ranking(explored, chosen, p_used, p_mean, props[: len(chosen)].tolist())


def explanation(words: str, tier: str | None, offer: Offer, p: float, unit: str) -> str:
    """The reason in words: the customer's own history first, then tier, margin, P(response)."""
    margin = f"margin {offer.value:.2f} {unit}"
    extra = [f"tier {tier}"] if tier else []
    return "; ".join(q for q in (words, *extra, margin, f"P(response) {p:.1%}", f"offer: {offer.name}") if q)


def decision_rows(
    decision: Decision, *, explore: float, k: int, n_offers: int, n_eligible: int,
    inputs: dict[str, Any], features: dict[str, list[float]],
) -> tuple[list[Any], list[list[Any]]]:
    """The ``decisions`` row and the ``decision_items`` rows that log one decision."""
    row = [decision.decision_id, decision.customer, decision.channel, decision.placement,
           decision.decided_at.replace(tzinfo=None), MODEL_NAME, explore, decision.explored, k, n_offers,
           n_eligible, orjson.dumps(inputs).decode()]
    items = [[decision.decision_id, ro.rank, ro.offer_id, ro.p_response, ro.p_mean, ro.value, ro.cost,
              ro.expected_value, ro.propensity, features[ro.offer_id], ro.explanation]
             for ro in decision.offers]
    return row, items


_DECISION_COLUMNS = ("decision_id", "customer", "channel", "placement", "decided_at", "policy", "explore",
                     "explored", "k", "n_offers", "n_eligible", "inputs")
_ITEM_COLUMNS = ("decision_id", "rank", "offer_id", "p_response", "p_mean", "value", "cost",
                 "expected_value", "propensity", "features", "explanation")


def write_decisions(cur: Any, rows: list[list[Any]], items: list[list[Any]]) -> None:
    """Append logged decisions: one Arrow table per table, however many decisions (a prepared
    INSERT per row costs milliseconds each in DuckDB; a group of hundreds costs about as much)."""
    import pyarrow as pa

    for table, columns, data in (("decisions", _DECISION_COLUMNS, rows),
                                 ("decision_items", _ITEM_COLUMNS, items)):
        if not data:
            continue
        arrow = pa.table({c: [r[i] for r in data] for i, c in enumerate(columns)})
        cur.register("__xrm_log", arrow)
        try:
            cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM __xrm_log")
        finally:
            cur.unregister("__xrm_log")


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
    explored = False
    ranked: list[RankedOffer] = []
    x = np.zeros((0, len(DECISION_FEATURES)))
    if offers:
        x, words = _features(store, facts, offers, now)
        policy = _load_policy(store, offers)
        value = np.array([o.value for o in offers])
        cost = np.array([o.cost for o in offers])
        ranking = rank_offers(policy, x, value, cost, category_codes([o.category for o in offers]),
                              k=k, max_per_category=max_per_category, explore=explore, rng=rng)
        explored = ranking.explored
        unit = _CURRENCY.get(store.settings.currency, "") or store.settings.currency
        for r, j in enumerate(ranking.chosen):
            o, p = offers[j], float(ranking.p_used[j])
            ranked.append(RankedOffer(
                rank=r + 1, offer_id=o.offer_id, name=o.name, p_response=p,
                p_mean=float(ranking.p_mean[j]), value=o.value, cost=o.cost,
                expected_value=float(p * o.value - o.cost), propensity=ranking.propensity[r],
                explanation=explanation(words[j], facts.tier, o, p, unit),
            ))
    decision = Decision(decision_id, customer, channel, placement, now, explored, ranked, ineligible)
    index = {o.offer_id: j for j, o in enumerate(offers)}
    inputs = {
        "facts": {"segment": facts.segment, "tier": facts.tier, "n_orders": facts.n_orders,
                  "owned": sorted(facts.owned)[:100]},
        "ineligible": ineligible,
        "feature_names": list(DECISION_FEATURES),
    }
    row, items = decision_rows(
        decision, explore=explore, k=k, n_offers=len(all_offers), n_eligible=len(offers), inputs=inputs,
        features={ro.offer_id: x[index[ro.offer_id]].tolist() for ro in ranked},
    )
    with store.transaction() as tx:
        write_decisions(tx, [row], items)
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
        "SELECT mean, covariance, n_responses FROM bandit_state WHERE offer_id = ? AND model = ?",
        [offer_id, MODEL_NAME],
    ).fetchall()
    rate = [] if state else store.sql(
        "SELECT base_rate FROM offers WHERE offer_id = ?", [offer_id]).fetchall()
    policy = LogisticThompson.prior(1, [rate[0][0] if rate else 0.05], full=True)
    if state:
        _set_state(policy, 0, *state[0])
    policy.update(0, features, reward)
    assert policy.covariance is not None
    when = (at or datetime.now(UTC)).replace(tzinfo=None)
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO responses (response_id, decision_id, offer_id, customer, outcome, reward, "
            "responded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [response_id, decision_id, offer_id, customer, outcome, reward, when],
        )
        tx.execute(
            "INSERT OR REPLACE INTO bandit_state (offer_id, model, feature_names, mean, precision, "
            "n_responses, updated_at, covariance) VALUES (?, ?, ?, ?, ?, ?, current_timestamp, ?)",
            [offer_id, MODEL_NAME, list(DECISION_FEATURES), policy.mean[0].tolist(),
             policy.precision[0].tolist(), int(policy.n_responses[0]), policy.covariance[0].ravel().tolist()],
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
