"""Newsletter e-mails (`Email Sent`/`Opened`/`Link Clicked`) and `Consent Updated` events.

Campaigns go out every two weeks to a share of the list; each subscriber opens and clicks at a
personal rate.  The e-mail platform knows subscribers by its own id (userId) and their address as
typed on the list (``context.traits.email``).  Consent is recorded per channel and purpose where
it was given: the newsletter form (e-mail), the web-shop sign-up (e-mail service, SMS) and the
loyalty-card form (post, phone).

    >>> email = email_events(rng, beh, keys, params, start_ms, end_ms)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa

from xrm.sample._arrow import event_table, lookup
from xrm.sample._catalogue import PAGES, SITE
from xrm.sample._keys import Keys
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS

__all__ = ["consent_events", "email_events"]

_THEMES = (
    ("Neue Röstung aus Äthiopien", "Frisch geröstet: Sidamo ist da"),
    ("Tee-Zeit", "Ihre Teestunde: 3 neue Sorten"),
    ("Müsli-Mix des Monats", "Mischen Sie Ihr Lieblingsmüsli"),
    ("Frühstücksideen", "5 Ideen für ein besseres Frühstück"),
    ("Barista-Tipps", "So gelingt der perfekte Milchschaum"),
    ("Sommer-Sale", "Bis zu 30 % auf Küchenhelfer"),
    ("Cold Brew Saison", "Kaffee, aber kalt"),
    ("Herbstaromen", "Chai, Zimt und Apfel"),
    ("Adventskalender", "Ihr Kaffeekorb-Adventskalender"),
    ("Neujahrsvorsätze", "Gesund ins neue Jahr: Porridge & Co."),
    ("Treuepunkte", "Ihre Punkte warten auf Sie"),
    ("Fairtrade-Woche", "Fair gehandelt schmeckt besser"),
)
_CTX_ESP = '{"library":{"name":"esp-connector","version":"1.8.0"}'
_CTX_CONSENT = '{"library":{"name":"consent-service","version":"1.2.0"}}'
_CHANNELS = ("email", "sms", "phone", "post")
_PURPOSES = ("marketing", "service")
_CONSENT_PROPS = pa.array(
    [
        json.dumps({"channel": c, "purpose": p, "granted": g})
        for c in _CHANNELS
        for p in _PURPOSES
        for g in (True, False)
    ]
)


def _consent_index(channel: str, purpose: str, granted: np.ndarray) -> np.ndarray:
    base = (_CHANNELS.index(channel) * len(_PURPOSES) + _PURPOSES.index(purpose)) * 2
    return base + (~granted).astype(np.int64)


def _campaigns(start_ms: int, end_ms: int, per_year: float) -> tuple[np.ndarray, pa.Array, pa.Array]:
    count = max(1, math.floor((end_ms - start_ms) / (365.25 * DAY_MS) * per_year))
    step = (end_ms - start_ms) / count
    ts = (start_ms + np.arange(count) * step).astype(np.int64) // DAY_MS * DAY_MS + 8 * 3_600_000
    props, clicks = [], []
    for k in range(count):
        name, subject = _THEMES[k % len(_THEMES)]
        base = {"campaign_id": f"nl-{k + 1:03d}", "campaign_name": name, "email_subject": subject}
        props.append(json.dumps(base, ensure_ascii=False))
        path = PAGES[1 + k % (len(PAGES) - 1)][1]
        clicks.append(json.dumps({**base, "link_url": SITE + path}, ensure_ascii=False))
    return ts, pa.array(props), pa.array(clicks)


def email_events(
    rng: np.random.Generator, keys: Keys, params: SampleParams, start_ms: int, end_ms: int
) -> list[pa.Table]:
    b = params.behaviour
    n = len(keys.account)
    c_ts, c_props, c_clicks = _campaigns(start_ms, end_ms, b.campaigns_per_year)
    # both subscriptions of a person, as one list
    has1 = keys.subscriber != None  # noqa: E711
    has2 = keys.subscriber2 != None  # noqa: E711
    person = np.concatenate((np.flatnonzero(has1), np.flatnonzero(has2)))
    sub_id = np.concatenate((keys.subscriber[has1], keys.subscriber2[has2]))
    email = np.concatenate((keys.subscriber_email[has1], keys.subscriber2_email[has2]))
    optin = np.concatenate((keys.optin_at[has1], keys.optin2_at[has2]))
    optout = np.concatenate((keys.optout_at[has1], np.full(has2.sum(), -1)))
    until = np.where(optout >= 0, optout, end_ms)
    ctx = np.array(
        [_CTX_ESP + ',"traits":' + json.dumps({"email": e.strip()}, ensure_ascii=False) + "}" for e in email],
        dtype=object,
    )
    lo = np.searchsorted(c_ts, optin, side="right")
    hi = np.searchsorted(c_ts, until, side="left")
    counts = np.maximum(hi - lo, 0)
    sub = np.repeat(np.arange(len(person)), counts)
    camp = lo[sub] + (np.arange(len(sub)) - np.repeat(np.cumsum(counts) - counts, counts))
    sent = rng.random(len(sub)) < b.campaign_reach
    sub, camp = sub[sent], camp[sent]
    sent_ts = c_ts[camp] + (rng.random(len(sub)) * 2 * 3_600_000).astype(np.int64) // 1000 * 1000

    open_rate = rng.beta(*b.open_rate, n)[person]
    click_rate = rng.beta(*b.click_rate, n)[person]
    opened = rng.random(len(sub)) < open_rate[sub]
    o_idx = np.flatnonzero(opened)
    open_ts = sent_ts[o_idx] + (rng.exponential(8 * 3_600_000, len(o_idx))).astype(np.int64) // 1000 * 1000
    clicked = rng.random(len(o_idx)) < click_rate[sub[o_idx]]
    c_idx = o_idx[clicked]
    click_ts = open_ts[clicked] + rng.integers(5, 600, len(c_idx)) * 1000
    user = pa.array(sub_id, type=pa.string())
    context = pa.array(ctx, type=pa.string())

    def table(rows: np.ndarray, ts: np.ndarray, event: str, props: pa.Array) -> pa.Table:
        return event_table(rng, np.minimum(ts, end_ms - 1000), type="track", event=event,
                           user_id=lookup(user, sub[rows]), properties=lookup(props, camp[rows]),
                           context=lookup(context, sub[rows]))

    every = np.arange(len(sub))
    return [
        table(every, sent_ts, "Email Sent", c_props),
        table(o_idx, open_ts, "Email Opened", c_props),
        table(c_idx, click_ts, "Email Link Clicked", c_clicks),
    ]


def consent_events(rng: np.random.Generator, keys: Keys, end_ms: int) -> pa.Table:
    """Consent per channel and purpose, each recorded by the system where it was given."""
    n = len(keys.account)
    users: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    props: list[np.ndarray] = []

    def add(who: np.ndarray, ids: np.ndarray, ts: np.ndarray, channel: str, purpose: str,
            granted: np.ndarray) -> None:
        users.append(ids[who])
        stamps.append(ts[who])
        props.append(_consent_index(channel, purpose, granted[who]))

    yes = np.ones(n, dtype=bool)
    sub = keys.subscriber != None  # noqa: E711
    add(np.flatnonzero(sub), keys.subscriber, keys.optin_at, "email", "marketing", yes)
    out = np.flatnonzero(keys.optout_at >= 0)
    add(out, keys.subscriber, keys.optout_at, "email", "marketing", ~yes)
    sub2 = keys.subscriber2 != None  # noqa: E711
    add(np.flatnonzero(sub2), keys.subscriber2, keys.optin2_at, "email", "marketing", yes)
    acc = keys.account != None  # noqa: E711
    add(np.flatnonzero(acc), keys.account, keys.account_at, "email", "service", yes)
    sms = acc & (rng.random(n) < 0.4)
    add(np.flatnonzero(sms), keys.account, keys.account_at + 60_000, "sms", "marketing", rng.random(n) < 0.5)
    card = keys.card != None  # noqa: E711
    add(np.flatnonzero(card), keys.card, keys.card_at, "post", "marketing", rng.random(n) < 0.6)
    phone = card & (rng.random(n) < 0.5)
    add(np.flatnonzero(phone), keys.card, keys.card_at + 60_000, "phone", "marketing", rng.random(n) < 0.3)
    card2 = keys.card2 != None  # noqa: E711
    add(np.flatnonzero(card2), keys.card2, keys.card2_at, "post", "marketing", rng.random(n) < 0.6)
    ts = np.minimum(np.concatenate(stamps), end_ms - 1000)
    return event_table(
        rng, ts, type="track", event="Consent Updated",
        user_id=pa.array(np.concatenate(users), type=pa.string()),
        properties=lookup(_CONSENT_PROPS, np.concatenate(props)),
        context=_CTX_CONSENT,
    )
