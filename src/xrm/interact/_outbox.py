"""The outbox worker: sends queued messages through their channels, exactly once per message.

Each message goes ``queued -> sending -> sent``. ``sending`` is committed, with a fresh attempt
id, *before* the transport is called and ``sent`` right after it answers, so a worker killed in
between leaves the message ``sending``: the next run sends it again with the same Message-ID /
Idempotency-Key (only the one message that was in flight can reach a receiver twice, and the
receiver can drop it by that key). Every message passes the permission gate at send time.

    >>> report = deliver_outbox(store, default_channels(store.settings))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from xrm.exceptions import InputError
from xrm.interact._channels import Channel, Outbound, SendResult
from xrm.interact._clock import utc
from xrm.interact._events import CHANNEL_LABEL, TrackEvent, event_id, write_events
from xrm.interact._gate import Candidate, permission
from xrm.interact._policy import ContactPolicy
from xrm.interact._tracking import links_for

__all__ = ["DeliveryReport", "deliver_outbox"]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    bounced: int = 0
    blocked: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    in_doubt: int = 0  # found `sending` from a killed worker: sent again with the same id
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def backoff(attempt: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff: base, 2 base, 4 base ... at most ``cap``."""
    return min(base * (2 ** max(attempt - 1, 0)), cap)


def deliver_outbox(
    store: Any,
    channels: Mapping[str, Channel],
    *,
    now: datetime | Callable[[], datetime] | None = None,
    batch_size: int = 200,
    max_attempts: int = 6,
    backoff_base: timedelta = timedelta(minutes=1),
    backoff_cap: timedelta = timedelta(hours=6),
    limit: int | None = None,
    policy: ContactPolicy | None = None,
    pause: float = 0.0,
) -> DeliveryReport:
    """Send every due message (``not_before <= now``) on the given channels; returns counts.

    ``now`` is a fixed time or a clock (tests); ``pause`` waits between sends (provider rate
    limits); ``limit`` stops after that many sends.
    """
    clock: Callable[[], datetime]
    if callable(now):
        clock = now
    elif now is None:
        clock = utc
    else:
        fixed = utc(now)
        clock = lambda: fixed  # noqa: E731
    policy = policy or ContactPolicy(default_timezone=store.settings.default_timezone)
    report = DeliveryReport()
    start = time.perf_counter()
    names = sorted(channels)
    if not names:
        raise InputError("deliver_outbox: no channels given; pass default_channels(settings)")
    in_doubt = store.sql(
        "SELECT count(*) FROM messages WHERE status = 'sending' AND channel IN (SELECT unnest(?))",
        [names],
    ).fetchall()[0][0]
    report.in_doubt = int(in_doubt)
    opened: set[str] = set()
    try:
        while limit is None or report.sent < limit:
            at = utc(clock())
            room = batch_size if limit is None else min(batch_size, limit - report.sent)
            batch, seen = _claim(store, names, at, room, policy, report)
            if not seen:
                break
            for m in batch:
                channel = channels[m.channel]
                if m.channel not in opened:
                    channel.transport.open()
                    opened.add(m.channel)
                result = channel.transport.send(m)
                _finish(store, m, result, utc(clock()), max_attempts, backoff_base, backoff_cap,
                        report)
                if pause:
                    time.sleep(pause)
    finally:
        for name in opened:
            channels[name].transport.close()
        report.seconds = time.perf_counter() - start
    return report


_COLS = (
    "message_id, customer, channel, purpose, address, subject, body_text, body_html, fields, "
    "attempts, campaign_id, timezone, customer_key"
)


def _claim(
    store: Any, names: list[str], at: datetime, batch_size: int, policy: ContactPolicy,
    report: DeliveryReport,
) -> tuple[list[Outbound], int]:
    """Pick due messages, check each at the gate, and mark the allowed ones `sending`."""
    claimed: list[Outbound] = []
    with store.transaction() as tx:
        rows = tx.execute(
            f"SELECT {_COLS} FROM messages WHERE status IN ('queued', 'retry', 'sending') "
            "AND not_before <= ? AND channel IN (SELECT unnest(?)) "
            "ORDER BY not_before, created_at, message_id LIMIT ?",
            [at, names, batch_size],
        ).fetchall()
        if not rows:
            return [], 0
        verdicts = permission(
            tx, [Candidate(r[0], r[1], r[2], r[3], r[4], r[12] or "user_id") for r in rows], at,
            region=store.settings.default_region,
        )
        for r in rows:
            (mid, customer, channel, purpose, address, subject, text, html, fields, attempts,
             campaign_id, tz, _) = r
            verdict = verdicts[mid]
            if verdict != "ok":
                tx.execute(
                    "UPDATE messages SET status = 'blocked', last_error = ? WHERE message_id = ?",
                    [f"{verdict} at send time {at.isoformat()}", mid],
                )
                report.blocked[verdict] = report.blocked.get(verdict, 0) + 1
                continue
            if not (purpose == "service" and policy.service_exempt):
                allowed = policy.next_allowed(at, tz, channel)
                if allowed > at:
                    tx.execute("UPDATE messages SET not_before = ? WHERE message_id = ?",
                               [allowed, mid])
                    report.deferred += 1
                    continue
            attempt_id = uuid.uuid4().hex
            tx.execute(
                "UPDATE messages SET status = 'sending', attempt_id = ?, attempts = attempts + 1 "
                "WHERE message_id = ?",
                [attempt_id, mid],
            )
            tx.execute(
                "UPDATE delivery_attempts SET outcome = 'unknown', "
                "detail = 'worker stopped before the outcome was stored' "
                "WHERE message_id = ? AND outcome IS NULL",
                [mid],
            )
            tx.execute(
                "INSERT INTO delivery_attempts (attempt_id, message_id, attempt, started_at) "
                "VALUES (?, ?, ?, ?)",
                [attempt_id, mid, attempts + 1, at],
            )
            headers = {"X-Xrm-Message-Id": mid}
            if channel == "email":
                links = links_for(store.settings, mid, customer, channel, purpose, campaign_id, at)
                headers.update(links.list_unsubscribe_headers())
            claimed.append(Outbound(
                mid, customer, channel, purpose, address, subject, text, html,
                json.loads(fields) if fields else {}, headers, attempts + 1,
            ))
    return claimed, len(rows)


def _finish(
    store: Any, m: Outbound, result: SendResult, at: datetime, max_attempts: int,
    base: timedelta, cap: timedelta, report: DeliveryReport,
) -> None:
    status = result.status
    if status == "retry" and m.attempt >= max_attempts:
        status = "failed"
    with store.transaction() as tx:
        if status == "sent":
            tx.execute(
                "UPDATE messages SET status = 'sent', sent_at = ?, last_error = NULL "
                "WHERE message_id = ?",
                [at, m.message_id],
            )
            report.sent += 1
        elif status == "retry":
            tx.execute(
                "UPDATE messages SET status = 'retry', not_before = ?, last_error = ? "
                "WHERE message_id = ?",
                [at + backoff(m.attempt, base, cap), result.detail, m.message_id],
            )
            report.retried += 1
        else:
            tx.execute(
                "UPDATE messages SET status = ?, last_error = ? WHERE message_id = ?",
                [status, result.detail, m.message_id],
            )
            if status == "bounced":
                report.bounced += 1
            else:
                report.failed += 1
        tx.execute(
            "UPDATE delivery_attempts SET finished_at = ?, outcome = ?, detail = ? "
            "WHERE message_id = ? AND attempt = ?",
            [at, status, result.detail, m.message_id, m.attempt],
        )
        if status in ("sent", "bounced"):
            campaign = tx.execute(
                "SELECT campaign_id, offer_id FROM messages WHERE message_id = ?", [m.message_id]
            ).fetchall()[0]
            write_events(tx, [TrackEvent(
                f"{CHANNEL_LABEL[m.channel]} {status.title()}", m.customer, at,
                {"message_id": m.message_id, "campaign_id": campaign[0], "offer_id": campaign[1],
                 "channel": m.channel, "purpose": m.purpose, "attempt": m.attempt,
                 "detail": result.detail},
                message_id=event_id(status, m.message_id),
            )])
