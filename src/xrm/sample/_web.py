"""Devices and anonymous web and app sessions: `page`/`screen` calls, and `identify` on login.

Every person has a browser cookie (an anonymousId); online shoppers may have a second browser
and the app; some households share a family tablet, on which each member logs in.  A session
is anonymous until its visitor logs in: then an `identify` call links the anonymousId to the
web-shop account, and the session's later pages carry the userId too.

    >>> devices = draw_devices(rng, people, keys, params)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from xrm.sample._arrow import event_table, lookup, uuid4
from xrm.sample._behaviour import Behaviour, segment_cumsum
from xrm.sample._catalogue import PAGES, SITE
from xrm.sample._keys import Keys
from xrm.sample._params import SampleParams
from xrm.sample._people import DAY_MS, People

__all__ = ["Devices", "draw_devices", "web_events"]

YEAR_MS = 365.25 * DAY_MS
_PAGE_WEIGHTS = np.array([30, 14, 8, 8, 5, 4, 16, 7, 5, 3], dtype=np.float64)
# page properties, then screen properties, one per entry of PAGES
_PROPS = pa.array(
    [json.dumps({"path": path, "url": SITE + path, "title": f"{name} | Kaffeekorb"}, ensure_ascii=False)
     for name, path, _ in PAGES]
    + [json.dumps({"name": name}, ensure_ascii=False) for name, _, _ in PAGES]
)
_NAMES = pa.array([name for name, _, _ in PAGES])
_CONTEXT = pa.array(
    [
        '{"library":{"name":"analytics.js","version":"4.1.0"},"userAgent":"Mozilla/5.0 (Windows NT 10.0;'
        ' Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36","locale":"de-DE"}',
        '{"library":{"name":"analytics-ios","version":"4.5.0"},"app":{"name":"Kaffeekorb",'
        '"version":"3.2.1"},"device":{"type":"ios"},"locale":"de-DE"}',
        '{"library":{"name":"analytics.js","version":"4.1.0"},"userAgent":"Mozilla/5.0 (iPad; CPU OS 17_5'
        ' like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/604.1",'
        '"locale":"de-DE"}',
    ]
)


@dataclass
class Devices:
    """Each person's own devices (packed left in up to 3 columns) and a shared family tablet."""

    own: np.ndarray  # (n, 3) anonymousIds, None where absent
    own_app: np.ndarray  # (n, 3) bool: the app rather than a browser
    n_own: np.ndarray
    shared: np.ndarray  # (n,) the household's shared tablet, or None
    traits: np.ndarray  # (n,) identify traits JSON, or None for persons without an account


def draw_devices(rng: np.random.Generator, people: People, keys: Keys, params: SampleParams) -> Devices:
    cov = params.coverage
    n = len(people)
    online = keys.account != None  # noqa: E711
    second = online & (rng.random(n) < 0.3)
    app = online & (rng.random(n) < cov.app_user)
    ids = np.array(uuid4(rng, 3 * n).to_pylist(), dtype=object).reshape(n, 3)
    own = np.full((n, 3), None, dtype=object)
    own_app = np.zeros((n, 3), dtype=bool)
    own[:, 0] = ids[:, 0]
    rows = np.arange(n)
    own[second, 1] = ids[second, 1]
    app_col = 1 + second.astype(np.int64)
    own[rows[app], app_col[app]] = ids[app, 2]
    own_app[rows[app], app_col[app]] = True
    n_own = 1 + second + app

    # A family tablet, in households with at least two online shoppers.
    shared = np.full(n, None, dtype=object)
    hh, counts = np.unique(people.household[online], return_counts=True)
    tablet_hh = hh[(counts >= 2) & (rng.random(len(hh)) < cov.shared_device)]
    tablets = np.array(uuid4(rng, len(tablet_hh)).to_pylist(), dtype=object)
    pos = np.searchsorted(tablet_hh, people.household)
    pos = np.minimum(pos, max(len(tablet_hh) - 1, 0))
    has_tablet = online & (len(tablet_hh) > 0)
    if len(tablet_hh):
        has_tablet &= tablet_hh[pos] == people.household
        shared[has_tablet] = tablets[pos[has_tablet]]

    traits = np.full(n, None, dtype=object)
    tell = rng.random(n) < cov.handle_in_profile
    for i in np.flatnonzero(online).tolist():
        t = {"email": people.email[i], "firstName": people.first_name[i], "lastName": people.last_name[i]}
        if people.handle[i] is not None and tell[i]:
            t[people.platform[i]] = people.handle[i]
        traits[i] = json.dumps(t, ensure_ascii=False)
    return Devices(own, own_app, n_own, shared, traits)


def web_events(
    rng: np.random.Generator,
    beh: Behaviour,
    keys: Keys,
    devices: Devices,
    dropout_ms: np.ndarray,
    params: SampleParams,
    start_ms: int,
    end_ms: int,
) -> list[pa.Table]:
    """Sessions of page/screen views, with an `identify` call when the visitor logs in."""
    b = params.behaviour
    n = len(beh.t0)
    online = keys.account != None  # noqa: E711
    begin = np.where(online, keys.account_at, np.maximum(beh.t0 - 60 * DAY_MS, start_ms))
    begin = np.maximum(begin, start_ms)
    # after dropping out, a customer stops visiting within half a year
    fade = dropout_ms + (rng.random(n) * 26 * 7 * DAY_MS).astype(np.int64)
    stop = np.where(dropout_ms >= 0, np.minimum(fade, end_ms), end_ms)
    stop = np.maximum(stop, begin)
    rate = np.where(online, b.sessions_per_year, b.anonymous_sessions_per_year)
    n_sess = rng.poisson(rate * (stop - begin) / YEAR_MS)
    sp = np.repeat(np.arange(n), n_sess)
    s = len(sp)
    s_start = begin[sp] + (rng.random(s) * (stop - begin)[sp]).astype(np.int64)

    has_shared = devices.shared[sp] != None  # noqa: E711
    options = devices.n_own[sp] + has_shared
    pick = (rng.random(s) * options).astype(np.int64)
    on_shared = pick >= devices.n_own[sp]
    col = np.minimum(pick, devices.n_own[sp] - 1)
    # ids are looked up in per-chunk dictionaries (own devices, then tablets; accounts, then
    # second accounts) rather than copied per event
    device_dict = np.concatenate((devices.own.ravel(), devices.shared))
    device = np.where(on_shared, 3 * n + sp, 3 * sp + col)
    kind = np.where(on_shared, 2, devices.own_app[sp, col].astype(np.int64))  # 0 web, 1 app, 2 tablet
    login = online[sp] & (rng.random(s) < b.login_share)
    acc2 = (keys.account2[sp] != None) & (s_start >= keys.account2_at[sp]) & (rng.random(s) < 0.5)  # noqa: E711
    user_dict = np.concatenate((keys.account, keys.account2))
    user = np.where(acc2, n + sp, sp)

    # pages: 1 + Poisson more per session, seconds to minutes apart
    n_pages = 1 + rng.poisson(b.pages_per_session - 1, s)
    ps = np.repeat(np.arange(s), n_pages)
    gap = rng.uniform(5_000, 240_000, len(ps))
    offs = segment_cumsum(gap, n_pages)
    p_ts = np.minimum(s_start[ps] + offs.astype(np.int64), end_ms - 1000) // 1000 * 1000
    page = rng.choice(len(PAGES), size=len(ps), p=_PAGE_WEIGHTS / _PAGE_WEIGHTS.sum())
    p_kind = kind[ps]
    is_screen = (p_kind == 1).astype(np.int64)
    pages = event_table(
        rng,
        p_ts,
        type=lookup(["page", "screen"], is_screen),
        name=lookup(_NAMES, page),
        user_id=lookup(user_dict, user[ps], login[ps]),
        anonymous_id=lookup(device_dict, device[ps]),
        properties=lookup(_PROPS, page + is_screen * len(PAGES)),
        context=lookup(_CONTEXT, p_kind),
    )
    li = np.flatnonzero(login)
    identifies = event_table(
        rng,
        s_start[li] // 1000 * 1000,
        type="identify",
        user_id=lookup(user_dict, user[li]),
        anonymous_id=lookup(device_dict, device[li]),
        traits=pa.array(devices.traits[sp[li]], type=pa.string()),
        context=lookup(_CONTEXT, kind[li]),
    )
    return [identifies, pages]
