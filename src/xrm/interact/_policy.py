"""Contact policy: frequency caps per channel and overall, quiet hours, arbitration.

Caps count messages planned or sent to a customer in the rolling last 24 hours (day) and 7 days
(week), across all campaigns; quiet hours are in the customer's own time zone.

    >>> policy = ContactPolicy(overall=Caps(per_day=1, per_week=3))
    >>> policy.next_allowed(datetime(2026, 1, 5, 22, 30), "Europe/Berlin")
    datetime.datetime(2026, 1, 6, 7, 0)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from xrm.exceptions import InputError

__all__ = ["Caps", "ContactPolicy", "Wish", "arbitrate", "contact_counts"]


@dataclass(frozen=True)
class Caps:
    """At most ``per_day`` messages in 24 hours and ``per_week`` in 7 days (None: no cap)."""

    per_day: int | None = None
    per_week: int | None = None


def _default_caps() -> dict[str, Caps]:
    return {
        "email": Caps(1, 3),
        "sms": Caps(1, 2),
        "push": Caps(2, 5),
        "phone": Caps(1, 1),
        "post": Caps(1, 1),
        "webhook": Caps(None, None),
    }


@dataclass(frozen=True)
class ContactPolicy:
    channel_caps: Mapping[str, Caps] = field(default_factory=_default_caps)
    overall: Caps = Caps(2, 5)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    quiet_channels: frozenset[str] = frozenset({"email", "sms", "push", "phone", "webhook"})
    arbitration: Literal["priority", "value"] = "priority"
    default_timezone: str = "Europe/Berlin"
    service_exempt: bool = True  # service messages (receipts, opt-in mails) skip caps and quiet hours

    def in_quiet_hours(self, local: time) -> bool:
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def next_allowed(self, at: datetime, timezone: str | None, channel: str = "email") -> datetime:
        """The first moment at or after ``at`` (naive UTC) outside quiet hours, as naive UTC."""
        if channel not in self.quiet_channels:
            return at
        zone = _zone(timezone or self.default_timezone)
        local = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
        if not self.in_quiet_hours(local.time()):
            return at
        day = local.date() if local.time() < self.quiet_end else local.date() + timedelta(days=1)
        end = datetime.combine(day, self.quiet_end, tzinfo=zone)
        return end.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"time zone {name!r} is not known; use an IANA name such as 'Europe/Berlin'"
        ) from None


def contact_counts(
    cur: duckdb.DuckDBPyConnection,
    customers: Iterable[str],
    at: datetime,
    *,
    customer_key: str = "user_id",
) -> dict[str, dict[str, list[int]]]:
    """``customer -> channel -> [last 24 h, last 7 days]`` of marketing messages, plus ``'*'``.

    A message counts at its send time, or its planned time while queued (a queued one in the
    future counts too: it will go). Caps are per person, so a customer's count takes in every
    message to their Identify profile: those sent under the profile id (``customer_key =
    "profile_id"`` campaigns) and under any of its user ids. A user id no profile holds counts
    its own messages. ``customer_key`` says what ``customers`` are: user ids or profile ids.
    """
    if customer_key not in ("user_id", "profile_id"):
        raise InputError(f"customer_key = {customer_key!r}: use 'user_id' or 'profile_id'")
    wanted = sorted(set(customers))
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    if not wanted:
        return out
    # A person is 'p<profile id>', or 'u<user id>' for a user id that no profile holds.
    asked = (
        "SELECT w AS customer, 'p' || w AS person FROM unnest(?) t(w)"
        if customer_key == "profile_id" else
        "SELECT w AS customer, coalesce('p' || CAST(i.profile_id AS VARCHAR), 'u' || w) AS person "
        "FROM unnest(?) t(w) LEFT JOIN identifiers i ON i.id_type = 'user_id' AND i.id_value = w"
    )
    rows = cur.execute(
        f"""
        WITH asked AS ({asked}),
        -- Every key a wanted person may have been messaged under: the profile id and its user ids.
        keys AS (
            SELECT person, substr(person, 2) AS customer,
                   CASE WHEN starts_with(person, 'p') THEN 'profile_id' ELSE 'user_id' END AS key
            FROM (SELECT DISTINCT person FROM asked)
            UNION
            SELECT 'p' || CAST(i.profile_id AS VARCHAR), i.id_value, 'user_id'
            FROM identifiers i
            WHERE i.id_type = 'user_id'
              AND 'p' || CAST(i.profile_id AS VARCHAR) IN (SELECT person FROM asked)
        ),
        sent AS (
            SELECT k.person, m.channel,
                   count(*) FILTER (WHERE coalesce(m.sent_at, m.not_before) > ? - INTERVAL 1 DAY) AS day,
                   count(*) AS week
            FROM messages m
            JOIN keys k ON k.customer = m.customer AND k.key = coalesce(m.customer_key, 'user_id')
            WHERE m.purpose <> 'service' AND m.status IN ('queued', 'sending', 'sent', 'retry')
              AND coalesce(m.sent_at, m.not_before) > ? - INTERVAL 7 DAY
            GROUP BY 1, 2
        )
        SELECT a.customer, s.channel, s.day, s.week FROM asked a JOIN sent s USING (person)
        """,
        [wanted, at, at],
    ).fetchall()
    for customer, channel, day, week in rows:
        for key in (channel, "*"):
            out[customer][key][0] += day
            out[customer][key][1] += week
    return out


@dataclass
class Wish:
    """A campaign that wants to contact a customer now."""

    campaign_id: str
    customer: str
    channel: str
    priority: int = 0
    value: float = 0.0
    admitted: bool = False
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _fits(counts: list[int], caps: Caps) -> bool:
    return (caps.per_day is None or counts[0] < caps.per_day) and (
        caps.per_week is None or counts[1] < caps.per_week
    )


def arbitrate(
    wishes: Sequence[Wish], counts: Mapping[str, Mapping[str, list[int]]], policy: ContactPolicy
) -> list[Wish]:
    """Admit wishes per customer, best first (priority or value), while the caps leave room.

    A wish refused because earlier history already fills the caps is ``capped``; one refused
    because a better campaign took the room now is ``lost_arbitration``.
    """
    by_customer: dict[str, list[Wish]] = defaultdict(list)
    for w in wishes:
        by_customer[w.customer].append(w)
    for customer, group in by_customer.items():
        if policy.arbitration == "value":
            group.sort(key=lambda w: (-w.value, -w.priority, w.campaign_id))
        else:
            group.sort(key=lambda w: (-w.priority, -w.value, w.campaign_id))
        history = counts.get(customer, {})
        used: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for key, value in history.items():
            used[key] = list(value)
        for w in group:
            caps = policy.channel_caps.get(w.channel, Caps())
            if _fits(used[w.channel], caps) and _fits(used["*"], policy.overall):
                w.admitted, w.reason = True, "admitted"
                for key in (w.channel, "*"):
                    used[key][0] += 1
                    used[key][1] += 1
            else:
                base_ok = _fits(list(history.get(w.channel, [0, 0])), caps) and _fits(
                    list(history.get("*", [0, 0])), policy.overall
                )
                w.reason = "lost_arbitration" if base_ok else "capped"
    return list(wishes)
