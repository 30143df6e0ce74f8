"""A real server process: the official Segment client delivers unchanged; SIGKILL loses nothing."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from xrm.store import Store

from .live import KEY, ServerProcess, free_port

ENV = {"XRM_WRITE_KEYS": json.dumps({KEY: "python-sdk"}), "XRM_MEMORY_LIMIT": "1GB", "XRM_THREADS": "1"}


def _segment_calls(client: Any) -> list[dict[str, Any]]:
    t0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    sent = [
        client.identify("u1", {"email": "ann@firma.de", "name": "Ann Beispiel", "plan": "gold"},
                        anonymous_id="anon-1", timestamp=t0, context={"ip": "10.0.0.1"}),
        client.track("u1", "Order Completed", {
            "order_id": "A-1", "revenue": 19.98, "currency": "EUR",
            "products": [{"product_id": "p1", "price": 9.99, "quantity": 2}],
        }, timestamp=t0 + timedelta(minutes=1)),
        client.page("u1", "Shop", "Kaffee", {"url": "https://shop.example/kaffee", "zahl": 3},
                    timestamp=t0 + timedelta(minutes=2)),
        client.screen("u1", "App", "Basket", {"items": 2}, timestamp=t0 + timedelta(minutes=3)),
        client.group("u1", "firma-9", {"name": "Firma GmbH", "employees": 40},
                     timestamp=t0 + timedelta(minutes=4)),
        client.alias("anon-old", "u1", timestamp=t0 + timedelta(minutes=5)),
        client.track(None, "Newsletter Viewed", {"issue": "Mai", "unicode": "Grüße ☕"},
                     anonymous_id="anon-2", timestamp=t0 + timedelta(minutes=6)),
    ]
    assert all(ok for ok, _ in sent)
    return [msg for _, msg in sent]


def _js(value: Any) -> Any:
    return json.loads(value) if value is not None else None


@pytest.mark.parametrize("gzip", [False, True])
def test_official_segment_client_delivers_unchanged(tmp_path: Path, gzip: bool) -> None:
    from segment.analytics import Client

    store = tmp_path / "xrm.duckdb"
    server = ServerProcess(store, free_port(), ENV).start()
    errors: list[Any] = []
    try:
        client = Client(KEY, host=server.url, gzip=gzip, on_error=lambda e, batch: errors.append(e),
                        upload_interval=0.05, max_retries=2)
        messages = _segment_calls(client)
        client.flush()
        # A wrong key reaches the client as Segment's error shape: {code, message}.
        bad = Client("not-a-key", host=server.url, gzip=gzip, on_error=lambda e, b: errors.append(e),
                     upload_interval=0.05, max_retries=0)
        bad.track("u2", "Ignored", timestamp=datetime(2024, 5, 1, tzinfo=UTC))
        bad.flush()
        client.shutdown()
        bad.shutdown()
    finally:
        server.stop()
    assert [(e.status, e.code) for e in errors] == [(401, "invalid_write_key")]
    with Store.open(store) as s:
        rows = s.sql(
            "SELECT message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, "
            "ts, source, properties, traits, context FROM events"
        ).fetchall()
        resolved = s.sql("SELECT count(*) FROM event_profiles").fetchall()[0][0]
        lines = s.sql("SELECT order_id, product_id, price, quantity FROM order_lines").fetchall()
    stored = {r[0]: r for r in rows}
    assert set(stored) == {m["messageId"] for m in messages}
    for m in messages:
        r = stored[m["messageId"]]
        want_ts = datetime.fromisoformat(m["timestamp"]).astimezone(UTC).replace(tzinfo=None)
        assert r[1:9] == (
            m["type"], m.get("event"), m.get("name"), m.get("userId"), m.get("anonymousId"),
            m.get("groupId"), m.get("previousId"), want_ts,
        ), m["type"]
        assert r[9] == "python-sdk"
        assert _js(r[10]) == (m.get("properties") or None)
        assert _js(r[11]) == (m.get("traits") or None)
        assert _js(r[12]) == m["context"]  # with the library the client added
    assert resolved == len(messages)
    assert lines == [("A-1", "p1", 9.99, 2.0)]


def test_sigkill_mid_load_loses_no_acknowledged_event_and_stores_none_twice(tmp_path: Path) -> None:
    store = tmp_path / "xrm.duckdb"
    port = free_port()
    server = ServerProcess(store, port, ENV).start()
    n_senders, n_batches, per_batch = 4, 30, 40
    acked: set[str] = set()
    lock = threading.Lock()
    failures: list[str] = []

    def batch_of(sender: int, b: int) -> dict[str, Any]:
        return {"batch": [
            {"type": "track", "event": "Product Viewed", "messageId": f"s{sender}-b{b}-e{e}",
             "userId": f"user-{(sender * 7 + b * 3 + e) % 50}",
             "anonymousId": f"anon-{(sender * 7 + b * 3 + e) % 50}-{e % 2}",
             "timestamp": "2024-05-01T12:00:00Z", "properties": {"b": b, "e": e}}
            for e in range(per_batch)
        ]}

    def sender(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10, auth=(KEY, "")) as http:
            for b in range(n_batches):
                body = batch_of(k, b)
                deadline = time.monotonic() + 120
                while True:  # the client retries until the server says 200
                    try:
                        if http.post("/v1/batch", json=body).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        failures.append(f"sender {k} batch {b} never acknowledged")
                        return
                    time.sleep(0.05)
                with lock:
                    acked.update(e["messageId"] for e in body["batch"])

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(n_senders)]
    for t in threads:
        t.start()
    try:
        while len(acked) < n_senders * per_batch * 5:  # a few batches in: the load is running
            time.sleep(0.01)
        server.kill()
        with lock:
            acked_before_kill = set(acked)
        time.sleep(0.5)  # the senders keep retrying against a dead port
        server = ServerProcess(store, port, ENV).start()
        for t in threads:
            t.join(timeout=300)
    finally:
        server.stop()
    assert not failures
    sent = {f"s{k}-b{b}-e{e}" for k in range(n_senders) for b in range(n_batches) for e in range(per_batch)}
    assert acked == sent
    with Store.open(store) as s:
        ids = [r[0] for r in s.sql("SELECT message_id FROM events").fetchall()]
        resolved = s.sql("SELECT count(*), count(DISTINCT message_id) FROM event_profiles").fetchall()[0]
        users = s.sql(
            "SELECT count(DISTINCT profile_id) FROM identifiers WHERE id_type = 'user_id'"
        ).fetchall()[0][0]
    assert acked_before_kill <= set(ids)  # nothing acknowledged was lost
    assert len(ids) == len(set(ids)) == len(sent) and set(ids) == sent  # none stored twice
    assert resolved == (len(sent), len(sent))  # each event resolved once, after retries too
    assert users == 50  # retried events made no second profile for anyone
