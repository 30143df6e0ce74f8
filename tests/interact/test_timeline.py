"""One timeline per profile: events of every channel, consents, identity merges; filters and pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xrm.exceptions import InputError, NotFound
from xrm.ingest import load_file
from xrm.interact import profile_view, record_consent, resolve_events, timeline
from xrm.store import Store

EVENTS = [
    {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "e1",
     "timestamp": "2024-05-01T09:00:00Z", "traits": {"email": "ann@firma.de", "plan": "silver"}},
    {"type": "page", "anonymousId": "a1", "name": "Kaffee", "messageId": "e2",
     "timestamp": "2024-05-01T09:05:00Z", "properties": {"url": "/kaffee"}},
    {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "e3",
     "timestamp": "2024-05-02T10:00:00Z",
     "properties": {"order_id": "A1", "revenue": 12.5, "channel": "online",
                    "products": [{"product_id": "p1", "price": 12.5}]}},
    {"type": "screen", "anonymousId": "a2", "name": "Basket", "messageId": "e4",
     "timestamp": "2024-05-03T08:00:00Z"},
    {"type": "identify", "userId": "u1", "messageId": "e5", "timestamp": "2024-05-04T08:00:00Z",
     "traits": {"plan": "gold"}},
    {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "other",
     "timestamp": "2024-05-02T10:00:00Z", "properties": {"order_id": "B1", "revenue": 5}},
    # The app's anonymous visitor logs in: its profile merges into u1's.
    {"type": "track", "userId": "u1", "anonymousId": "a2", "event": "Signed In", "messageId": "e6",
     "timestamp": "2024-05-05T08:00:00Z"},
]


@pytest.fixture
def filled(store: Store, tmp_path: Path) -> tuple[Store, int, int]:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n", encoding="utf-8")
    load_file(store, path, show_progress=False)
    with store.transaction() as cur:
        resolve_events(cur, store.settings, [(e["messageId"], e) for e in EVENTS[:6]])
    with store.transaction() as cur:
        resolve_events(cur, store.settings, [(e["messageId"], e) for e in EVENTS[6:]])
    # A consent through interact (it is also a `Consent Updated` event), and one imported as a
    # row only; and an e-mail response written by interact, not resolved yet (found by userId).
    record_consent(store, "u1", "email", "marketing", "granted", source="web form",
                   at=datetime(2024, 5, 6, 8, tzinfo=UTC))
    store.sql(
        "INSERT INTO consents (customer, channel, purpose, status, source, given_at) "
        "VALUES ('u1', 'sms', 'service', 'denied', 'call centre', TIMESTAMP '2024-05-06 09:00:00')"
    ).fetchall()
    store.sql(
        "INSERT INTO events (message_id, type, event, user_id, ts, source, properties) VALUES "
        "('mail-1', 'track', 'Email Opened', 'u1', TIMESTAMP '2024-05-07 07:00:00', 'xrm.interact', "
        "'{\"channel\": \"email\", \"campaign_id\": \"c1\"}')"
    ).fetchall()
    (u1,), = store.sql(
        "SELECT profile_id FROM identifiers WHERE id_type = 'user_id' AND id_value = 'u1'"
    ).fetchall()[0:1]
    (absorbed,), = store.sql("SELECT profile_id FROM profiles WHERE status = 'merged'").fetchall()
    return store, int(u1), int(absorbed)


def test_everything_newest_first(filled: tuple[Store, int, int]) -> None:
    store, pid, _ = filled
    page = timeline(store, pid, limit=100)
    got = [(i.item_id if i.kind == "event" else i.kind, i.channel) for i in page.items]
    # The merge happened when the login event was resolved (now); the events are from 2024.
    assert got[:3] == [("identity", None), ("mail-1", "email"), ("consent", "sms")]
    assert ("e2", "web") in got and ("e4", "app") in got and ("e3", "online") in got
    ts = [i.ts for i in page.items]
    assert ts == sorted(ts, reverse=True)
    ids = {i.item_id for i in page.items}
    assert {"e1", "e2", "e3", "e4", "e5", "e6", "mail-1"} <= ids and "other" not in ids
    kinds = {i.kind for i in page.items}
    assert kinds == {"event", "consent", "identity"}
    # The consent recorded through interact shows once (as its event), the imported one as a row.
    assert [i.name for i in page.items if i.kind == "consent"] == ["denied"]
    assert sum(i.name == "Consent Updated" for i in page.items) == 1
    order = next(i for i in page.items if i.item_id == "e3")
    assert order.data["revenue"] == 12.5 and order.data["properties"]["order_id"] == "A1"
    assert page.next_cursor is None


def test_filters(filled: tuple[Store, int, int]) -> None:
    store, pid, _ = filled
    names = [i.item_id for i in timeline(store, pid, types=["page", "screen"]).items]
    assert names == ["e4", "e2"]
    assert next(i.item_id for i in timeline(store, pid, channels=["email"]).items) == "mail-1"
    assert [i.item_id for i in timeline(store, pid, events=["Order Completed"]).items] == ["e3"]
    window = timeline(store, pid, since=datetime(2024, 5, 2, tzinfo=UTC),
                      until=datetime(2024, 5, 4, tzinfo=UTC))
    assert [i.item_id for i in window.items] == ["e4", "e3"]
    assert [i.type for i in timeline(store, pid, types=["merge"]).items] == ["merge"]
    with pytest.raises(InputError, match="not a timeline type"):
        timeline(store, pid, types=["purchase"])


def test_pages_cover_everything_once(filled: tuple[Store, int, int]) -> None:
    store, pid, _ = filled
    everything = [i.item_id for i in timeline(store, pid, limit=100).items]
    seen, cursor = [], None
    while True:
        page = timeline(store, pid, limit=3, cursor=cursor)
        seen += [i.item_id for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything
    with pytest.raises(InputError, match="not a timeline cursor"):
        timeline(store, pid, cursor="garbage!")


def test_merged_profile_leads_to_the_survivor(filled: tuple[Store, int, int]) -> None:
    store, pid, absorbed = filled
    page = timeline(store, absorbed, limit=100)
    assert (page.profile_id, page.requested_id) == (pid, absorbed)
    with pytest.raises(NotFound):
        timeline(store, 10_000)


def test_profile_view(filled: tuple[Store, int, int]) -> None:
    store, pid, _ = filled
    view = profile_view(store, pid)
    assert {(i["type"], i["value"]) for i in view["identifiers"]} == {
        ("user_id", "u1"), ("anonymous_id", "a1"), ("anonymous_id", "a2")}
    assert view["evidence"] == [{"type": "email", "value": "ann@firma.de", "n_seen": 1}]
    assert view["traits"] == {"email": "ann@firma.de", "plan": "gold"}  # newest value wins
    assert view["events"] == 8 and view["last_event_at"].startswith("2024-05-07")


def test_cli_timeline_by_id_and_by_identifier(filled: tuple[Store, int, int]) -> None:
    from typer.testing import CliRunner

    from xrm.cli import app

    store, pid, absorbed = filled
    path = str(store.settings.store_path)
    store.close()
    runner = CliRunner()
    by_id = runner.invoke(app, ["--store", path, "timeline", str(pid), "--type", "track", "--json"])
    assert by_id.exit_code == 0, by_id.output
    page = json.loads(by_id.stdout)
    assert page["profile_id"] == pid
    assert {i["id"] for i in page["items"]} >= {"e3", "e6", "mail-1"}
    assert {i["type"] for i in page["items"]} == {"track"}
    # A merged profile's id leads to the profile it was merged into.
    merged = json.loads(runner.invoke(app, ["--store", path, "timeline", str(absorbed), "--json"]).stdout)
    assert merged["profile_id"] == pid and merged["requested_id"] == absorbed
    by_email = runner.invoke(app, ["--store", path, "timeline", "--id-type", "user_id", "--id-value", "u1",
                                   "--limit", "2", "--json"])
    first = json.loads(by_email.stdout)
    assert len(first["items"]) == 2 and first["next_cursor"]
    table = runner.invoke(app, ["--store", path, "timeline", str(pid), "--event", "Order Completed"],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "Order Completed" in table.output
    bad = runner.invoke(app, ["--store", path, "timeline", str(pid), "--since", "yesterday"])
    assert bad.exit_code == 1 and "ISO 8601" in bad.output
    unknown = runner.invoke(
        app, ["--store", path, "timeline", "--id-type", "user_id", "--id-value", "nobody"]
    )
    assert unknown.exit_code == 1 and "no active profile" in unknown.output
