"""API keys, scopes, audit and rate limits against the real app (uvicorn, real DuckDB file).

Scopes allowed and denied on every router, tokens hashed at rest (searched in the store file's
bytes, with a control that the search finds a token stored in clear), rotation with and without
grace, revocation, audit rows, 429 with Retry-After then success, the no-keys default, and the
official Segment client backing off on 429 against a real server process.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from xrm.api._keys import create_key, rotate_key, verify_token
from xrm.config import Settings
from xrm.store import Store

from .live import KEY, Live, bearer, serve_in_thread

EVENT = {"userId": "u1", "anonymousId": "a1", "event": "E", "messageId": "m-1",
         "timestamp": "2024-05-01T12:00:00Z", "traits": {"email": "ann@firma.de"}}


def _error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"], body
    return body


def _profile(live: Live) -> int:
    assert live.client.post("/v1/track", json=EVENT, auth=(KEY, "")).status_code == 200
    ((pid,),) = live.rows("SELECT profile_id FROM event_profiles WHERE message_id = 'm-1'")
    return int(pid)


def test_each_scope_allowed_and_denied(live: Live) -> None:
    pid = _profile(live)
    tokens = {scope: live.new_key(f"k-{scope}", scope, workspace=f"ws-{scope}")
              for scope in ("write", "read", "admin")}
    ev = {"userId": "u2", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
    # events: write or admin, as Basic user (Segment) or Bearer
    post = live.client.post
    assert post("/v1/track", json={**ev, "messageId": "w1"}, auth=(tokens["write"], "")).status_code == 200
    admin = bearer(tokens["admin"])
    assert post("/v1/track", json={**ev, "messageId": "w2"}, headers=admin).status_code == 200
    assert post("/v1/track", json={**ev, "messageId": "w3", "writeKey": tokens["write"]}).status_code == 200
    body = _error(post("/v1/track", json={**ev, "messageId": "w4"}, headers=bearer(tokens["read"])),
                  403, "insufficient_scope")
    assert "k-read" in body["message"] and "'read'" in body["message"]
    _error(post("/v1/batch", json={"batch": [ev], "writeKey": tokens["read"]}), 403, "insufficient_scope")
    sources = dict(live.rows("SELECT message_id, source FROM events WHERE message_id LIKE 'w%'"))
    assert sources == {"w1": "ws-write", "w2": "ws-admin", "w3": "ws-write"}
    # personal data: read or admin; the settings' write key and stored write keys are refused
    for path in (f"/v1/profiles/{pid}", f"/v1/profiles/{pid}/timeline"):
        assert live.client.get(path, headers=bearer(tokens["read"])).status_code == 200
        assert live.client.get(path, auth=(tokens["admin"], "")).status_code == 200
        _error(live.client.get(path, headers=bearer(tokens["write"])), 403, "insufficient_scope")
        _error(live.client.get(path, auth=(KEY, "")), 403, "insufficient_scope")
        r = _error(live.client.get(path), 401, "missing_api_key")
        assert r and live.client.get(path).headers["www-authenticate"].startswith("Bearer")
        _error(live.client.get(path, headers=bearer("xrm_abcdefgh_" + "x" * 43)), 401, "invalid_api_key")
        _error(live.client.get(path, headers={"Authorization": "Digest abc"}), 401, "invalid_authorization")
    lookup = live.client.get("/v1/profiles", params={"id_type": "email", "id_value": "ann@firma.de"},
                             headers=bearer(tokens["read"]))
    assert lookup.status_code == 200 and lookup.json()["profile_ids"] == [pid]
    # keys and audit: admin only
    for scope in ("write", "read"):
        _error(live.client.get("/v1/keys", headers=bearer(tokens[scope])), 403, "insufficient_scope")
        _error(live.client.get("/v1/audit", headers=bearer(tokens[scope])), 403, "insufficient_scope")
    listed = live.client.get("/v1/keys", headers=bearer(tokens["admin"])).json()["keys"]
    assert {k["name"] for k in listed} == {"k-write", "k-read", "k-admin"}
    assert not any(t in json.dumps(listed) for t in tokens.values())  # prefixes only
    assert {k["prefix"] for k in listed} == {t[:13] for t in tokens.values()}


def test_tokens_are_hashed_at_rest(tmp_path: Path) -> None:
    store_path = tmp_path / "keys.duckdb"
    with Store.open(store_path) as store:
        tokens = [create_key(store, f"k{i}", scope)[1] for i, scope in enumerate(("write", "read", "admin"))]
        tokens.append(rotate_key(store, "k1", grace_s=60)[1])
        cells = " ".join(str(c) for t in store.tables()
                         for row in store.sql(f"SELECT * FROM {t}").fetchall() for c in row)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for token in tokens:
        secret = token.split("_", 2)[2]
        assert secret not in cells
        assert secret.encode() not in raw and token.encode() not in raw
    # control: the same byte search finds a token that is stored in clear
    control = tmp_path / "control.duckdb"
    with Store.open(control) as store:
        store.sql("CREATE TABLE clear_tokens (t VARCHAR)")
        store.sql("INSERT INTO clear_tokens VALUES (?)", [tokens[0]])
    assert tokens[0].split("_", 2)[2].encode() in control.read_bytes()
    with Store.open(store_path) as store:
        assert all(verify_token(store, t) is not None for t in tokens)


def test_rotation_with_grace_and_revocation(live: Live) -> None:
    admin = bearer(live.new_key("ops", "admin"))
    old = live.new_key("shop", "write")
    ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}

    def send(token: str) -> int:
        return live.client.post("/v1/track", json=ev, auth=(token, "")).status_code

    assert send(old) == 200
    r = live.client.post("/v1/keys/shop/rotate", json={"grace_s": 3600}, headers=admin)
    assert r.status_code == 200 and r.json()["secrets"] == 2
    new = r.json()["token"]
    assert new != old and new.startswith(old[:13])
    assert send(old) == 200 and send(new) == 200  # both during the grace period
    r = live.client.post("/v1/keys/shop/rotate", headers=admin)  # no grace: every older token ends now
    newest = r.json()["token"]
    assert send(old) == 401 and send(new) == 401 and send(newest) == 200
    assert live.client.post("/v1/keys/shop/revoke", headers=admin).json()["active"] is False
    _error(live.client.post("/v1/track", json=ev, auth=(newest, "")), 401, "invalid_write_key")
    _error(live.client.post("/v1/keys/nobody/revoke", headers=admin), 404, "not_found")
    # a created key works at once; its token is in the answer only
    r = live.client.post("/v1/keys", json={"name": "crm", "scope": "read"}, headers=admin)
    assert r.status_code == 200
    assert live.client.get("/v1/profiles/1", headers=bearer(r.json()["token"])).status_code in (200, 404)
    r = live.client.post("/v1/keys", json={"name": "x", "scope": "root"}, headers=admin)
    assert "scope" in _error(r, 400, "invalid_request")["message"]
    actions = live.rows("SELECT action FROM api_audit WHERE action LIKE 'key.%' ORDER BY audit_id")
    assert actions == [("key.rotate",), ("key.rotate",), ("key.revoke",), ("key.create",)]


def test_grace_period_ends(tmp_path: Path) -> None:
    with Store.open(tmp_path / "g.duckdb") as store:
        _, old = create_key(store, "shop", "write")
        _, new = rotate_key(store, "shop", grace_s=0.3)
        assert verify_token(store, old) is not None
        time.sleep(0.4)
        assert verify_token(store, old) is None and verify_token(store, new) is not None


def test_reads_of_personal_data_are_audited(live: Live) -> None:
    pid = _profile(live)
    token = live.new_key("support", "read")
    h = bearer(token)
    get = live.client.get
    assert get(f"/v1/profiles/{pid}", headers={**h, "X-Xrm-Purpose": "ticket 4711"}).status_code == 200
    assert get(f"/v1/profiles/{pid}/timeline", params={"purpose": "complaint"}, headers=h).status_code == 200
    assert live.client.get("/v1/profiles", params={"id_type": "email", "id_value": "ann@firma.de"},
                           headers=h).status_code == 200
    assert live.client.get("/v1/profiles/999999", headers=h).status_code == 404  # an attempt is logged too
    _error(live.client.get(f"/v1/profiles/{pid}", headers=bearer(live.new_key("w", "write"))), 403,
           "insufficient_scope")  # refused: nothing read, nothing logged
    rows = live.rows("SELECT key_name, key_id, action, target, purpose, method, path FROM api_audit "
                     "ORDER BY audit_id")
    key_id = token.split("_", 2)[1]
    assert rows == [
        ("support", key_id, "profile.read", str(pid), "ticket 4711", "GET", f"/v1/profiles/{pid}"),
        ("support", key_id, "timeline.read", str(pid), "complaint", "GET", f"/v1/profiles/{pid}/timeline"),
        ("support", key_id, "profile.lookup", str(pid), None, "GET", "/v1/profiles"),
        ("support", key_id, "profile.read", "999999", None, "GET", "/v1/profiles/999999"),
    ]
    # the identifier looked up is not in the log (it may itself be personal data)
    assert "ann@firma.de" not in json.dumps(live.rows("SELECT * FROM api_audit"), default=str)
    admin = bearer(live.new_key("dpo", "admin"))
    listed = live.client.get("/v1/audit", params={"target": str(pid)}, headers=admin).json()["rows"]
    assert [r["action"] for r in listed] == ["profile.lookup", "timeline.read", "profile.read"]
    # no audit row, no answer: a read the log cannot record is refused
    live.rows("ALTER TABLE api_audit RENAME TO api_audit_away")
    r = get(f"/v1/profiles/{pid}", headers=h)
    assert "ann@firma.de" not in _error(r, 503, "unavailable")["message"] and "audit" in r.text


def test_rate_limit_answers_429_with_retry_after_then_succeeds(live: Live) -> None:
    token = live.new_key("slow", "read", rate_per_s=0.25, burst=2)  # slow: a loaded machine is no refill
    h = bearer(token)
    assert [live.client.get("/v1/profiles/1", headers=h).status_code for _ in range(2)] == [404, 404]
    r = live.client.get("/v1/profiles/1", headers=h)
    body = _error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 4 and "0.25 requests/s (burst 2)" in body["message"]
    other = bearer(live.new_key("other", "read"))  # buckets are per key
    assert live.client.get("/v1/profiles/1", headers=other).status_code == 404
    time.sleep(int(r.headers["retry-after"]))
    assert live.client.get("/v1/profiles/1", headers=h).status_code == 404


def test_settings_rate_applies_to_write_keys_from_settings(tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "r.duckdb", memory_limit="1GB", threads=1,
                        write_keys={KEY: "shop"}, api_rate_per_s=0.05, api_rate_burst=1)
    ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
    for live in serve_in_thread(settings):
        assert live.client.post("/v1/track", json=ev, auth=(KEY, "")).status_code == 200
        r = live.client.post("/v1/track", json=ev, auth=(KEY, ""))
        assert _error(r, 429, "rate_limited") and 1 <= int(r.headers["retry-after"]) <= 20


def test_no_keys_at_all_writes_open_reads_refused_console_works(tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "fresh.duckdb", memory_limit="1GB", threads=1)
    for live in serve_in_thread(settings):
        ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
        assert live.client.post("/v1/track", json=ev).status_code == 200  # today's behaviour
        for path in ("/v1/profiles/1", "/v1/profiles/1/timeline", "/v1/keys"):
            body = _error(live.client.get(path), 401, "no_api_keys")
            assert "xrm keys create" in body["message"]
            _error(live.client.get(path, headers=bearer("anything")), 401, "no_api_keys")
        assert live.client.get("/console/login").status_code == 200  # its own logins
        # once a key exists, writes need one too
        live.new_key("shop", "write")
        _error(live.client.post("/v1/track", json=ev), 401, "missing_write_key")


def test_official_segment_client_backs_off_on_429_and_delivers(tmp_path: Path) -> None:
    from segment.analytics import Client

    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1)
    with Store.open(settings) as s:
        _, token = create_key(s, "sdk", "write", rate_per_s=1, burst=1)
    errors: list[Any] = []
    n = 4
    for live in serve_in_thread(settings):  # uvicorn on a real port, as `xrm serve` runs it
        client = Client(token, host=live.url, upload_size=1, upload_interval=0.01,
                        on_error=lambda e, batch: errors.append(e))
        started = time.monotonic()
        for i in range(n):
            ok, _ = client.track("u1", "Tick", {"i": i}, message_id=f"tick-{i}",
                                 timestamp=datetime(2024, 5, 1, tzinfo=UTC))
            assert ok
        client.flush()
        took = time.monotonic() - started
        client.shutdown()
        stored = live.rows("SELECT message_id, source FROM events ORDER BY 1")
    assert errors == []
    assert stored == [(f"tick-{i}", "sdk") for i in range(n)]
    # one request per second after the first: the client was held back by 429s and waited
    assert took >= n - 1 - 0.2, took
