"""The fast next-best action for a server: offers, policy and customers' features held in memory.

:func:`~xrm.customize.next_best_actions` reads everything from the store for every decision (the
offers, the customer's orders, recommendations, cycles and the policy: about 84 ms on the
20,000-customer sample, most of it the orders query). A :class:`Decider` reads those once, in a
few set-based queries, and keeps them keyed by customer; a decision is then the offers' own
rules, the caller's consent and contact-policy check (``refusal``, asked per decision and never
cached here), a dictionary look-up and the vectorised ranking: the policy's own draw of the
scores (``LogisticThompson.sample_probability``: an optimistic bound in probability, shrinking
about as 1/sqrt(n), and a little Thompson noise: the bench's tuned policy) on a share
``explore`` of decisions (default all), and the share of 64 such draws as each ranked offer's
propensity. Decisions are logged in
groups (:meth:`Decider.flush`), the same rows ``next_best_actions`` writes.

    >>> decider = Decider(store)                                           # doctest: +SKIP
    >>> decision = decider.decide("17", "email", k=3)                      # doctest: +SKIP
    >>> decider.flush()                                                    # doctest: +SKIP

What is cached and when it is read again: offers, recommendations and purchase cycles when their
stamp changes (checked every ``check_every`` seconds: the batch step rebuilds them; with
``check_every=None`` the owner calls :meth:`refresh`, e.g. on a background thread, so no decision
waits for those queries); the policy when a response was applied through :meth:`apply_response`
(read again at once, on the caller's thread) or its stamp changes. A customer who is not in the
cache (unknown, or new since the last build) gets the new-customer path: affinity is the offer's
popularity (the share of customers who bought its products).

The cache is one immutable view (data, policy) swapped whole, so a refresh on another
thread never shows a decision the new offers with the old policy. Other rows that must be written
with the decision log (the API's audit rows) ride along: :attr:`Decider.riders`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from xrm.customize._bandit import DECISION_FEATURES, LogisticThompson
from xrm.customize._build import repeat_words
from xrm.customize._decide import (
    _CURRENCY,
    Decision,
    RankedOffer,
    _load_policy,
    category_codes,
    decision_rows,
    explanation,
    rank_offers,
    record_response,
    write_decisions,
)
from xrm.customize._eligibility import CustomerFacts, offer_rules_failed
from xrm.customize._offers import Offer, list_offers
from xrm.exceptions import InputError
from xrm.store import Store

__all__ = ["CustomerRow", "Decider", "LogRider", "Refusal"]

# Why an offer may not be made to this customer on this channel now (consent, contact policy),
# or None: asked per decision, per offer.
Refusal = Callable[[Offer], str | None]


@dataclass(frozen=True)
class CustomerRow:
    """What a decision needs of one customer, restricted to the products that offers sell."""

    recs: dict[str, tuple[float, str]]  # product -> (recommender score, reason)
    cycles: dict[str, tuple[str | None, int, float | None, datetime]]  # name, orders, interval, last
    owned: frozenset[str]
    n_orders: int


@dataclass
class _Compiled:
    """The offers as arrays, and every customer's row: replaced whole on refresh, never edited."""

    offers: list[Offer]
    value: np.ndarray
    cost: np.ndarray
    codes: np.ndarray  # category codes (category_codes)
    products: list[str]
    customers: dict[str, CustomerRow]
    popularity: dict[str, float]
    stamp: tuple[Any, ...]


class LogRider(Protocol):
    """Rows of another table written in the same transaction as each flush of the decision log
    (the API's audit rows of decisions): taken under the flush, given back if it fails."""

    @property
    def pending(self) -> int: ...

    def take(self) -> list[Any]: ...

    def write(self, tx: Any, rows: list[Any]) -> None: ...

    def give_back(self, rows: list[Any]) -> None: ...


@dataclass(frozen=True)
class _View:
    """What a decision reads, swapped whole: the compiled data and the policy."""

    data: _Compiled
    policy: LogisticThompson


@dataclass
class _Log:
    rows: list[list[Any]] = field(default_factory=list)
    items: list[list[Any]] = field(default_factory=list)


class Decider:
    """Next-best actions from memory; one per server process (it owns the store)."""

    def __init__(
        self,
        store: Store,
        *,
        customer_key: str | None = None,
        explore: float = 1.0,
        max_per_category: int = 1,
        check_every: float | None = 2.0,
        seed: int | None = None,
    ) -> None:
        if not 0 <= explore <= 1:
            raise InputError(f"explore = {explore}: must be between 0 (never) and 1 (always)")
        self.store = store
        self.explore = explore
        self.max_per_category = max_per_category
        self.check_every = check_every
        self.rng = np.random.default_rng(seed)
        self.customer_key = customer_key or _detect_key(store)
        self.unit = _CURRENCY.get(store.settings.currency, "") or store.settings.currency
        self._log = _Log()
        self._lock = threading.Lock()
        # One flush at a time, swap and write together: a response's flush must not return while
        # another thread's flush still writes the decision it refers to.
        self._flush_lock = threading.Lock()
        self._refresh_lock = threading.Lock()  # one refresh at a time: an older view never wins
        self.riders: list[LogRider] = []
        self._policy_stale = True
        self._checked = 0.0
        data = self._compile()
        self._view = self._with_policy(data)
        self._policy_stale = False
        self._policy_stamp = self._bandit_stamp()
        self._checked = time.monotonic()

    # -- what is cached ------------------------------------------------------------------------

    def _stamp(self) -> tuple[Any, ...]:
        offers = self.store.sql("SELECT count(*), max(updated_at) FROM offers").fetchall()[0]
        recs = self.store.sql("SELECT count(*), max(built_at) FROM recommendations").fetchall()[0]
        return (*offers, *recs)

    def _bandit_stamp(self) -> tuple[Any, ...]:
        return tuple(self.store.sql("SELECT count(*), max(updated_at), sum(n_responses) FROM bandit_state")
                     .fetchall()[0])

    def _compile(self) -> _Compiled:
        stamp = self._stamp()
        offers = list_offers(self.store)
        products = sorted({p for o in offers for p in o.product_ids})
        customers: dict[str, CustomerRow] = {}
        recs: dict[str, dict[str, tuple[float, str]]] = {}
        cycles: dict[str, dict[str, tuple[str | None, int, float | None, datetime]]] = {}
        popularity: dict[str, float] = {}
        if products:
            for c, pid, score, reason in self.store.sql(
                "SELECT customer, product_id, score, reason FROM recommendations "
                "WHERE list_contains(?, product_id)", [products],
            ).fetchall():
                recs.setdefault(c, {})[pid] = (float(score), str(reason or ""))
            for c, pid, pname, n, interval, last in self.store.sql(
                "SELECT customer, product_id, product_name, n_orders, mean_interval_days, last_ts "
                "FROM purchase_cycles WHERE list_contains(?, product_id)", [products],
            ).fetchall():
                cycles.setdefault(c, {})[pid] = (pname, int(n), None if interval is None else float(interval),
                                                 last)
            (buyers,) = self.store.sql("SELECT count(DISTINCT customer) FROM purchase_cycles").fetchall()[0]
            for pid, n in self.store.sql(
                "SELECT product_id, count(DISTINCT customer) FROM purchase_cycles "
                "WHERE list_contains(?, product_id) GROUP BY 1", [products],
            ).fetchall():
                popularity[pid] = n / max(int(buyers), 1)
        events = "customer_events" if self.customer_key == "profile_id" else "events"
        orders = dict(self.store.sql(
            f"SELECT {self.customer_key}, count(DISTINCT message_id) FROM {events} "
            f"WHERE event = 'Order Completed' AND {self.customer_key} IS NOT NULL GROUP BY 1"
        ).fetchall())
        for c in recs.keys() | cycles.keys() | orders.keys():
            own = cycles.get(c, {})
            customers[str(c)] = CustomerRow(recs.get(c, {}), own, frozenset(own), int(orders.get(c, 0)))
        return _Compiled(
            offers, np.array([o.value for o in offers]), np.array([o.cost for o in offers]),
            category_codes([o.category for o in offers]), products, customers, popularity, stamp,
        )

    def refresh(self, *, force: bool = False) -> None:
        """Read offers, features and policy again where their stamps changed (or ``force``)."""
        with self._refresh_lock:
            view = self._view
            if force or self._stamp() != view.data.stamp:
                self._policy_stale = False
                self._policy_stamp = self._bandit_stamp()
                view = self._with_policy(self._compile())
            elif self._policy_stale or self._bandit_stamp() != self._policy_stamp:
                self._policy_stale = False
                self._policy_stamp = self._bandit_stamp()
                view = _View(view.data, _load_policy(self.store, view.data.offers))
            self._view = view
            self._checked = time.monotonic()

    def _with_policy(self, data: _Compiled) -> _View:
        """Read the policy for ``data``'s offers."""
        return _View(data, _load_policy(self.store, data.offers))

    def due(self) -> bool:
        """Whether a refresh is owed: a response was applied, or ``check_every`` has passed."""
        every = 2.0 if self.check_every is None else self.check_every
        return self._policy_stale or time.monotonic() - self._checked > every

    def knows(self, customer: str) -> bool:
        """Whether the customer has a row (orders, recommendations) in the cache."""
        return customer in self._view.data.customers

    @property
    def n_customers(self) -> int:
        return len(self._view.data.customers)

    def warm(self) -> None:
        """Load the compiled ranking and update kernels (numba's import and its on-disk cache, about
        1 s of CPU holding the GIL) now, so a server's first decision does not pay for it. Ranks a
        blank customer with a throwaway generator and updates a copy of the policy: nothing is
        logged or learned."""
        view = self._view
        data, policy = view.data, view.policy
        if not data.offers:
            return
        now = datetime.now(UTC)
        x = self._features(data, None, CustomerFacts(""), list(data.offers), now)
        rng = np.random.default_rng(0)
        for explore in (0.0, 1.0):
            rank_offers(policy, x, data.value, data.cost, data.codes, k=1,
                        max_per_category=self.max_per_category, explore=explore, rng=rng)
        policy.subset(list(range(len(data.offers)))).update(0, x[0], 0.0)

    # -- one decision --------------------------------------------------------------------------

    def decide(
        self,
        customer: str,
        channel: str,
        *,
        placement: str | None = None,
        k: int = 3,
        refusal: Refusal | None = None,
        facts: CustomerFacts | None = None,
        now: datetime | None = None,
        explore: float | None = None,
    ) -> Decision:
        """Rank the eligible offers for ``customer`` on ``channel``; logged at the next flush."""
        if k < 1:
            raise InputError(f"k = {k}: ask for at least one offer")
        explore = self.explore if explore is None else explore
        if self._policy_stale or (
            self.check_every is not None and time.monotonic() - self._checked > self.check_every
        ):
            self.refresh()
        view = self._view
        data, policy = view.data, view.policy
        now = now or datetime.now(UTC)
        row = data.customers.get(customer)
        if facts is None:
            facts = CustomerFacts(customer, owned=row.owned if row else frozenset(),
                                  n_orders=row.n_orders if row else 0)
        today = now.date()
        ineligible: dict[str, str] = {}
        keep: list[int] = []
        for j, o in enumerate(data.offers):
            reason = offer_rules_failed(o, facts, channel, today)
            if reason is None and refusal is not None:
                reason = refusal(o)
            if reason:
                ineligible[o.offer_id] = reason
            else:
                keep.append(j)
        ranked: list[RankedOffer] = []
        explored = False
        features: dict[str, list[float]] = {}
        if keep:
            x = self._features(data, row, facts, [data.offers[j] for j in keep], now)
            every = len(keep) == len(data.offers)
            sub = policy if every else policy.subset(keep)
            ranking = rank_offers(sub, x, data.value[keep], data.cost[keep], data.codes[keep], k=k,
                                  max_per_category=self.max_per_category, explore=explore, rng=self.rng)
            explored = ranking.explored
            for r, i in enumerate(ranking.chosen):
                o, p = data.offers[keep[i]], float(ranking.p_used[i])
                ranked.append(RankedOffer(
                    rank=r + 1, offer_id=o.offer_id, name=o.name, p_response=p,
                    p_mean=float(ranking.p_mean[i]), value=o.value, cost=o.cost,
                    expected_value=p * o.value - o.cost, propensity=ranking.propensity[r],
                    explanation=explanation(self._words(data, row, o, now), facts.tier, o, p, self.unit),
                ))
                features[o.offer_id] = x[i].tolist()
        decision = Decision(uuid.uuid4().hex, customer, channel, placement, now, explored, ranked, ineligible)
        inputs = {
            "facts": {"segment": facts.segment, "tier": facts.tier, "n_orders": facts.n_orders,
                      "owned": sorted(facts.owned)[:100], "known": row is not None},
            "ineligible": ineligible,
            "feature_names": list(DECISION_FEATURES),
        }
        logged, items = decision_rows(decision, explore=explore, k=k, n_offers=len(data.offers),
                                      n_eligible=len(keep), inputs=inputs, features=features)
        with self._lock:
            self._log.rows.append(logged)
            self._log.items.extend(items)
        return decision

    def _features(
        self, data: _Compiled, row: CustomerRow | None, facts: CustomerFacts, offers: list[Offer],
        now: datetime,
    ) -> np.ndarray:
        """Feature rows (DECISION_FEATURES), as ``next_best_actions`` makes them."""
        naive_now = now.replace(tzinfo=None)
        recs = row.recs if row else {}
        cycles = row.cycles if row else {}
        popularity = data.popularity
        new = float(facts.n_orders == 0)
        x = np.zeros((len(offers), len(DECISION_FEATURES)))
        x[:, 0] = 1.0
        x[:, 4] = new
        for j, o in enumerate(offers):
            affinity, due, owned = 0.0, 0.0, 0.0
            for pid in o.product_ids:
                if pid in recs:
                    affinity = max(affinity, recs[pid][0])
                if pid in cycles:
                    interval = cycles[pid][2]
                    if interval:
                        since = max((naive_now - cycles[pid][3]).total_seconds() / 86_400, 0.0)
                        due = max(due, min(since / interval, 2.0) / 2.0)
                if pid in facts.owned:
                    owned = 1.0
            if row is None:
                # New customer: no history of their own, so how many others bought it.
                affinity = max((popularity.get(p, 0.0) for p in o.product_ids), default=0.0)
            x[j, 1], x[j, 2], x[j, 3] = affinity, due, owned
        return x

    def _words(self, data: _Compiled, row: CustomerRow | None, offer: Offer, now: datetime) -> str:
        """The customer's own history behind one offer, in words (only for the offers made)."""
        naive_now = now.replace(tzinfo=None)
        recs = row.recs if row else {}
        cycles = row.cycles if row else {}
        said = []
        for pid in offer.product_ids:
            if pid in cycles:
                pname, n, interval, last = cycles[pid]
                since = max((naive_now - last).total_seconds() / 86_400, 0.0)
                said.append(repeat_words(pname or pid, n, interval, since))
        if not said:
            said += [recs[p][1] for p in offer.product_ids if p in recs and recs[p][1]][:1]
        if row is None:
            share = max((data.popularity.get(p, 0.0) for p in offer.product_ids), default=0.0)
            if share > 0:
                said.append("new customer; bought by " + (f"{share:.0%}" if share >= 0.01 else "under 1%")
                            + " of customers")
        return "; ".join(said)

    # -- the log and responses -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._log.rows)

    def flush(self) -> int:
        """Write the decisions made since the last flush, and the riders' rows, in one
        transaction; returns how many decisions."""
        with self._flush_lock:
            with self._lock:
                log, self._log = self._log, _Log()
            riding = [(r, r.take()) for r in self.riders]
            if not log.rows and not any(rows for _, rows in riding):
                return 0
            try:
                with self.store.transaction() as tx:
                    write_decisions(tx, log.rows, log.items)
                    for rider, rows in riding:
                        if rows:
                            rider.write(tx, rows)
            except Exception:
                with self._lock:  # keep them for the next flush
                    self._log.rows[:0] = log.rows
                    self._log.items[:0] = log.items
                for rider, rows in riding:
                    rider.give_back(rows)
                raise
            return len(log.rows)

    def apply_response(
        self, decision_id: str, offer_id: str, outcome: str, *, response_id: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Apply one response to the policy (after logging pending decisions, which it refers to)."""
        self.flush()
        applied = record_response(self.store, decision_id, offer_id, outcome, response_id=response_id, at=at)
        if applied:
            self._policy_stale = True
            self.refresh()  # here, so the next decision reads the new policy without a query
        return applied


def _detect_key(store: Store) -> str:
    """Which key the batch step built recommendations by: the pipeline's profile ids or user ids."""
    rows = store.sql(
        "SELECT count(*), count(*) FILTER (WHERE customer IN (SELECT CAST(profile_id AS VARCHAR) "
        "FROM profiles)) FROM (SELECT DISTINCT customer FROM recommendations LIMIT 200)"
    ).fetchall()
    n, profiles = rows[0]
    return "profile_id" if n and profiles == n else "user_id"
