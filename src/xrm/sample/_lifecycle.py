"""The cereal-mix subscription (`Subscription Started/Renewed/Cancelled`) and referrals.

Subscriptions churn by the shifted-beta-geometric model (Fader & Hardie 2007, J. Interactive
Marketing 21(1), eq. 1-2): each subscriber has a monthly churn probability θ ~ Beta(α, β) and so
pays for L ~ Geometric(θ) months.  Both event kinds are written as Segment JSON objects (JSONL),
the second file format the loader reads.

    >>> lines, theta = subscription_lines(rng, people, beh, keys, params, end_ms)  # doctest: +SKIP
"""

from __future__ import annotations

import json

import numpy as np

from xrm.sample._arrow import uuid4
from xrm.sample._behaviour import Behaviour
from xrm.sample._catalogue import MIX_COMPONENTS
from xrm.sample._keys import Keys
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS, People, scramble

__all__ = ["MONTH_MS", "iso", "referral_code", "referral_lines", "subscription_lines"]

MONTH_MS = int(30.4375 * DAY_MS)
_CONTEXT = '{"library":{"name":"subscription-service","version":"2.0.4"}}'
_REFERRAL_CONTEXT = '{"library":{"name":"referral-service","version":"1.1.0"}}'
_REASONS = ("zu teuer", "Urlaub", "Geschmack", "zu viel Müsli", "kein Grund angegeben")
_PLAN = "Müsli-Mix Box monatlich"


def iso(ms: np.ndarray) -> list[str]:
    """ISO 8601 UTC timestamps (``2024-05-01T12:00:00.000Z``) for millisecond times."""
    text = np.datetime_as_string(np.asarray(ms, dtype="datetime64[ms]"), unit="ms")
    return [t + "Z" for t in text.tolist()]


def _line(message_id: str, user_id: str, ts: str, event: str, properties: str, context: str) -> str:
    # every value is an id, a number or text from the sample's own lists: no escaping needed
    return (f'{{"messageId":"{message_id}","type":"track","event":"{event}","userId":"{user_id}",'
            f'"timestamp":"{ts}","properties":{properties},"context":{context}}}')


def subscription_lines(
    rng: np.random.Generator,
    people: People,
    beh: Behaviour,
    keys: Keys,
    params: SampleParams,
    end_ms: int,
) -> tuple[list[str], np.ndarray]:
    """JSONL lines of the subscription events, and each person's θ (NaN: never subscribed)."""
    b = params.behaviour
    n = len(people)
    eligible = keys.account != None  # noqa: E711
    subs = np.flatnonzero(eligible & (rng.random(n) < b.subscribe))
    theta = np.full(n, np.nan)
    theta[subs] = rng.beta(b.alpha_sbg, b.beta_sbg, len(subs))
    months = rng.geometric(theta[subs])
    lo = np.maximum(beh.t0[subs], keys.account_at[subs])
    start = lo + (rng.random(len(subs)) * np.maximum(end_ms - 7 * DAY_MS - lo, 0)).astype(np.int64)
    start = start // 1000 * 1000
    mixes = np.argsort(rng.random((len(subs), len(MIX_COMPONENTS))), axis=1)[:, :4]
    reason = rng.integers(0, len(_REASONS), len(subs))
    cancel_early = (rng.uniform(1, 10, len(subs)) * DAY_MS).astype(np.int64) // 1000 * 1000
    ids = scramble(people.gidx[subs], 8)

    # renewals k = 1 .. months-1 that fall before the end; a cancellation if it falls before the end
    renewals = np.clip(np.minimum(months - 1, (end_ms - 1 - start) // MONTH_MS), 0, None)
    cancel = np.maximum(start + months * MONTH_MS - cancel_early, start + 1000)
    cancels = cancel < end_ms
    per = 1 + renewals + cancels
    sub = np.repeat(np.arange(len(subs)), per)
    k = np.arange(len(sub)) - np.repeat(np.cumsum(per) - per, per)  # 0 start, 1.. renewals, last cancel
    is_cancel = cancels[sub] & (k == per[sub] - 1)
    ts = np.where(is_cancel, cancel[sub], start[sub] + k * MONTH_MS)
    stamps = iso(ts)
    message_ids = uuid4(rng, len(sub)).to_pylist()
    price = repr(b.subscription_price)
    started = [
        f'{{"subscription_id":"ABO-{ids[j]:08d}","plan":"{_PLAN}","mix":'
        + json.dumps([MIX_COMPONENTS[c] for c in mixes[j]], ensure_ascii=False, separators=(",", ":"))
        + f',"revenue":{price},"currency":"EUR"}}'
        for j in range(len(subs))
    ]
    lines: list[str] = []
    for e, (j, kk, cancelled) in enumerate(zip(sub.tolist(), k.tolist(), is_cancel.tolist(), strict=True)):
        user = keys.account[subs[j]]
        if kk == 0:
            event, props = "Subscription Started", started[j]
        elif cancelled:
            event = "Subscription Cancelled"
            props = (f'{{"subscription_id":"ABO-{ids[j]:08d}","periods":{int(months[j])},'
                     f'"reason":"{_REASONS[reason[j]]}"}}')
        else:
            event = "Subscription Renewed"
            props = (f'{{"subscription_id":"ABO-{ids[j]:08d}","period":{kk + 1},"revenue":{price},'
                     '"currency":"EUR"}')
        lines.append(_line(message_ids[e], user, stamps[e], event, props, _CONTEXT))
    return lines, theta


def referral_code(gidx: np.ndarray) -> list[str]:
    """The referral codes the given persons hand to friends."""
    return [f"FREUND-{x:06d}" for x in scramble(np.asarray(gidx), 6).tolist()]


def referral_lines(rng: np.random.Generator, people: People, beh: Behaviour, keys: Keys) -> list[str]:
    """`Referral Completed` when a referred friend makes their first purchase."""
    referred = np.flatnonzero(beh.referrer >= 0)
    referrer = beh.referrer[referred]
    ids = uuid4(rng, len(referred)).to_pylist()
    codes = referral_code(people.gidx[referrer])
    stamps = iso(beh.t0[referred] // 1000 * 1000)
    return [
        _line(ids[e], keys.account[i], stamps[e], "Referral Completed",
              f'{{"referrer_user_id":"{keys.account[r]}","referral_code":"{codes[e]}"}}', _REFERRAL_CONTEXT)
        for e, (i, r) in enumerate(zip(referred.tolist(), referrer.tolist(), strict=True))
    ]
