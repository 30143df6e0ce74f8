"""The checkpoint's detour: groups that come while the store is checkpointed are committed into a
landing file and moved into the store right after (xrm.api._landing).

Real store, real writer, real DuckDB files; a real process killed with SIGKILL for the restart.
The background job is held open with an event where a test needs the detour to last."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest

from xrm.api import _writer
from xrm.api._landing import leftover_files
from xrm.api._writer import EventWriter
from xrm.config import Settings
from xrm.store import Store

from ._writer_support import store_settings, sub
from .live import KEY, Live, bearer, serve_in_thread


def _event(mid: str, who: int) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": f"u{who}", "messageId": mid,
            "timestamp": "2024-05-01T12:00:00Z", "properties": {"sku": mid}}


def _group(g: int, n: int = 50) -> list[dict[str, Any]]:
    return [_event(f"g{g}-{k}", k % 10) for k in range(n)]


def _count(w: EventWriter, sql: str = "SELECT count(*) FROM events") -> int:
    assert w._cur is not None
    return int(w._cur.execute(sql).fetchall()[0][0])


def _hold(w: EventWriter) -> threading.Event:
    """A detour whose background job (the checkpoint) lasts until the returned event is set."""
    gate = threading.Event()
    w._landing = w._new_landing()
    w._bg_job = w._bg_executor.submit(_wait, gate)
    return gate


def _wait(gate: threading.Event) -> None:
    gate.wait(30)


def test_during_a_detour_groups_land_and_reach_the_store_after_it(writer: EventWriter) -> None:
    writer._write_group([sub(*_group(0))])
    gate = _hold(writer)
    outs = writer._write_or_land([sub(*_group(1)), sub(*_group(2))])
    assert [o.added for o in outs] == [50, 50] and not any(o.problems for o in outs)
    assert _count(writer) == 50  # acknowledged, not in the store yet
    assert writer.landed_for("u3") and not writer.landed_for("u99") and writer.landed_for()
    assert not writer.wait_settled(0.01)
    (path,) = leftover_files(writer.store.path)  # the landing file, beside the store
    gate.set()
    writer._settle(final=True)
    assert _count(writer) == 150
    assert _count(writer, "SELECT count(*) FROM event_profiles") == 150  # resolved when moved
    assert writer.wait_settled(0) and not writer.landed_for()
    assert not path.exists() and leftover_files(writer.store.path) == []
    s = writer.stats
    assert (s.groups_landed, s.events_landed, s.landing_moves) == (1, 100, 1)


def test_a_landed_retry_is_stored_once(writer: EventWriter) -> None:
    writer._write_group([sub(*_group(0))])
    gate = _hold(writer)
    writer._write_or_land([sub(*_group(0))])  # the client's retry of a group already stored
    writer._write_or_land([sub(*_group(1)), sub(*_group(1))])  # and one sent twice meanwhile
    gate.set()
    writer._settle(final=True)
    assert _count(writer) == 100
    assert writer.stats.events_duplicate == 100


def test_a_group_the_quick_path_cannot_check_waits_for_the_checkpoint(writer: EventWriter) -> None:
    gate = _hold(writer)
    bad = _event("bad-1", 1)
    bad["timestamp"] = "not a time"
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(writer._write_or_land([sub(bad)])))
    t.start()
    t.join(0.3)
    assert not done  # it waits: its problems come from the store's SQL, after the checkpoint
    gate.set()
    t.join(10)
    (out,) = done[0]
    assert out.problems and out.problems[0].field == "timestamp"
    assert writer.wait_settled(0)


def test_a_large_landing_is_moved_in_the_background_while_groups_land_anew(
    writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writer, "SWITCH_BACK", 60)
    gate = _hold(writer)
    writer._write_or_land([sub(*_group(1, 100))])
    first = writer._landing
    gate.set()
    writer._bg_job.result()  # type: ignore[union-attr]
    writer._settle()  # the checkpoint is done: 100 landed >= 60, handed to the background
    assert writer._landing is not None and writer._landing is not first
    writer._write_or_land([sub(*_group(2, 20))])  # lands in the fresh file (or, move done, ...)
    writer._settle(final=True)
    assert _count(writer) == 120 and writer.wait_settled(0)
    assert leftover_files(writer.store.path) == []


def test_under_steady_load_the_writer_checkpoints_between_moves_while_groups_land(
    writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writer, "SWITCH_BACK", 60)
    monkeypatch.setattr(_writer, "CHECKPOINT_MIN_WAL", 1)
    writer._write_group([sub(*_group(0, 50))])  # something in the log to checkpoint
    gate = _hold(writer)
    writer._write_or_land([sub(*_group(1, 100))])
    landing, checkpoints = writer._landing, writer.stats.checkpoints
    gate.set()
    writer._bg_job.result()  # type: ignore[union-attr]
    writer._checkpointed_at = float("-inf")  # api_checkpoint_s has passed since the last
    writer._settle()
    assert writer._landing is landing and _count(writer) == 50  # a checkpoint first, not the move
    writer._bg_job.result()  # type: ignore[union-attr]
    assert writer.stats.checkpoints == checkpoints + 1
    writer._settle()  # then the move, in the background, while groups land anew
    assert writer._landing is not landing
    writer._settle(final=True)
    assert _count(writer) == 150 and leftover_files(writer.store.path) == []


def test_when_more_lands_than_the_store_takes_in_the_writer_waits_for_the_move(
    writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writer, "MAX_LANDED", 80)
    gate = _hold(writer)  # the store's side (here: the checkpoint) has not caught up
    writer._write_or_land([sub(*_group(1, 100))])  # a full landing file
    done: list[Any] = []
    t = threading.Thread(target=_into, args=(done, writer._write_or_land, [sub(*_group(2, 10))]))
    t.start()
    t.join(0.3)
    assert not done  # back-pressure: the request waits, as it would for a checkpoint
    gate.set()
    t.join(10)
    assert done and done[0][0].added == 10
    writer._settle(final=True)
    assert _count(writer) == 110


def test_a_reader_waits_only_for_what_landed_before_it_came(writer: EventWriter) -> None:
    gate = _hold(writer)
    writer._write_or_land([sub(*_group(1))])
    first = writer._landing
    assert first is not None
    before = writer._landed_total  # what a read that comes now waits for
    writer._landing = writer._new_landing()  # as a hand-over does: the writer lands anew ...
    writer._write_or_land([sub(*_group(2))])
    writer._move(first)  # ... while the first file is moved
    assert writer._moved_up_to(before) and not writer._moved_up_to(writer._landed_total)
    assert writer.landed_for("u1") and writer.landed_for()  # the second file's
    gate.set()
    writer._settle(final=True)
    assert writer.wait_settled(0) and _count(writer) == 100


_CHILD = textwrap.dedent("""
    import json, sys, threading
    from pathlib import Path
    from xrm.api._writer import EventWriter, Submission
    from xrm.config import Settings
    from xrm.ingest._api_batch import quick_event
    from xrm.store import Store

    store = Store.open(Settings(store_path=Path(sys.argv[1]), memory_limit="1GB", threads=1))
    w = EventWriter(store)
    w._open()
    w._landing = w._new_landing()
    w._bg_job = w._bg_executor.submit(threading.Event().wait, 60)
    events = [{"type": "track", "event": "Viewed", "userId": f"u{k % 7}", "messageId": f"k-{k}",
               "timestamp": "2024-05-01T12:00:00Z"} for k in range(300)]
    texts = [json.dumps(e) for e in events]
    w._write_or_land([Submission("POST /v1/batch", "web", texts, events,
                                 [quick_event(e, t) for e, t in zip(events, texts)])])
    print("landed", flush=True)
    threading.Event().wait(60)
""")


def test_a_server_killed_during_a_detour_moves_its_landing_file_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "xrm.duckdb"
    Store.open(store_settings(path)).close()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "landed"
        os.kill(child.pid, signal.SIGKILL)  # acknowledged (committed in the landing file), not moved
    finally:
        child.wait(30)
    assert len(leftover_files(path)) == 1
    store = Store.open(store_settings(path))
    try:
        w = EventWriter(store)
        w._open()  # moves it before serving
        try:
            assert _count(w) == 300 and _count(w, "SELECT count(*) FROM event_profiles") == 300
            assert leftover_files(path) == []
        finally:
            w._close()
    finally:
        store.close()


def test_a_running_server_acknowledges_during_checkpoints_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writer, "CHECKPOINT_MIN_WAL", 1)
    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        write_keys={KEY: "webshop"}, api_checkpoint_s=0.05)
    for live in serve_in_thread(settings):
        sent = 0
        deadline = time.monotonic() + 60
        h: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(functools.partial(_post, live), range(sent // 100, sent // 100 + 8)))
            assert codes == [200] * 8
            sent += 800
            h = live.client.get("/healthz").json()["writer"]
            if h["detours"] and h["events_landed"] and sent >= 4_000:
                break
        # (Under a steady load the writer may stay in landing mode after its first detour.)
        assert h["detours"] >= 1 and h["events_landed"] > 0, h
        # A read waits for the landed events: a client reads what it wrote.
        token = live.new_key("reader", "read")
        r = live.client.get("/v1/profiles", params={"id_type": "user_id", "id_value": "u1"},
                            headers=bearer(token))
        assert r.status_code == 200 and r.json()["profile_ids"]
        assert _stored(live) == sent  # none lost, none twice


def _post(live: Live, g: int) -> int:
    return live.client.post("/v1/batch", json={"batch": _group(g, 100)}, auth=(KEY, "")).status_code


def _stored(live: Live) -> int:
    return int(live.rows("SELECT count(*) FROM events")[0][0])


def test_the_detour_is_a_setting(tmp_path: Path) -> None:
    store = Store.open(store_settings(tmp_path / "xrm.duckdb", api_checkpoint_detour=False))
    try:
        w = EventWriter(store)
        assert not w.detour
        w._open()
        try:
            w._write_group([sub(*_group(0))])
            w._checkpoint_now()  # on this thread: no landing file
            assert w._landing is None and w.stats.checkpoints == 1 and w.stats.detours == 0
        finally:
            w._close()
    finally:
        store.close()


def test_stop_moves_what_landed(tmp_path: Path) -> None:
    store = Store.open(store_settings(tmp_path / "xrm.duckdb"))

    async def main() -> None:
        w = EventWriter(store)
        await w.start()
        await w.submit(sub(*_group(0)))
        gate = await asyncio.get_running_loop().run_in_executor(w._executor, _hold, w)
        out = await w.submit(sub(*_group(1)))
        assert out.added == 50 and w.stats.events_landed == 50
        gate.set()
        await w.stop()

    try:
        asyncio.run(main())
        assert store.sql("SELECT count(*) FROM events").fetchall() == [(100,)]
        assert leftover_files(store.path) == []
    finally:
        store.close()


def test_a_decision_waits_for_its_persons_landed_events(api_settings: Settings) -> None:
    from .test_decide_api import _as_reader, _decide, _shop

    _shop(api_settings)
    for served in serve_in_thread(api_settings):
        live = _as_reader(served)
        writer: EventWriter = live.app.state.writer
        email = {"channel": "email"}
        assert "espresso" in {o["offerId"] for o in _decide(live, userId="u0", context=email)["offers"]}
        gate = writer._executor.submit(_hold, writer).result()  # on the writer's thread
        try:
            withdrawn = {"channel": "email", "purpose": "marketing", "granted": False}
            r = live.client.post("/v1/track", auth=(KEY, ""), json={  # an event the quick path takes
                "userId": "u0", "event": "Consent Updated", "properties": withdrawn,
                "messageId": "withdrawn-1", "timestamp": "2026-11-23T12:00:00Z"})
            assert r.status_code == 200 and writer.stats.events_landed == 1
            r = live.client.post("/v1/track", auth=(KEY, ""), json={  # nothing a decision reads
                "userId": "u4", "event": "Product Viewed", "messageId": "viewed-1",
                "timestamp": "2026-11-23T12:00:01Z"})
            assert r.status_code == 200 and writer.stats.events_landed == 2
            assert writer.landed_for("u0", read_by_decisions=True) and writer.landed_for("u4")
            assert not writer.landed_for("u4", read_by_decisions=True)
            assert _decide(live, userId="u4", context=email)["offers"] == []  # no wait
            done: list[dict[str, Any]] = []
            t = threading.Thread(target=_into, args=(done, _decide, live),
                                 kwargs={"userId": "u0", "context": email})
            t.start()
            t.join(0.5)
            assert not done  # the withdrawal is acknowledged but not in the store yet: it waits
        finally:
            gate.set()
        t.join(15)
        assert done and done[0]["offers"] == []  # and then sees it


def _into(out: list[Any], call: Any, *args: Any, **kwargs: Any) -> None:
    out.append(call(*args, **kwargs))


def test_an_encrypted_stores_landing_files_are_encrypted(tmp_path: Path) -> None:
    from xrm.store._crypto import is_encrypted

    store = Store.open(store_settings(tmp_path / "enc.duckdb", store_encryption_key="a key of the test 42",
                                      store_encryption_unsafe_crypto=True))
    try:
        w = EventWriter(store)
        w._open()
        try:
            gate = _hold(w)
            w._write_or_land([sub(*_group(1))])
            assert w._landing is not None and is_encrypted(w._cur, w._landing.name)  # type: ignore[arg-type]
            assert b"Viewed" not in w._landing.path.read_bytes()
            gate.set()
            w._settle(final=True)
            assert _count(w) == 50 and leftover_files(store.path) == []
        finally:
            w._close()
    finally:
        store.close()


def test_a_landed_event_that_breaks_a_rule_when_moved_keeps_only_itself_out(writer: EventWriter) -> None:
    gate = _hold(writer)
    landing = writer._landing
    assert landing is not None and writer._land_cur is not None
    good = [json.dumps(_event(f"ok-{k}", k)) for k in range(3)]
    bad = json.dumps({**_event("bad-1", 1), "timestamp": "not a time"})  # (the request side refuses it)
    landing.land(writer._land_cur, [("web", good[0]), ("web", bad), ("web", good[1]), ("web", good[2])])
    gate.set()
    writer._settle(final=True)
    assert _count(writer) == 3
    assert _count(writer, "SELECT count(*) FROM rejected_rows WHERE raw LIKE '%bad-1%'") == 1


def test_once_landed_events_cannot_be_moved_no_more_are_landed(
    writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that takes nothing in (here DuckDB out of memory: a real fault) must not make the writer
    pile up landing files it acknowledges: past MAX_LANDED stuck events a group is refused (503)."""
    from xrm.store._faults import store_fault

    monkeypatch.setattr(_writer, "MAX_LANDED", 80)
    writer._write_group([sub(*_group(0))])
    gate = _hold(writer)
    writer._write_or_land([sub(*_group(1, 100))])  # acknowledged, in the landing file
    assert writer._cur is not None
    gate.set()
    for mb in range(1, 65):  # the least limit DuckDB accepts now (no room left for the move)
        try:
            writer._cur.execute(f"SET memory_limit = '{mb}MB'")
            break
        except duckdb.OutOfMemoryException:
            continue
    writer._settle(final=True)  # the move fails: the file is kept to be moved later
    assert writer._unmoved and writer.stats.landing_move_failures == 1
    with pytest.raises(Exception) as refused:
        writer._write_or_land([sub(*_group(2, 10))])
    assert "could not be moved into the store" in str(refused.value)
    assert store_fault(refused.value) == "memory"  # the API answers with memory_limit's advice
    writer._cur.execute("SET memory_limit = '1GB'")
    outs = writer._write_or_land([sub(*_group(2, 10))])  # the client's retry: the move goes first
    assert outs[0].added == 10 and not writer._unmoved
    assert _count(writer) == 160 and not leftover_files(writer.store.path)
