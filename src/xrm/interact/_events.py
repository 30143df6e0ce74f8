"""Responses go back into ingest's ``events`` table as Segment track events (the timeline)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

__all__ = ["CHANNEL_LABEL", "TrackEvent", "event_id", "write_events"]

SOURCE = "xrm.interact"

# Segment's e-mail spec names events "Email Sent", "Email Opened" ...; other channels follow suit.
CHANNEL_LABEL = {
    "email": "Email",
    "sms": "SMS",
    "push": "Push Notification",
    "webhook": "Webhook Message",
    "post": "Letter",
    "phone": "Call",
}


def event_id(*parts: str) -> str:
    """A deterministic messageId, so writing the same response twice stores it once."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "xrm-interact:" + "|".join(parts)))


@dataclass(frozen=True)
class TrackEvent:
    event: str
    user_id: str | None
    ts: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def write_events(cur: duckdb.DuckDBPyConnection, events: Iterable[TrackEvent]) -> int:
    """Append track events (idempotent on messageId); returns how many were new."""
    rows = [
        (
            e.message_id,
            e.event,
            e.user_id,
            e.ts,
            SOURCE,
            json.dumps(e.properties, default=str),
            json.dumps({"library": {"name": "xrm"}, **(e.context or {})}, default=str),
        )
        for e in events
    ]
    if not rows:
        return 0
    # Skip ids already stored (an index lookup; counting the table would scan it).
    seen = {r[0] for r in cur.execute(
        "SELECT message_id FROM events WHERE message_id IN (SELECT unnest(?))",
        [[r[0] for r in rows]],
    ).fetchall()}
    new = [r for r in rows if r[0] not in seen]
    if new:
        cur.executemany(
            "INSERT OR IGNORE INTO events (message_id, type, event, user_id, ts, source, "
            "properties, context) VALUES (?, 'track', ?, ?, ?, ?, ?, ?)",
            new,
        )
    return len(new)
