"""Which source systems know each person, under which keys, since when.

A person who shops online has a web-shop account (a few have two); one who shops in a store has
a loyalty card (a few lost one and got another); some are on the newsletter list (a few twice,
under another address) and some have called the call centre.  Ids are scrambled global counters
so they look random and never collide.

    >>> keys = assign_keys(rng, people, beh, params, start_ms, end_ms)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrm.sample._behaviour import Behaviour
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS, NULL, People, scramble

__all__ = ["Keys", "assign_keys"]

NONE = -1


@dataclass
class Keys:
    """Per-person keys in each source (None where absent) and when each came to be (ms)."""

    account: np.ndarray
    account_at: np.ndarray
    account2: np.ndarray
    account2_at: np.ndarray
    card: np.ndarray
    card_at: np.ndarray
    card2: np.ndarray
    card2_at: np.ndarray
    subscriber: np.ndarray
    subscriber_email: np.ndarray  # the address as typed on the list
    optin_at: np.ndarray
    optout_at: np.ndarray  # unsubscribed at, or -1
    subscriber2: np.ndarray
    subscriber2_email: np.ndarray
    optin2_at: np.ndarray
    crm: np.ndarray
    crm_at: np.ndarray


def _ids(prefix: str, numbers: np.ndarray, width: int, present: np.ndarray) -> np.ndarray:
    out = np.full(len(numbers), None, dtype=object)
    for i in np.flatnonzero(present).tolist():
        out[i] = f"{prefix}{numbers[i]:0{width}d}"
    return out


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(len(lo)) * np.maximum(hi - lo, 0)).astype(np.int64) // 1000 * 1000


def assign_keys(
    rng: np.random.Generator,
    people: People,
    beh: Behaviour,
    params: SampleParams,
    start_ms: int,
    end_ms: int,
) -> Keys:
    cov, b = params.coverage, params.behaviour
    n = len(people)
    g = people.gidx
    online = beh.online_share > 0
    store = beh.online_share < 1
    # accounts are opened shortly before the first online order; cards at the first store visit
    before = beh.t0 - (rng.random(n) * 30 * DAY_MS).astype(np.int64)
    before = before // 1000 * 1000
    acc2 = online & (rng.random(n) < cov.second_account)
    card2 = store & (rng.random(n) < cov.second_card)
    u = rng.random(n)
    news = np.where(online, u < cov.newsletter_online, u < cov.newsletter_store_only)
    news2 = news & (rng.random(n) < cov.second_newsletter)
    crm = rng.random(n) < cov.crm

    optin = _between(rng, before, np.full(n, end_ms - 30 * DAY_MS))
    optout = np.where(
        news & (rng.random(n) < b.unsubscribe), _between(rng, optin, np.full(n, end_ms)), NONE
    )
    family = people.family_email
    use_family = news & (family != None) & (rng.random(n) < params.noise.family_email)  # noqa: E711
    sub_email = np.where(news, np.where(use_family, family, people.email), NULL)
    sub2_email = np.where(news2, people.alt_email, NULL)

    return Keys(
        account=_ids("KD", scramble(2 * g, 8), 8, online),
        account_at=before,
        account2=_ids("KD", scramble(2 * g + 1, 8), 8, acc2),
        account2_at=_between(rng, beh.t0, np.full(n, end_ms)),
        card=_ids("2400", scramble(2 * g, 9), 9, store),
        card_at=before,
        card2=_ids("2400", scramble(2 * g + 1, 9), 9, card2),
        card2_at=_between(rng, beh.t0, np.full(n, end_ms)),
        subscriber=_ids("NL", scramble(2 * g, 9), 9, news),
        subscriber_email=sub_email,
        optin_at=optin,
        optout_at=optout,
        subscriber2=_ids("NL", scramble(2 * g + 1, 9), 9, news2),
        subscriber2_email=sub2_email,
        optin2_at=_between(rng, optin, np.full(n, end_ms - 7 * DAY_MS)),
        crm=_ids("CRM-", scramble(g, 8), 8, crm),
        crm_at=_between(rng, np.maximum(before, start_ms), np.full(n, end_ms)),
    )
