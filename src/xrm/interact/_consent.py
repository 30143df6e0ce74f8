"""Consent per channel and purpose: granted, denied, revoked or pending, with source, time,
expiry and proof; derived from `Consent Updated` events and settable through this API.

The consent of (customer, channel, purpose) at time t is the newest entry given at or before t
(on a tie the most restrictive: a refusal, else the earliest expiry); it is *valid* when that
entry is ``granted`` and not expired.

    >>> record_consent(store, "u1", "email", "marketing", "granted", source="web form")  # doctest: +SKIP
    >>> has_consent(store, "u1", "email", "marketing")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb

from xrm.exceptions import InputError
from xrm.interact._clock import utc
from xrm.interact._events import TrackEvent, write_events

__all__ = [
    "CHANNELS",
    "PURPOSES",
    "STATUSES",
    "Consent",
    "consent_eligibility",
    "consent_history",
    "current_consents",
    "has_consent",
    "record_consent",
    "sync_consents",
    "valid_customers",
]

CHANNELS = ("email", "sms", "phone", "post", "push", "webhook")
PURPOSES = ("marketing", "service", "profiling")
STATUSES = ("granted", "denied", "revoked", "pending")
CONSENT_EVENT = "Consent Updated"


@dataclass(frozen=True)
class Consent:
    customer: str
    channel: str
    purpose: str
    status: str
    source: str
    given_at: datetime
    expires_at: datetime | None = None
    proof: dict[str, Any] | None = None
    event_message_id: str | None = None

    def valid_at(self, moment: datetime) -> bool:
        return self.status == "granted" and (self.expires_at is None or self.expires_at > moment)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["given_at"] = self.given_at.isoformat()
        d["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return d


def _check(channel: str, purpose: str, status: str) -> None:
    problems = []
    if channel not in CHANNELS:
        problems.append(f"channel = {channel!r} (expected one of {', '.join(CHANNELS)})")
    if purpose not in PURPOSES:
        problems.append(f"purpose = {purpose!r} (expected one of {', '.join(PURPOSES)})")
    if status not in STATUSES:
        problems.append(f"status = {status!r} (expected one of {', '.join(STATUSES)})")
    if problems:
        raise InputError("consent not recorded: " + "; ".join(problems))


def record_consent(
    store: Any,
    customer: str,
    channel: str,
    purpose: str,
    status: str,
    *,
    source: str,
    at: datetime | None = None,
    expires_at: datetime | None = None,
    proof: dict[str, Any] | None = None,
    cur: duckdb.DuckDBPyConnection | None = None,
) -> Consent:
    """Record a consent change as a `Consent Updated` event and a consent entry, atomically."""
    _check(channel, purpose, status)
    if not source:
        raise InputError("consent not recorded: source is empty; say where it was given")
    consent = Consent(
        customer, channel, purpose, status, source, utc(at),
        utc(expires_at) if expires_at else None, proof,
    )
    event = TrackEvent(
        "Consent Updated",
        customer,
        consent.given_at,
        {
            "channel": channel,
            "purpose": purpose,
            "granted": status == "granted",
            "status": status,
            "source": source,
            "expires_at": consent.expires_at.isoformat() if consent.expires_at else None,
            "proof": proof,
        },
    )
    consent = Consent(**{**asdict(consent), "event_message_id": event.message_id})
    if cur is not None:
        _insert(cur, consent, event)
    else:
        with store.transaction() as tx:
            _insert(tx, consent, event)
    return consent


def _insert(cur: duckdb.DuckDBPyConnection, c: Consent, event: TrackEvent | None) -> None:
    if event is not None:
        write_events(cur, [event])
    cur.execute(
        "INSERT INTO consents (customer, channel, purpose, status, source, given_at, expires_at, "
        "proof, event_message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [c.customer, c.channel, c.purpose, c.status, c.source, c.given_at, c.expires_at,
         json.dumps(c.proof) if c.proof is not None else None, c.event_message_id],
    )


def sync_consents(cur: duckdb.DuckDBPyConnection, customers: Sequence[str] | None = None) -> dict[str, Any]:
    """Turn ingested `Consent Updated` events not yet seen into consent entries.

    Properties: ``channel``, ``purpose``, ``granted`` (bool) and optionally ``status``,
    ``source``, ``expires_at``, ``proof``. ``granted: false`` after a grant is a revocation,
    otherwise a denial. An event that breaks a rule is not a consent (it is reported, not applied).

    ``customers``: only the events of these user ids, read by index (a point look-up whatever the
    store's size, for one customer's page); the default reads every event. A customer's entries
    depend only on its own events and entries, so the result for them is the same either way.
    """
    if customers is None:
        rows = cur.execute(
            """
            SELECT e.message_id, e.user_id, e.ts, e.properties, e.source
            FROM events e
            WHERE e.type = 'track' AND e.event = ? AND e.user_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.event_message_id = e.message_id)
            ORDER BY e.ts, e.message_id
            """,
            [CONSENT_EVENT],
        ).fetchall()
    else:
        rows = _unsynced_of(cur, sorted(set(customers)))
    if not rows:
        return {"added": 0, "rejected": []}
    # The newest status per key so far, to tell a revocation from a denial (one query, not one
    # per event: a first sync of a large store imports thousands).
    last: dict[tuple[str, str, str], str] = {
        (r[0], r[1], r[2]): r[3]
        for r in cur.execute(
            "SELECT customer, channel, purpose, arg_max(status, (given_at, seq)) FROM consents "
            "WHERE customer IN (SELECT unnest(?)) GROUP BY 1, 2, 3",
            [sorted({r[1] for r in rows})],
        ).fetchall()
    }
    new, rejected = [], []
    for message_id, user_id, ts, props_text, source in rows:
        try:
            consent = _from_event(last, message_id, user_id, ts, props_text, source)
        except InputError as exc:
            rejected.append({"message_id": message_id, "reason": str(exc)})
            continue
        last[(consent.customer, consent.channel, consent.purpose)] = consent.status
        new.append(consent)
    if new:
        cur.executemany(
            "INSERT INTO consents (customer, channel, purpose, status, source, given_at, "
            "expires_at, proof, event_message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[c.customer, c.channel, c.purpose, c.status, c.source, c.given_at, c.expires_at,
              json.dumps(c.proof) if c.proof is not None else None, c.event_message_id]
             for c in new],
        )
    return {"added": len(new), "rejected": rejected}


def _unsynced_of(cur: duckdb.DuckDBPyConnection, customers: list[str]) -> list[tuple[Any, ...]]:
    """The customers' consent events without an entry, by index look-ups only (no scan).

    The event name is checked here, not in SQL: a second filter on the scan of ``events`` turns
    DuckDB's look-up by user id (events_user_id) into a read of the whole table."""
    if not customers:
        return []
    mids = [m for m, typ, name in cur.execute(
        "SELECT message_id, type, event FROM events WHERE user_id IN (SELECT unnest(CAST(? AS VARCHAR[])))",
        [customers],
    ).fetchall() if typ == "track" and name == CONSENT_EVENT]
    if not mids:
        return []
    seen = {m for (m,) in cur.execute(
        "SELECT event_message_id FROM consents "
        "WHERE event_message_id IN (SELECT unnest(CAST(? AS VARCHAR[])))",
        [mids],
    ).fetchall()}
    todo = [m for m in mids if m not in seen]
    if not todo:
        return []
    rows: list[tuple[Any, ...]] = cur.execute(
        "SELECT message_id, user_id, ts, properties, source FROM events "
        "WHERE message_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY ts, message_id",
        [todo],
    ).fetchall()
    return rows


def _from_event(
    last: dict[tuple[str, str, str], str], message_id: str, user_id: str, ts: datetime,
    props_text: str | None, source: str | None,
) -> Consent:
    props = json.loads(props_text) if props_text else {}
    where = f"event {message_id} (Consent Updated, user {user_id})"
    if not isinstance(props, dict):
        raise InputError(f"{where}: properties is not an object")
    channel, purpose = props.get("channel"), props.get("purpose")
    status = props.get("status")
    if status is None:
        granted = props.get("granted")
        if not isinstance(granted, bool):
            raise InputError(
                f"{where}: 'granted' = {granted!r} is not true/false; send granted: true or false"
            )
        if granted:
            status = "granted"
        else:
            before = last.get((user_id, str(channel), str(purpose)))
            status = "revoked" if before in ("granted", "pending") else "denied"
    try:
        _check(str(channel), str(purpose), str(status))
    except InputError as exc:
        raise InputError(f"{where}: {str(exc).removeprefix('consent not recorded: ')}") from None
    expires = props.get("expires_at")
    try:
        expires_at = utc(datetime.fromisoformat(expires)) if expires else None
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: 'expires_at' = {expires!r} is not an ISO 8601 time"
        ) from None
    proof = props.get("proof")
    return Consent(
        user_id, str(channel), str(purpose), str(status),
        str(props.get("source") or source or "event"), ts, expires_at,
        {"event": message_id, **(proof if isinstance(proof, dict) else {})},
        message_id,
    )


def _rows_to_consents(rows: Iterable[tuple[Any, ...]]) -> list[Consent]:
    return [
        Consent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else None, r[8])
        for r in rows
    ]


_COLS = "customer, channel, purpose, status, source, given_at, expires_at, proof, event_message_id"


def consent_history(store: Any, customer: str) -> list[Consent]:
    """Every consent entry of ``customer``, oldest first (after importing new consent events)."""
    with store.transaction() as tx:
        sync_consents(tx, [customer])
    rows = store.sql(
        f"SELECT {_COLS} FROM consents WHERE customer = ? ORDER BY given_at, seq", [customer]
    ).fetchall()
    return _rows_to_consents(rows)


def current_consents(
    store: Any, customer: str, at: datetime | None = None
) -> dict[tuple[str, str], Consent]:
    """The consent in force per (channel, purpose) at ``at`` (default now)."""
    moment = utc(at)
    out: dict[tuple[str, str], Consent] = {}
    for c in consent_history(store, customer):
        if c.given_at > moment:
            continue
        key = (c.channel, c.purpose)
        prev = out.get(key)
        # Newest wins; on a tie the most restrictive wins: a refusal, else the earliest expiry
        # (the same rule as valid_customers).
        if prev is None or c.given_at > prev.given_at or (
            c.given_at == prev.given_at and _stricter(c, prev)
        ):
            out[key] = c
    return out


def _stricter(a: Consent, b: Consent) -> bool:
    """Whether ``a`` restricts at least as much as ``b`` (given at the same time)."""
    if (a.status == "granted") != (b.status == "granted"):
        return a.status != "granted"
    if a.status != "granted":
        return True
    if a.expires_at is None:
        return b.expires_at is None
    return b.expires_at is None or a.expires_at <= b.expires_at


def valid_customers(
    cur: duckdb.DuckDBPyConnection,
    customers: Iterable[str],
    channel: str,
    purpose: str,
    at: datetime,
    *,
    customer_key: str = "user_id",
) -> set[str]:
    """Those of ``customers`` holding valid consent for ``channel`` and ``purpose`` at ``at``.

    With ``customer_key="profile_id"`` the customers are Identify profile ids and the consents
    are those given under any user id of the profile: the newest across them all wins, so a
    revocation under one id revokes what another id granted before.
    """
    wanted = sorted(set(customers))
    if not wanted:
        return set()
    if customer_key == "profile_id":
        # Consents are kept under the id they were given with; the identity graph says whose.
        keyed = (
            "SELECT CAST(i.profile_id AS VARCHAR) AS who, c.* FROM consents c "
            "JOIN identifiers i ON i.id_type = 'user_id' AND i.id_value = c.customer "
            "WHERE CAST(i.profile_id AS VARCHAR) IN (SELECT unnest(?))"
        )
    else:
        keyed = "SELECT customer AS who, * FROM consents WHERE customer IN (SELECT unnest(?))"
    rows = cur.execute(
        f"""
        SELECT who FROM (
            SELECT who, status, expires_at,
                   row_number() OVER (PARTITION BY who
                                      ORDER BY given_at DESC, (status = 'granted') ASC,
                                               expires_at ASC NULLS LAST, seq DESC) AS rn
            FROM ({keyed})
            WHERE channel = ? AND purpose = ? AND given_at <= ?
        )
        WHERE rn = 1 AND status = 'granted' AND (expires_at IS NULL OR expires_at > ?)
        """,
        [wanted, channel, purpose, at, at],
    ).fetchall()
    return {r[0] for r in rows}


def has_consent(
    store: Any, customer: str, channel: str, purpose: str, at: datetime | None = None
) -> bool:
    """Whether ``customer`` may be contacted on ``channel`` for ``purpose`` at ``at`` (now)."""
    _check(channel, purpose, "granted")
    with store.transaction() as tx:
        sync_consents(tx, [customer])
        return customer in valid_customers(tx, [customer], channel, purpose, utc(at))


def consent_eligibility(
    store: Any, purpose: str = "marketing", at: datetime | None = None, *, customer_key: str = "user_id"
) -> Callable[[str, Any, str], bool]:
    """An ``eligible(customer, offer, channel)`` hook for Customize's next-best action.

    The purpose is the offer's ``consent_purpose`` when it has one, else ``purpose``. Channels
    that are not consent channels (web, app placements) need no consent and pass. With
    ``customer_key="profile_id"`` the customers are Identify profile ids and consent given
    under any user id of the profile counts (the newest across them wins), as the send-time gate
    judges a profile-keyed campaign's messages; with ``"user_id"`` each user id's own.

        >>> eligible = consent_eligibility(store, customer_key="profile_id")  # doctest: +SKIP
        >>> eligible("17", offer, "email")  # doctest: +SKIP
    """
    if customer_key not in ("user_id", "profile_id"):
        raise InputError(f"customer_key = {customer_key!r}: use 'user_id' or 'profile_id'")
    moment = utc(at)
    # Everyone with a consent entry for the channel and purpose, in the customers' key.
    holders = (
        "SELECT DISTINCT CAST(i.profile_id AS VARCHAR) FROM consents c JOIN identifiers i "
        "ON i.id_type = 'user_id' AND i.id_value = c.customer WHERE c.channel = ? AND c.purpose = ?"
        if customer_key == "profile_id" else
        "SELECT DISTINCT customer FROM consents WHERE channel = ? AND purpose = ?"
    )
    with store.transaction() as tx:
        sync_consents(tx)
    cache: dict[tuple[str, str], set[str]] = {}

    def eligible(customer: str, offer: Any, channel: str) -> bool:
        if channel not in CHANNELS:
            return True
        wanted = getattr(offer, "consent_purpose", None) or (
            offer.get("consent_purpose") if isinstance(offer, dict) else None
        ) or purpose
        key = (channel, wanted)
        if key not in cache:
            cur = store.con.cursor()
            try:
                rows = cur.execute(holders, [channel, wanted]).fetchall()
                cache[key] = valid_customers(
                    cur, [r[0] for r in rows], channel, wanted, moment, customer_key=customer_key
                )
            finally:
                cur.close()
        return customer in cache[key]

    return eligible
