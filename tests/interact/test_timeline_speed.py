"""Which events the (rewritten, faster) timeline query counts as a profile's, edge case by edge case."""

from __future__ import annotations

import json
from pathlib import Path

from xrm.ingest import load_file
from xrm.interact import profile_view, resolve_events, timeline
from xrm.store import Store

EVENTS = [
    {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "e1",
     "timestamp": "2024-05-01T09:00:00Z", "traits": {"plan": "silver"}},
    {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "e2",
     "timestamp": "2024-05-02T10:00:00Z", "properties": {"order_id": "B1", "revenue": 5}},
]


def _raw(store: Store, message_id: str, user_id: str | None, anonymous_id: str | None) -> None:
    store.sql(
        "INSERT INTO events (message_id, type, event, user_id, anonymous_id, ts) VALUES "
        "(?, 'track', 'Email Opened', ?, ?, TIMESTAMP '2024-05-03 07:00:00')",
        [message_id, user_id, anonymous_id],
    ).fetchall()


def test_resolved_and_unresolved_events_and_consents(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n", encoding="utf-8")
    load_file(store, path, show_progress=False)
    with store.transaction() as cur:
        resolve_events(cur, store.settings, [(e["messageId"], e) for e in EVENTS])
    ((u1,),) = store.sql("SELECT profile_id FROM identifiers WHERE id_value = 'u1'").fetchall()
    ((u2,),) = store.sql("SELECT profile_id FROM identifiers WHERE id_value = 'u2'").fetchall()
    _raw(store, "loose-user", "u1", None)  # unresolved, u1's userId: u1's
    _raw(store, "loose-anon", None, "a1")  # unresolved, only u1's anonymousId: u1's
    _raw(store, "loose-other-user", "zz", "a1")  # its userId is someone else's: not u1's
    _raw(store, "resolved-away", "u1", None)  # identify put it on u2: u2's, not u1's
    store.sql("INSERT INTO event_profiles VALUES ('resolved-away', ?)", [u2]).fetchall()
    # A consent that is one of u1's events shows once (as the event); one whose event is not
    # u1's shows as a consent row.
    store.sql(
        "INSERT INTO consents (customer, channel, purpose, status, source, given_at, "
        "event_message_id) VALUES "
        "('u1', 'email', 'marketing', 'granted', 'web', TIMESTAMP '2024-05-04 08:00:00', 'loose-user'),"
        "('u1', 'sms', 'service', 'denied', 'call', TIMESTAMP '2024-05-04 09:00:00', 'resolved-away')"
    ).fetchall()

    mine = timeline(store, u1, limit=100)
    events = {i.item_id for i in mine.items if i.kind == "event"}
    assert events == {"e1", "loose-user", "loose-anon"}
    assert [i.channel for i in mine.items if i.kind == "consent"] == ["sms"]
    theirs = {i.item_id for i in timeline(store, u2, limit=100).items if i.kind == "event"}
    assert theirs == {"e2", "resolved-away"}
    assert profile_view(store, u1)["events"] == 3
