"""The Segment-compatible event API in-process (the app with its real store file and writer)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from xrm.config import Settings
from xrm.store import Store

from .live import KEY, Live, serve_in_thread


def test_track_is_committed_and_answered_exactly_success(live: Live, reader: dict[str, str]) -> None:
    event = {
        "userId": "u1", "anonymousId": "a1", "event": "Product Viewed", "messageId": "m-1",
        "timestamp": "2024-05-01T12:00:00+02:00", "properties": {"sku": "K-1", "price": 4.5},
        "context": {"ip": "10.0.0.1"},
    }
    r = live.client.post("/v1/track", json=event, auth=(KEY, ""))
    assert r.status_code == 200 and r.json() == {"success": True}
    rows = live.rows("SELECT type, event, user_id, anonymous_id, strftime(ts, '%H:%M'), source, "
                         "properties, context FROM events")
    assert rows == [("track", "Product Viewed", "u1", "a1", "10:00", "webshop",
                     '{"sku":"K-1","price":4.5}', '{"ip":"10.0.0.1"}')]
    # Resolved to a profile in the same request.
    (pid,), = live.rows("SELECT profile_id FROM event_profiles WHERE message_id = 'm-1'")
    page = live.client.get(f"/v1/profiles/{pid}/timeline", headers=reader).json()
    assert [i["id"] for i in page["items"]] == ["m-1"]
    prof = live.client.get(f"/v1/profiles/{pid}", headers=reader).json()
    idents = {(i["type"], i["value"]) for i in prof["identifiers"]}
    assert idents == {("user_id", "u1"), ("anonymous_id", "a1")}


@pytest.mark.parametrize("call", ["identify", "page", "screen", "group", "alias"])
def test_each_call_type(live: Live, call: str) -> None:
    body: dict[str, Any] = {"userId": "u9", "timestamp": "2024-05-01T12:00:00Z", "messageId": f"x-{call}"}
    body |= {"group": {"groupId": "g1"}, "alias": {"previousId": "anon-9"},
             "identify": {"traits": {"email": "u9@firma.de"}}}.get(call, {"name": "Home"})
    r = live.client.post(f"/v1/{call}", json=body, auth=(KEY, ""))
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert live.rows("SELECT type FROM events") == [(call,)]
    assert live.rows("SELECT count(*) FROM event_profiles") == [(1,)]


def test_write_key_as_basic_user_or_in_body(live: Live) -> None:
    ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
    assert live.client.post("/v1/track", json={**ev, "writeKey": KEY}).status_code == 200
    r = live.client.post("/v1/track", json=ev)
    assert r.status_code == 401 and r.json()["code"] == "missing_write_key"
    assert "writeKey" in r.json()["message"]
    r = live.client.post("/v1/track", json=ev, auth=("nope", ""))
    assert r.status_code == 401 and r.json()["code"] == "invalid_write_key"
    assert live.rows("SELECT count(*) FROM events") == [(1,)]


def test_any_key_accepted_when_none_configured(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(store_path=tmp_path / "open.duckdb", memory_limit="1GB", threads=1)
    ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
    with caplog.at_level("WARNING", logger="xrm.api"):
        for live in serve_in_thread(settings):
            assert live.client.post("/v1/track", json=ev).status_code == 200
            assert live.client.post("/v1/track", json={**ev, "event": "F"}, auth=("x", "")).status_code == 200
    warnings = [r for r in caplog.records if "write_keys" in r.getMessage()]
    assert len(warnings) == 1


def test_batch_gzip_context_and_dedupe(live: Live) -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o-1",
             "timestamp": "2024-05-02T10:00:00Z",
             "properties": {"order_id": "A1", "revenue": 30, "currency": "eur",
                            "products": [{"product_id": "p1", "price": 10, "quantity": 3}]}},
            {"type": "page", "anonymousId": "a7", "name": "Home", "messageId": "p-1"},  # no timestamp
        ],
        "context": {"library": {"name": "curl"}},
    }
    raw = gzip.compress(json.dumps(body).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    for _ in range(2):  # the second time is a client's retry: nothing is stored twice
        r = live.client.post("/v1/batch", content=raw, headers=headers, auth=(KEY, ""))
        assert (r.status_code, r.json()) == (200, {"success": True})
    rows = live.rows("SELECT message_id, revenue, currency, context->>'$.library.name', "
                         "ts IS NOT NULL FROM events ORDER BY 1")
    assert rows == [("o-1", 30.0, "EUR", "curl", True), ("p-1", None, None, "curl", True)]
    assert live.rows("SELECT order_id, product_id, quantity FROM order_lines") == [("A1", "p1", 3.0)]
    stats = live.client.get("/healthz").json()["writer"]
    assert stats["events_added"] == 2 and stats["events_duplicate"] == 2


def test_invalid_event_names_the_field_and_stores_nothing(live: Live) -> None:
    body = {"batch": [
        {"type": "track", "userId": "u1", "event": "Fine", "timestamp": "2024-05-02T10:00:00Z"},
        {"type": "track", "userId": "u1", "event": "Bad", "timestamp": "yesterday-ish"},
        {"type": "shout", "userId": "u1", "timestamp": "2024-05-02T10:00:00Z"},
    ]}
    r = live.client.post("/v1/batch", json=body, auth=(KEY, ""))
    assert r.status_code == 400
    err = r.json()
    assert err["code"] == "invalid_event"
    assert "batch[1].timestamp" in err["message"] and "yesterday-ish" in err["message"]
    assert "batch[2].type" in err["message"] and "shout" in err["message"]
    assert [(e["index"], e["field"]) for e in err["errors"]] == [(1, "timestamp"), (2, "type")]
    assert live.rows("SELECT count(*) FROM events") == [(0,)]
    assert live.rows("SELECT file, line, field FROM rejected_rows ORDER BY line") == [
        ("POST /v1/batch", 2, "timestamp"), ("POST /v1/batch", 3, "type")]
    # A good request next to it is not affected.
    assert live.client.post("/v1/batch", json={"batch": body["batch"][:1]}, auth=(KEY, "")).status_code == 200


def test_size_limits_answer_413(live: Live) -> None:
    big = {"userId": "u1", "event": "E", "properties": {"blob": "x" * 33_000}}
    r = live.client.post("/v1/track", json=big, auth=(KEY, ""))
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert "32 KB" in r.json()["message"]
    item = {"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "y" * 20_000}}
    r = live.client.post("/v1/batch", json={"batch": [item] * 30}, auth=(KEY, ""))
    assert r.status_code == 413 and "500 KB" in r.json()["message"]
    # A gzip body is measured unpacked: a small bomb is refused too.
    bomb = gzip.compress(json.dumps({"batch": [item] * 30}).encode())
    assert len(bomb) < 10_000
    r = live.client.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}, auth=(KEY, ""))
    assert r.status_code == 413
    assert live.rows("SELECT count(*) FROM events") == [(0,)]


def test_malformed_requests(live: Live, reader: dict[str, str]) -> None:
    r = live.client.post("/v1/batch", content=b"{not json", auth=(KEY, ""))
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = live.client.post("/v1/batch", json={"batch": "nope"}, auth=(KEY, ""))
    assert r.status_code == 400 and r.json()["message"].startswith("batch: not a list")
    r = live.client.post("/v1/batch", json={"batch": [1]}, auth=(KEY, ""))
    assert r.status_code == 400 and r.json()["message"].startswith("batch[0]")
    gz = {"Content-Encoding": "gzip"}
    r = live.client.post("/v1/track", content=b"garbage", headers=gz, auth=(KEY, ""))
    assert r.status_code == 400 and r.json()["code"] == "invalid_gzip"
    r = live.client.post("/v1/track", content=b"{}", headers={"Content-Encoding": "br"}, auth=(KEY, ""))
    assert r.status_code == 415
    r = live.client.get("/v1/profiles/abc/timeline", headers=reader)
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    assert "profile_id" in r.json()["message"]
    r = live.client.get("/v1/profiles/999/timeline", headers=reader)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = live.client.get("/v1/nothing-here")
    assert r.status_code == 404 and set(r.json()) == {"code", "message"}


def test_openapi_lists_every_endpoint(live: Live) -> None:
    paths = live.client.get("/openapi.json").json()["paths"]
    for call in ("identify", "track", "page", "screen", "group", "alias", "batch"):
        assert f"/v1/{call}" in paths
    assert "/v1/profiles/{profile_id}/timeline" in paths


def test_store_is_released_after_shutdown(api_settings: Settings) -> None:
    for live in serve_in_thread(api_settings):
        ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
        assert live.client.post("/v1/track", json=ev, auth=(KEY, "")).status_code == 200
    with Store.open(api_settings) as store:  # the server closed its store
        assert store.sql("SELECT status, rows_loaded FROM loads").fetchall() == [("done", 1)]
