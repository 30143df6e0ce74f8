"""The cereal-mix subscription (`Subscription Started/Renewed/Cancelled`) and referrals.

Subscriptions churn by the shifted-beta-geometric model (Fader & Hardie 2007, J. Interactive
Marketing 21(1), eq. 1-2): each subscriber has a monthly churn probability θ ~ Beta(α, β) and so
pays for L ~ Geometric(θ) months.  Both event kinds are written as Segment JSON objects (JSONL),
the second file format the loader reads.

    >>> lines, theta = subscription_lines(rng, people, beh, keys, params, end_ms)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np

from xrm.sample._arrow import uuid4
from xrm.sample._behaviour import Behaviour
from xrm.sample._catalogue import MIX_COMPONENTS
from xrm.sample._keys import Keys
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS, People, scramble

__all__ = ["MONTH_MS", "iso", "referral_code", "referral_lines", "subscription_lines"]

MONTH_MS = int(30.4375 * DAY_MS)
_CONTEXT = {"library": {"name": "subscription-service", "version": "2.0.4"}}
_REFERRAL_CONTEXT = {"library": {"name": "referral-service", "version": "1.1.0"}}
_REASONS = ("zu teuer", "Urlaub", "Geschmack", "zu viel Müsli", "kein Grund angegeben")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _line(message_id: str, user_id: str, ms: int, event: str, properties: dict[str, object],
          context: Mapping[str, object] = _CONTEXT) -> str:
    obj = {
        "messageId": message_id, "type": "track", "event": event, "userId": user_id,
        "timestamp": iso(ms), "properties": properties, "context": context,
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


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
    n_events = 2 + np.minimum(months, (end_ms - start) // MONTH_MS + 1)
    message_ids = iter(uuid4(rng, int(n_events.sum())).to_pylist())
    price = b.subscription_price
    lines: list[str] = []
    for j, i in enumerate(subs):
        user = keys.account[i]
        sid = f"ABO-{ids[j]:08d}"
        mix = [MIX_COMPONENTS[c] for c in mixes[j]]
        lines.append(_line(next(message_ids), user, int(start[j]), "Subscription Started", {
            "subscription_id": sid, "plan": "Müsli-Mix Box monatlich", "mix": mix,
            "revenue": price, "currency": "EUR"}))
        for k in range(1, int(months[j])):
            ts = int(start[j]) + k * MONTH_MS
            if ts >= end_ms:
                break
            lines.append(_line(next(message_ids), user, ts, "Subscription Renewed", {
                "subscription_id": sid, "period": k + 1, "revenue": price, "currency": "EUR"}))
        cancel = int(start[j]) + int(months[j]) * MONTH_MS - int(cancel_early[j])
        if cancel < end_ms:
            lines.append(_line(next(message_ids), user, max(cancel, int(start[j]) + 1000),
                               "Subscription Cancelled", {
                "subscription_id": sid, "periods": int(months[j]), "reason": _REASONS[reason[j]]}))
    return lines, theta


def referral_code(gidx: int) -> str:
    """The referral code a person hands to friends."""
    return f"FREUND-{int(scramble(np.array([gidx]), 6)[0]):06d}"


def referral_lines(rng: np.random.Generator, people: People, beh: Behaviour, keys: Keys) -> list[str]:
    """`Referral Completed` when a referred friend makes their first purchase."""
    referred = np.flatnonzero(beh.referrer >= 0)
    ids = iter(uuid4(rng, len(referred)).to_pylist())
    lines = []
    for i in referred:
        r = beh.referrer[i]
        code = referral_code(int(people.gidx[r]))
        lines.append(_line(next(ids), keys.account[i], int(beh.t0[i]) // 1000 * 1000, "Referral Completed", {
            "referrer_user_id": keys.account[r], "referral_code": code}, _REFERRAL_CONTEXT))
    return lines
