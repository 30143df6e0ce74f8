"""One timeline: every interaction of a profile, newest first, across channels and sources.

What a profile did and what was done with it, from three places: its events (purchases, web and
app, e-mail and SMS responses, call-centre outcomes: everything in ``events``), its consents
(those not already recorded as ``Consent Updated`` events) and its identity history (merges,
splits, unmerges from identify's ``merge_log``). An event belongs to the profile that identify
resolved it to (``event_profiles``); an event not resolved yet belongs to the profile holding its
``userId`` (else its ``anonymousId``).

Pages are keyset-paginated (``next_cursor``): a page never repeats or skips items when new
events arrive meanwhile.

    >>> page = timeline(store, 17, types=["track"], limit=20)  # doctest: +SKIP
    >>> page.items[0].name, page.next_cursor  # doctest: +SKIP
    ('Order Completed', 'WyIyMDI0LTA1LTAxVDEyOjAwOjAwIiwgIm0xIl0')
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xrm.exceptions import InputError, NotFound
from xrm.interact._snapshot import read_snapshot

__all__ = [
    "MAX_TIMELINE_LIMIT",
    "TIMELINE_TYPES",
    "TimelineItem",
    "TimelinePage",
    "active_profile",
    "profile_view",
    "timeline",
]

# What `types` may name: the Segment call types, and the timeline's own kinds of entry.
TIMELINE_TYPES = (
    "identify", "track", "page", "screen", "group", "alias",  # events
    "consent",  # consents not recorded as events
    "merge", "split", "unmerge", "retire",  # identity history
)
MAX_TIMELINE_LIMIT = 500


@dataclass(frozen=True)
class TimelineItem:
    """One entry: ``kind`` is event, consent or identity; ``type`` the call type or action."""

    ts: datetime
    kind: str
    type: str
    name: str | None
    channel: str | None
    source: str | None
    item_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": _iso(self.ts), "kind": self.kind, "type": self.type, "name": self.name,
            "channel": self.channel, "source": self.source, "id": self.item_id, "data": self.data,
        }


@dataclass(frozen=True)
class TimelinePage:
    profile_id: int
    items: list[TimelineItem]
    next_cursor: str | None
    requested_id: int  # differs from profile_id when the requested profile was merged into it

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "requested_id": self.requested_id,
            "items": [i.as_dict() for i in self.items],
            "next_cursor": self.next_cursor,
        }


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="milliseconds") + "Z"


def active_profile(store: Any, profile_id: int) -> int:
    """The profile's id, or the id of the profile it was merged into (followed to the end)."""
    pid, hops = int(profile_id), 0
    while True:
        rows = store.sql(
            "SELECT status, merged_into FROM profiles WHERE profile_id = ?", [pid]
        ).fetchall()
        if not rows:
            if hops:
                return pid
            raise NotFound(
                f"profile {profile_id} does not exist; find a profile by identifier with "
                f"`xrm.identify.lookup_profiles` or GET /v1/profiles?id_type=user_id&id_value=..."
            )
        status, merged_into = rows[0]
        if status != "merged" or merged_into is None or hops > 50:
            return pid
        pid, hops = int(merged_into), hops + 1


def _encode(ts: datetime, item_id: str) -> str:
    raw = json.dumps([ts.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, item_id = json.loads(raw)
        return datetime.fromisoformat(ts), str(item_id)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"cursor {cursor[:60]!r} is not a timeline cursor ({exc}); pass the next_cursor of the "
            f"previous page unchanged, or leave it out for the first page"
        ) from None


# The profile's events and user ids are found first by point look-ups (_person), then passed in as
# lists, on a read_snapshot cursor: each table is read through a single-column index (identifiers,
# event_profiles and consents by profile or customer, events by user or anonymous id), so the time
# does not grow with the store's size. merge_log is scanned (it holds merges only, not one row per
# person). The events are read again by the user and anonymous ids _person looked up (one index path
# per id, the rows' blocks already read), then kept by message id after the read (materialised, so
# that the filter is not pushed into the look-up: two filters make DuckDB scan): a look-up by message
# id is one index path per event, and on a first visit each path is a cold read (20 first-visit
# timelines at 31M events read 610 MB of the store before, 368 MB after). Only the events found by
# neither id (an alias, a merge) are looked up by message id.
_ITEMS = """
WITH eu AS MATERIALIZED (
    SELECT {cols} FROM events e WHERE e.user_id IN (SELECT unnest(CAST($eu AS VARCHAR[])))
),
ea AS MATERIALIZED (
    SELECT {cols} FROM events e WHERE e.anonymous_id IN (SELECT unnest(CAST($ea AS VARCHAR[])))
),
em AS MATERIALIZED (
    SELECT {cols} FROM events e WHERE e.message_id IN (SELECT unnest(CAST($em AS VARCHAR[])))
),
ev AS MATERIALIZED (
    SELECT * FROM eu WHERE message_id IN (SELECT unnest(CAST($keep_u AS VARCHAR[])))
    UNION ALL SELECT * FROM ea WHERE message_id IN (SELECT unnest(CAST($keep_a AS VARCHAR[])))
    UNION ALL SELECT * FROM em
),
-- materialised, so that the page's top-N filter on time is not pushed into this scan (two filters
-- on consents: DuckDB then scans the table instead of using its index on customer)
cons AS MATERIALIZED (
    SELECT * FROM consents WHERE customer IN (SELECT unnest(CAST($uids AS VARCHAR[])))
),
items AS (
    SELECT ts, 'event' AS kind, type, coalesce(event, name) AS name,
        coalesce(properties->>'channel', CASE type WHEN 'page' THEN 'web' WHEN 'screen' THEN 'app' END,
                 context->>'channel') AS channel,
        source, message_id AS item_id, {data} AS data
    FROM ev
    UNION ALL
    SELECT given_at, 'consent', 'consent', status, channel, source, 'consent:' || seq,
        json_object('customer', customer, 'purpose', purpose, 'status', status,
                    'expires_at', expires_at, 'proof', proof)
    FROM cons
    WHERE event_message_id IS NULL OR event_message_id NOT IN (SELECT message_id FROM ev)
    UNION ALL
    SELECT logged_at, 'identity', action, action, NULL, 'identify', 'identity:' || log_id,
        json_object('profile_id', profile_id, 'other_profile_id', other_profile_id,
                    'reason', reason, 'details', details)
    FROM merge_log WHERE profile_id = $pid OR other_profile_id = $pid
)
"""


# The look-ups by list, and what stands in for one whose list is empty: DuckDB reads the whole table
# for `col IN (empty list)` (there is no value to look up), so the filter becomes FALSE (the
# parameter stays, unused, so that the statement takes the same parameters).
_BY_LIST = {
    "eu": "e.user_id IN (SELECT unnest(CAST($eu AS VARCHAR[])))",
    "ea": "e.anonymous_id IN (SELECT unnest(CAST($ea AS VARCHAR[])))",
    "em": "e.message_id IN (SELECT unnest(CAST($em AS VARCHAR[])))",
    "uids": "customer IN (SELECT unnest(CAST($uids AS VARCHAR[])))",
}


# An event's data: all of it, or (brief) what a page's line shows. A brief timeline reads 9 of the
# events' 18 columns (traits and the other identifiers left out): a little less read on a first visit
# (362 vs 368 MB for 20 timelines at 31M events: the index paths and message ids weigh more).
_DATA = {
    False: ("e.*", "json_object('user_id', user_id, 'anonymous_id', anonymous_id, 'properties', properties, "
                   "'traits', traits, 'context', context, 'order_id', order_id, 'revenue', revenue, "
                   "'currency', currency, 'received_at', received_at)"),
    True: ("e.message_id, e.ts, e.type, e.event, e.name, e.source, e.properties, e.context, e.revenue",
           "json_object('properties', properties, 'revenue', revenue)"),
}


def _items(person: dict[str, Any], brief: bool = False) -> str:
    """:data:`_ITEMS` for ``person`` (from :func:`_person`); ``brief``: see :data:`_DATA`."""
    cols, data = _DATA[brief]
    sql = _ITEMS.replace("{cols}", cols).replace("{data}", data)
    for name, lookup in _BY_LIST.items():
        if not person[name]:
            sql = sql.replace(lookup, f"(FALSE AND len(CAST(${name} AS VARCHAR[])) > 0)")
    return sql


def _person(cur: Any, pid: int) -> dict[str, Any]:
    """The profile's user ids, and its events' message ids by the look-up that finds them (the
    parameters of :data:`_ITEMS`), each read by a point look-up.

    Its events: those resolved to it (``event_profiles``), plus the unresolved ones holding one of
    its user ids, or with no user id one of its anonymous ids.
    """
    ids = cur.execute("SELECT id_type, id_value FROM identifiers WHERE profile_id = ?", [pid]).fetchall()
    uids = sorted(v for t, v in ids if t == "user_id")
    aids = sorted(v for t, v in ids if t == "anonymous_id")
    mids = {m for (m,) in cur.execute(
        "SELECT message_id FROM event_profiles WHERE profile_id = ?", [pid]).fetchall()}
    by_user: set[str] = set()
    by_anon: dict[str, Any] = {}
    if uids:
        by_user.update(m for (m,) in cur.execute(
            "SELECT message_id FROM events WHERE user_id IN (SELECT unnest(?))", [uids]).fetchall())
    if aids:
        by_anon.update(cur.execute(
            "SELECT message_id, user_id FROM events WHERE anonymous_id IN (SELECT unnest(?))", [aids]
        ).fetchall())
    # loose: not resolved to it, found by its ids; less those resolved to another profile (on a
    # resolved store there are none, and the look-up by message id, cold 0.1-0.4 s at 31M events, one
    # index path per id, is not made at all)
    loose = (by_user | {m for m, uid in by_anon.items() if uid is None}) - mids
    if loose:
        loose.difference_update(m for (m,) in cur.execute(
            "SELECT message_id FROM event_profiles WHERE message_id IN (SELECT unnest(?))", [sorted(loose)]
        ).fetchall())
    mine = mids | loose
    keep_u = sorted(by_user & mine)
    keep_a = sorted((by_anon.keys() & mine) - by_user)
    return {"pid": pid, "uids": uids, "eu": uids if keep_u else [], "keep_u": keep_u,
            "ea": aids if keep_a else [], "keep_a": keep_a,
            "em": sorted(mine - by_user - by_anon.keys())}


def timeline(
    store: Any,
    profile_id: int,
    *,
    types: Sequence[str] = (),
    channels: Sequence[str] = (),
    events: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    brief: bool = False,
) -> TimelinePage:
    """One page of the profile's timeline, newest first; filters combine with AND.

    ``types``: call types and entry kinds (:data:`TIMELINE_TYPES`); ``events``: event or page
    names (``"Order Completed"``); ``channels``: ``email``, ``web``, ``store`` ...; ``since`` /
    ``until``: UTC times, ``since`` inclusive, ``until`` exclusive. ``brief``: an event's ``data``
    holds only its ``properties`` and ``revenue`` (what a page's line shows; fewer columns read).
    """
    unknown = [t for t in types if t not in TIMELINE_TYPES]
    if unknown:
        raise InputError(
            f"type {unknown[0]!r} is not a timeline type; use one of {', '.join(TIMELINE_TYPES)}"
        )
    if not 1 <= limit <= MAX_TIMELINE_LIMIT:
        raise InputError(f"limit = {limit} is out of range; use 1 to {MAX_TIMELINE_LIMIT}")
    requested = int(profile_id)
    pid = active_profile(store, requested)
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {"pid": pid, "n": limit + 1}
    for name, values, column in (("t", types, "type"), ("c", channels, "channel"), ("e", events, "name")):
        if values:
            where.append(f"{column} IN (SELECT unnest(${name}))")
            params[name] = list(values)
    if since is not None:
        where.append("ts >= $since")
        params["since"] = _naive_utc(since)
    if until is not None:
        where.append("ts < $until")
        params["until"] = _naive_utc(until)
    if cursor:
        c_ts, c_id = _decode(cursor)
        where.append("(ts < $cts OR (ts = $cts AND item_id < $cid))")
        params.update(cts=c_ts, cid=c_id)
    sql = (
        "{items} SELECT ts, kind, type, name, channel, source, item_id, data FROM items "
        f"WHERE {' AND '.join(where)} ORDER BY ts DESC, item_id DESC LIMIT $n"
    )
    with read_snapshot(store) as cur:
        person = _person(cur, pid)
        rows = cur.execute(sql.replace("{items}", _items(person, brief), 1), {**params, **person}).fetchall()
    items = [
        TimelineItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else {})
        for r in rows[:limit]
    ]
    nxt = _encode(items[-1].ts, items[-1].item_id) if len(rows) > limit else None
    return TimelinePage(pid, items, nxt, requested)


def _naive_utc(ts: datetime) -> datetime:
    from datetime import UTC

    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def profile_view(store: Any, profile_id: int) -> dict[str, Any]:
    """The basics of a profile: identifiers, evidence, traits (newest value of each) and counts."""
    requested = int(profile_id)
    pid = active_profile(store, requested)
    (status, created, updated), = store.sql(
        "SELECT status, created_at, updated_at FROM profiles WHERE profile_id = ?", [pid]
    ).fetchall() or [("unknown", None, None)]
    identifiers = [
        {"type": t, "value": v, "first_seen": _iso(f), "last_seen": _iso(last), "n_seen": n}
        for t, v, f, last, n in store.sql(
            "SELECT id_type, id_value, first_seen, last_seen, n_seen FROM identifiers "
            "WHERE profile_id = ? ORDER BY id_type, id_value", [pid]
        ).fetchall()
    ]
    evidence = [
        {"type": t, "value": v, "n_seen": n}
        for t, v, n in store.sql(
            "SELECT id_type, id_value, n_seen FROM profile_evidence WHERE profile_id = ? "
            "ORDER BY id_type, id_value", [pid]
        ).fetchall()
    ]
    with read_snapshot(store) as cur:
        person = _person(cur, pid)
        stats = cur.execute(
            f"{_items(person)} SELECT count(*) FILTER (WHERE kind = 'event'), "
            "min(ts) FILTER (WHERE kind = 'event'), max(ts) FILTER (WHERE kind = 'event'), "
            "list(json_extract(data, '$.traits') ORDER BY ts) FILTER (WHERE type = 'identify') "
            "FROM items",
            person,
        ).fetchall()[0]
    traits: dict[str, Any] = {}
    for t in stats[3] or []:
        got = json.loads(t) if isinstance(t, str) else t
        if isinstance(got, dict):
            traits.update(got)
    return {
        "profile_id": pid,
        "requested_id": requested,
        "status": status,
        "created_at": _iso(created),
        "updated_at": _iso(updated),
        "identifiers": identifiers,
        "evidence": evidence,
        "traits": traits,
        "events": stats[0],
        "first_event_at": _iso(stats[1]),
        "last_event_at": _iso(stats[2]),
    }
