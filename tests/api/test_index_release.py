"""Releasing DuckDB's index memory in a running server (api_index_memory_mb; xrm.store._gate):
the event writer detaches the store and attaches it again while events, profile reads and
decisions keep coming. Real server (uvicorn in a thread), real DuckDB file, real HTTP clients."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from xrm.api import _writer
from xrm.api._writer import EventWriter
from xrm.config import Settings
from xrm.store import Store

from ._writer_support import store_settings, sub
from .live import KEY, Live, bearer, serve_in_thread
from .test_decide_api import _shop


def _batch(g: int) -> dict[str, Any]:
    return {"batch": [{"type": "track", "event": "Viewed", "userId": f"u{k % 12}", "messageId": f"r{g}-{k}",
                       "timestamp": "2026-11-23T12:00:00Z", "properties": {"sku": f"s{k}"}}
                      for k in range(100)]}


def _keep_asking(live: Live, headers: dict[str, str], stop: threading.Event, codes: list[int],
                 decide: bool) -> None:
    with httpx.Client(base_url=live.url, timeout=30, headers=headers) as client:
        i = 0
        while not stop.is_set():
            user = f"u{i % 12}"
            if decide:
                r = client.post("/v1/decide", json={"userId": user, "context": {"channel": "email"}})
            else:
                r = client.get("/v1/profiles", params={"id_type": "user_id", "id_value": user})
                if r.status_code == 200 and r.json()["profile_ids"]:
                    r = client.get(f"/v1/profiles/{r.json()['profile_ids'][0]}/timeline")
            codes.append(r.status_code)
            i += 1


def test_a_server_releases_index_memory_under_mixed_load_and_loses_nothing(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writer, "CHECKPOINT_MIN_WAL", 1)
    monkeypatch.setattr(_writer, "RELEASE_EVERY_S", 0)
    # Past this budget after any look-up or insert: every checkpoint is a release, with a detour.
    settings = api_settings.model_copy(update={"api_checkpoint_s": 0.05, "api_index_memory_mb": 0.001})
    _shop(settings)
    for live in serve_in_thread(settings):
        assert live.app.state.store.releasable
        reader = bearer(live.new_key("reader", "read"))
        stop = threading.Event()
        reads: list[int] = []
        decisions: list[int] = []
        askers = [threading.Thread(target=_keep_asking, args=(live, reader, stop, codes, decide))
                  for codes, decide in ((reads, False), (reads, False), (decisions, True))]
        for t in askers:
            t.start()
        sent, h = 0, {}
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                r = live.client.post("/v1/batch", json=_batch(sent // 100), auth=(KEY, ""))
                assert r.status_code == 200, r.text
                sent += 100
                h = live.client.get("/healthz").json()["writer"]
                if h["releases"] >= 3 and len(reads) > 20:
                    break
        finally:
            stop.set()
            for t in askers:
                t.join(30)
        assert h["releases"] >= 3, h
        assert set(reads) == {200} and set(decisions) == {200}, (set(reads), set(decisions))
        assert h["last_releases"][-1]["ms"] > 0
        stored = live.rows(
            "SELECT count(*), count(DISTINCT message_id) FROM events WHERE message_id LIKE 'r%'")
        assert stored == [(sent, sent)]  # none lost, none twice


def test_a_request_that_reads_the_store_waits_for_a_release_and_ingestion_does_not(live: Live) -> None:
    store = live.app.state.store
    reader = bearer(live.new_key("reader", "read"))
    answered: list[int] = []

    def read() -> None:
        r = httpx.get(f"{live.url}/v1/profiles", params={"id_type": "user_id", "id_value": "u1"},
                      headers=reader, timeout=30)
        answered.append(r.status_code)

    with store.gate.alone(timeout=5) as ok:  # as the writer holds it while it releases
        assert ok
        t = threading.Thread(target=read)
        t.start()
        t.join(0.5)
        assert not answered  # held at the gate
        assert live.client.get("/healthz").status_code == 200  # passes
    t.join(15)
    assert answered == [200]


def test_the_release_is_a_setting(api_settings: Settings) -> None:
    for live in serve_in_thread(api_settings.model_copy(update={"api_index_memory_mb": 0})):
        assert not live.app.state.store.releasable  # the store opened as before: its own database
        assert live.app.state.writer.index_budget_mb == 0


def test_groups_land_while_the_store_is_detached_and_reach_it_after(tmp_path: Path) -> None:
    from xrm.store._crypto import catalog_name

    store = Store.open(store_settings(tmp_path / "xrm.duckdb"), attached=True)
    try:
        w = EventWriter(store)
        w._open()
        try:
            w._landing = w._new_landing()  # a detour: the background job (here: waiting) releases
            busy = threading.Event()
            w._bg_job = w._bg_executor.submit(busy.wait, 30)
            admin = store.con._con.cursor()  # type: ignore[attr-defined]
            admin.execute(f"DETACH {catalog_name(store.path)}")  # the release's window
            try:
                w._write_or_land([sub(*[_event(f"d-{k}") for k in range(30)])])
                assert w.stats.events_landed == 30
            finally:
                admin.execute(f"ATTACH '{store.path}' AS {catalog_name(store.path)}")
                busy.set()
            w._settle(final=True)
            assert store.sql("SELECT count(*) FROM events WHERE message_id LIKE 'd-%'").fetchall() == [(30,)]
        finally:
            w._close()
    finally:
        store.close()


def _event(mid: str) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": "u1", "messageId": mid,
            "timestamp": "2026-11-23T12:00:00Z"}


def test_a_request_leaves_the_gate_once_its_answer_starts() -> None:
    """A backup or an export is sent from a copy: its download must not hold a release off."""
    import warnings
    from types import SimpleNamespace

    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from xrm.api._gate import StoreGateMiddleware
    from xrm.store._gate import StoreGate

    gate = StoreGate()
    free_while_sending: list[bool] = []

    async def body() -> Any:
        yield b"first part"
        with gate.alone(timeout=0.5) as ok:  # the answer has started, the rest is still to send
            free_while_sending.append(ok)
        yield b"rest"

    async def download(request: Any) -> StreamingResponse:
        with gate.alone(timeout=0.2) as ok:  # inside the request, before its answer: held
            assert not ok
        return StreamingResponse(body())

    app = Starlette(routes=[Route("/v1/admin/backup", download, methods=["POST"])])
    app.add_middleware(StoreGateMiddleware)
    app.state.store = SimpleNamespace(gate=gate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's TestClient deprecation (see tests/web/conftest.py)
        from starlette.testclient import TestClient
    with TestClient(app) as client:
        assert client.post("/v1/admin/backup").content == b"first partrest"
    assert free_while_sending == [True]
