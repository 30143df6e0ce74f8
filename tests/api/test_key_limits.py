"""Size limits per API key against the real app (uvicorn, real DuckDB file): a key held below the
server's 32 KB / 500 KB is answered 413 in the one error shape, whether the key comes in the
Authorization header (the body is cut at the key's limit) or as ``writeKey`` in the body (checked
once the key is known), per batch and per call inside a batch, gzip included; other keys keep the
server's limits; nothing of a refused request is stored. And the CLI that sets them."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from typer.testing import CliRunner

from xrm.api._keys import find_key, set_limits
from xrm.cli import app
from xrm.config import Settings
from xrm.store import Store

from .live import KEY, Live, bearer


def _event(mid: str, pad_bytes: int = 0) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "E", "messageId": mid,
            "timestamp": "2024-05-01T12:00:00Z", "properties": {"note": "x" * pad_bytes}}


def _too_large(r: httpx.Response, *needles: str) -> None:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["code"] == "payload_too_large" and set(body) >= {"code", "message"}, body
    for n in needles:
        assert n in body["message"], body["message"]


def test_a_key_held_below_the_server_limits(live: Live) -> None:
    small = live.new_key("small", "write", max_event_kb=2, max_batch_kb=4)
    post = live.client.post
    # One call: 3 KB is over the key's 2 KB, not over the server's 32 KB (another key sends it).
    _too_large(post("/v1/track", json=_event("s1", 3000), auth=(small, "")),
               "'small'", "2 KB", "--max-event-kb")
    assert post("/v1/track", json=_event("k1", 3000), auth=(KEY, "")).status_code == 200
    assert post("/v1/track", json=_event("s2", 500), headers=bearer(small)).status_code == 200
    # A batch: 3 calls of 1.5 KB are 4.6 KB, over the key's 4 KB per request.
    three = {"batch": [_event(f"b{i}", 1500) for i in range(3)]}
    _too_large(post("/v1/batch", json=three, auth=(small, "")), "4 KB", "--max-batch-kb")
    # ... also gzip-compressed (the limit is on the body as unpacked) ...
    packed = gzip.compress(json.dumps(three).encode())
    assert len(packed) < 1024
    _too_large(post("/v1/batch", content=packed, auth=(small, ""),
                    headers={"content-encoding": "gzip", "content-type": "application/json"}), "4 KB")
    # ... and with the key only in the body, where it is known after the body was read.
    _too_large(post("/v1/batch", json={**three, "writeKey": small}), "'small'", "4 KB")
    # One call inside a batch over the key's per-call limit, the batch under its batch limit.
    mixed = {"batch": [_event("m1"), _event("m2"), _event("m3", 2500)], "writeKey": small}
    _too_large(post("/v1/batch", json=mixed), "batch[2]", "2 KB")
    ok = {"batch": [_event("o1", 1000), _event("o2", 1000)]}
    assert post("/v1/batch", json=ok, auth=(small, "")).status_code == 200
    stored = {m for (m,) in live.rows("SELECT message_id FROM events")}
    assert stored == {"k1", "s2", "o1", "o2"}  # nothing of a refused request

    # Changed while the server runs: seen once the key cache is renewed (here: at once).
    set_limits(live.app.state.store, "small", max_event_kb=None, max_batch_kb=None)
    live.app.state.keys.invalidate()
    assert post("/v1/batch", json=three, auth=(small, "")).status_code == 200


def test_cli_sets_and_checks_key_limits(settings: Settings) -> None:
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        r = runner.invoke(app, ["--store", str(settings.store_path), "keys", *args])
        return r.exit_code, r.output

    code, out = cli("create", "big", "--max-event-kb", "64")
    assert code == 1 and "1 to 32 KB" in out and "Traceback" not in out
    code, out = cli("create", "web", "--max-event-kb", "8", "--max-batch-kb", "100", "--json")
    assert code == 0, out
    made = json.loads(out)
    assert (made["max_event_kb"], made["max_batch_kb"]) == (8, 100)
    code, out = cli("limits", "web", "--max-batch-kb", "50", "--json")
    assert code == 0, out
    assert (json.loads(out)["max_event_kb"], json.loads(out)["max_batch_kb"]) == (8, 50)
    code, out = cli("limits", "web", "--max-batch-kb", "501")
    assert code == 1 and "1 to 500 KB" in out
    code, out = cli("limits", "web", "--clear", "--json")
    assert code == 0 and json.loads(out)["max_batch_kb"] is None
    with Store.open(settings) as store:
        assert find_key(store, "web").max_event_kb is None
        assert store.schema_versions()["api"][0] == 2
