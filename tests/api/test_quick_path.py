"""The event API's quick path stores exactly what the loader's SQL stores, and only plainly valid events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xrm.config import Settings
from xrm.ingest import drop_staged, insert_staged_events, stage_events
from xrm.ingest._api_batch import insert_quick_events, quick_event
from xrm.store import Store

from .live import KEY, Live

BASE = {"messageId": "m", "userId": "u1", "timestamp": "2024-05-01T12:00:00Z"}
VALID: list[dict[str, Any]] = [
    {**BASE, "type": "track", "event": "Product Viewed",
     "properties": {"price": 4.5, "big": 1e16, "tiny": 1e-7, "max": 1.7976931348623157e308,
                    "int": 123456789012345678901234, "list": [1, 2.0, None, True], "empty": {}},
     "context": {"ip": "10.0.0.1", "text": "Grüße ☕ \u0001 / \\ \""}},
    {**BASE, "type": "TRACK", "event": "E", "timestamp": "2024-02-29T23:59:59.123456+05:30"},
    {**BASE, "type": "page", "name": "Home", "userId": "", "anonymousId": "a1", "properties": None},
    {**BASE, "type": "screen", "name": "Basket", "timestamp": None,
     "originalTimestamp": "2024-05-01T12:00:00.5-02:00"},
    {**BASE, "type": "identify", "traits": {"email": "Ann@Firma.de", "n": 3}},
    {**BASE, "type": "group", "groupId": "g1", "traits": {"name": "Firma"}},
    {**BASE, "type": "alias", "previousId": "anon-old"},
    {**BASE, "type": "track", "event": "Order Refunded", "properties": {"order_id": "A1"}},
]
# Each needs the SQL: it may be valid, but only the SQL may say so (or word the problem).
SQL_ONLY: list[dict[str, Any]] = [
    {**BASE, "type": "track", "event": "Order Completed", "properties": {"order_id": "A1"}},
    {k: v for k, v in {**BASE, "type": "track", "event": "E"}.items() if k != "messageId"},
    {**BASE, "type": "track", "event": " padded "},
    {**BASE, "type": "track", "event": "E", "userId": 42},
    {**BASE, "type": "track", "event": "E", "timestamp": "2024-05-01T12:00:00"},  # no offset
    {**BASE, "type": "track", "event": "E", "timestamp": "2024-02-31T12:00:00Z"},
    {**BASE, "type": "track", "event": "E", "timestamp": "yesterday"},
    {**BASE, "type": "track", "event": "E", "properties": [1, 2]},
    {**BASE, "type": "track", "event": "E", "properties": {"x": float("nan")}},
    {**BASE, "type": "track"},
    {**BASE, "type": "shout"},
    {**BASE, "type": "page", "userId": None},
    {**BASE, "type": "group"},
    {**BASE, "type": "alias"},
]


def _text(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _store(tmp_path: Path, name: str) -> Store:
    return Store.open(Settings(store_path=tmp_path / f"{name}.duckdb", memory_limit="1GB", threads=1))


def _rows(store: Store) -> list[tuple[Any, ...]]:
    return store.sql(
        "SELECT message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, ts, "
        "source, CAST(properties AS VARCHAR), CAST(traits AS VARCHAR), CAST(context AS VARCHAR), "
        "order_id, revenue, currency FROM events ORDER BY message_id"
    ).fetchall()


def test_quick_path_stores_what_the_sql_stores(tmp_path: Path) -> None:
    events = [{**e, "messageId": f"m{k}"} for k, e in enumerate(VALID)]
    texts = [_text(e) for e in events]
    quick = [quick_event(e, t) for e, t in zip(events, texts, strict=True)]
    assert all(q is not None for q in quick)
    with _store(tmp_path, "quick") as a, _store(tmp_path, "sql") as b:
        cur = a.con.cursor()
        cur.execute("SET SESSION TimeZone = 'UTC'")
        rows = [(q, t) for q, t in zip(quick, texts, strict=True) if q is not None]
        assert insert_quick_events(cur, rows, source="web", load_id="l1") == len(VALID)
        cur.close()
        cur = b.con.cursor()
        cur.execute("SET SESSION TimeZone = 'UTC'")
        assert stage_events(cur, texts) == []  # the quick path's events are valid to the SQL too
        insert_staged_events(cur, source="web", load_id="l1")
        drop_staged(cur)
        cur.close()
        got, want = _rows(a), _rows(b)
    assert len(got) == len(VALID)
    assert got == want


@pytest.mark.parametrize("event", SQL_ONLY, ids=range(len(SQL_ONLY)))
def test_doubtful_events_go_through_the_sql(event: dict[str, Any]) -> None:
    assert quick_event(event, json.dumps(event)) is None


def test_bodies_read_alike_by_either_json_parser(live: Live) -> None:
    ev = {"type": "track", "userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
    big = {**ev, "messageId": "big", "properties": {"n": 123456789012345678901234, "f": 1e16}}
    r = live.client.post("/v1/batch", json={"batch": [big]}, auth=(KEY, ""))
    assert r.status_code == 200
    (props,), = live.rows("SELECT CAST(properties AS VARCHAR) FROM events WHERE message_id = 'big'")
    assert json.loads(props) == {"n": 123456789012345678901234, "f": 1e16}  # not made a float
    nan = b'{"batch": [{"type": "track", "userId": "u1", "event": "E", "properties": {"x": NaN}}]}'
    r = live.client.post("/v1/batch", content=nan, auth=(KEY, ""))  # read by json, as before
    assert r.status_code == 200
    assert live.rows("SELECT count(*) FROM events") == [(2,)]


def test_writer_survives_a_graph_changed_behind_its_memory(live: Live) -> None:
    ev = {"type": "track", "userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
    r = live.client.post("/v1/batch", json={"batch": [{**ev, "messageId": "a"}]}, auth=(KEY, ""))
    assert r.status_code == 200
    live.app.state.store.sql("DELETE FROM identifiers")  # as an erasure in the console would
    r = live.client.post("/v1/batch", json={"batch": [{**ev, "messageId": "b"}]}, auth=(KEY, ""))
    assert r.status_code == 200
    (pid,), = live.rows("SELECT profile_id FROM event_profiles WHERE message_id = 'b'")
    assert live.rows("SELECT profile_id FROM identifiers") == [(pid,)]  # not the forgotten one
    assert live.client.get("/healthz").json()["writer"]["resolution_failures"] == 0
