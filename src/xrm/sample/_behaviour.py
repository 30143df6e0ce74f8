"""Each person's buying behaviour: acquisition, BG/NBD purchases, Gamma-Gamma spend, channel.

The purchase process is the BG/NBD story (Fader, Hardie & Lee 2005, Marketing Science 24(2),
§2, assumptions i-v): after the first purchase at ``t0`` a customer buys at Poisson rate λ while
alive, and after each repeat purchase drops out with probability p.  Drawn directly, without a
loop over purchases: with N ~ Poisson(λT) potential purchases in (0, T] and D ~ Geometric(p) the
purchase after which the customer would drop out, the customer makes n = min(N, D) repeat
purchases, at the first n order statistics of N uniform points on (0, T].  Those are
T·S_k / (S_n + G) with S_k the partial sums of n unit exponentials and G ~ Gamma(N + 1 - n), the
spacing representation of uniform order statistics.

    >>> beh = draw_behaviour(rng, people, params, start_ms, end_ms)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrm.sample._catalogue import CATEGORIES, PRODUCTS
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS, People

__all__ = ["WEEK_MS", "Behaviour", "Orders", "draw_behaviour", "draw_orders", "segment_cumsum"]

WEEK_MS = 7 * DAY_MS
_PRICES = np.array([round(p[3] * 100) for p in PRODUCTS], dtype=np.int64)
_PRODUCT_CAT = np.array([p[2] for p in PRODUCTS])


@dataclass
class Behaviour:
    """Per-person drawn parameters (ground truth) of one chunk."""

    t0: np.ndarray  # first purchase (acquisition), ms since epoch
    lam: np.ndarray  # purchases per week while alive
    p: np.ndarray  # dropout probability after each repeat purchase
    nu: np.ndarray  # Gamma-Gamma scale parameter; mean spend = p_gg / nu
    spend_mean: np.ndarray  # EUR per order
    online_share: np.ndarray  # P(an order is placed online)
    affinity: np.ndarray  # (n, categories) preference shares
    referrer: np.ndarray  # local index of the person who referred them, or -1


@dataclass
class Orders:
    """All orders of one chunk (first and repeat purchases) and their lines."""

    person: np.ndarray  # local person index
    ts: np.ndarray  # ms
    repeat: np.ndarray  # bool: a repeat purchase (not the first)
    online: np.ndarray  # bool
    revenue_cents: np.ndarray
    line_order: np.ndarray  # per line: order index
    line_product: np.ndarray
    line_qty: np.ndarray
    n_repeat: np.ndarray  # per person: repeat purchases within the window
    first_ms: np.ndarray  # per person: time of the first order as recorded
    dropout_ms: np.ndarray  # per person: time of dropping out, or -1 if alive at the end


def draw_behaviour(
    rng: np.random.Generator, people: People, params: SampleParams, start_ms: int, end_ms: int
) -> Behaviour:
    b, cov = params.behaviour, params.coverage
    n = len(people)
    span = end_ms - start_ms
    t0 = start_ms + (rng.random(n) * b.acquisition_share * span).astype(np.int64)
    lam = rng.gamma(b.r, 1.0 / b.alpha, n)
    p = rng.beta(b.a, b.b, n)
    nu = rng.gamma(b.q_gg, 1.0 / b.gamma_gg, n)
    u = rng.random(n)
    online_share = np.where(
        u < cov.online_only, 1.0, np.where(u < cov.online_only + cov.store_only, 0.0, rng.beta(2, 2, n))
    )
    affinity = rng.dirichlet([2.0, 1.2, 1.0, 0.6][: len(CATEGORIES)], n)

    # Referrals: an online shopper brings a friend, whose first purchase follows the referral.
    referrer = np.full(n, -1, dtype=np.int64)
    online = np.flatnonzero(online_share > 0)
    if len(online) > 1:
        referred = online[rng.random(len(online)) < cov.referred]
        ref = online[rng.integers(0, len(online), len(referred))]
        ok = ref != referred
        referred, ref = referred[ok], ref[ok]
        new_t0 = t0[ref] + (rng.uniform(1, 60, len(ref)) * DAY_MS).astype(np.int64)
        fits = new_t0 < start_ms + b.acquisition_share * span
        referred, ref, new_t0 = referred[fits], ref[fits], new_t0[fits]
        # a person is referred once; a referrer must not be referred later than the friend
        referred, first = np.unique(referred, return_index=True)
        ref, new_t0 = ref[first], new_t0[first]
        t0[referred] = np.maximum(t0[referred], new_t0)
        referrer[referred] = ref
    return Behaviour(t0, lam, p, nu, b.p_gg / nu, online_share, affinity, referrer)


def segment_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running sums that restart at each segment (``counts`` values per segment)."""
    total = np.cumsum(values)
    ends = np.cumsum(counts)
    before = np.concatenate(([0.0], total))[ends - counts]
    return total - np.repeat(before, counts)


def draw_orders(
    rng: np.random.Generator, beh: Behaviour, params: SampleParams, end_ms: int
) -> Orders:
    """The BG/NBD purchase times, Gamma-Gamma order values and the products in each order."""
    b = params.behaviour
    n = len(beh.t0)
    T = (end_ms - beh.t0) / WEEK_MS
    N = rng.poisson(beh.lam * T)
    D = rng.geometric(beh.p)
    k = np.minimum(N, D)
    gaps = rng.exponential(1.0, int(k.sum()))
    s_k = segment_cumsum(gaps, k)
    s_n = np.zeros(n)
    has = k > 0
    s_n[has] = s_k[np.cumsum(k)[has] - 1]
    rest = rng.gamma(np.maximum(N + 1 - k, 1), 1.0)
    scale = np.repeat(T / (s_n + rest), k)
    rep_person = np.repeat(np.arange(n), k)
    rep_ts = beh.t0[rep_person] + (s_k * scale * WEEK_MS).astype(np.int64)
    dropped = (D <= N) & has

    person = np.concatenate((np.arange(n), rep_person))
    ts = np.concatenate((beh.t0, rep_ts))
    repeat = np.concatenate((np.zeros(n, bool), np.ones(len(rep_ts), bool)))
    order = np.lexsort((ts, person))
    person, ts, repeat = person[order], ts[order], repeat[order]
    m = len(person)
    online = rng.random(m) < beh.online_share[person]
    # store orders happen in opening hours (08:00-20:00 UTC is near enough)
    day = ts // DAY_MS * DAY_MS
    ts = np.where(online, ts, day + (8 * 3_600_000 + rng.random(m) * 12 * 3_600_000).astype(np.int64))
    ts = np.minimum(ts, end_ms - 1000) // 1000 * 1000
    # ground truth uses the recorded times: first order, and the last one for those who dropped out
    first_ms = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_ms, person, ts)
    last_ms = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_ms, person, ts)
    dropout = np.where(dropped, last_ms, -1)

    # Gamma-Gamma order value, then products that add up to about that value.
    z = rng.gamma(b.p_gg, 1.0 / beh.nu[person]) * 100  # cents
    n_lines = 1 + np.minimum(rng.poisson(z / 3000.0), 5)
    line_order = np.repeat(np.arange(m), n_lines)
    target = np.repeat(z / n_lines, n_lines)
    cum_aff = np.cumsum(beh.affinity, axis=1)[person[line_order]]
    cat = (rng.random(len(line_order))[:, None] > cum_aff).sum(axis=1)
    cat = np.minimum(cat, len(CATEGORIES) - 1)
    product = np.empty(len(line_order), dtype=np.int64)
    u = rng.random(len(line_order))
    for c in range(len(CATEGORIES)):
        ids = np.flatnonzero(c == _PRODUCT_CAT)
        ids = ids[np.argsort(_PRICES[ids], kind="stable")]
        rows = np.flatnonzero(cat == c)
        affordable = np.searchsorted(_PRICES[ids], target[rows] * 1.3, side="right")
        affordable = np.maximum(affordable, 1)
        product[rows] = ids[(u[rows] * affordable).astype(np.int64)]
    qty = np.clip(np.round(target / _PRICES[product]), 1, 6).astype(np.int64)
    revenue = np.bincount(line_order, weights=_PRICES[product] * qty, minlength=m).astype(np.int64)
    return Orders(person, ts, repeat, online, revenue, line_order, product, qty, k, first_ms, dropout)
