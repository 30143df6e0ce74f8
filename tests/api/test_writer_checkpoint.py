"""The event writer's own checkpoints: between two group commits, on a timer or at a log size.

Real store, real writer and server: the write-ahead log shrinks, no acknowledged event is lost,
commits go on afterwards, and /healthz shows when and how long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xrm.api import _writer
from xrm.api._writer import EventWriter
from xrm.config import Settings
from xrm.store import Store

from ._writer_support import store_settings, sub
from .live import KEY, Live, serve_in_thread


def _event(mid: str, who: int) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": f"u{who}", "anonymousId": f"a{who}",
            "messageId": mid, "timestamp": "2024-05-01T12:00:00Z", "properties": {"sku": mid}}


def _group(g: int, n: int = 100) -> list[dict[str, Any]]:
    return [_event(f"g{g}-{k}", k % 40) for k in range(n)]


def _count(w: EventWriter) -> int:
    assert w._cur is not None
    return int(w._cur.execute("SELECT count(*) FROM events").fetchall()[0][0])


def test_a_checkpoint_empties_the_log_and_commits_go_on(writer: EventWriter) -> None:
    for g in range(10):
        writer._write_group([sub(*_group(g))])
    before = writer.wal_bytes()
    assert before > 100_000  # under DuckDB's own threshold: no checkpoint of its own yet
    assert writer.checkpoint()
    assert writer.wal_bytes() < before / 10
    s = writer.stats
    assert (s.checkpoints, s.checkpoints_skipped) == (1, 0)
    (last,) = s.last_checkpoints
    assert last["ms"] >= 0 and last["wal_mb"] == round(before / 2**20, 1) and last["at"].endswith("Z")
    out = writer._write_group([sub(*_group(10))])
    assert out[0].added == 100 and _count(writer) == 1_100


def test_a_checkpoint_beside_another_writing_transaction_loses_neither(writer: EventWriter) -> None:
    # /v1/decide's log and the reads' audit rows write on cursors of their own.
    for g in range(5):
        writer._write_group([sub(*_group(g))])
    other = writer.store.con.cursor()
    other.execute("BEGIN TRANSACTION")
    other.execute("INSERT INTO loads (load_id, file, sha256, kind, source, started_at, status) "
                  "VALUES ('other', 'x', 'x', 'events', 'api', now(), 'running')")
    writer.checkpoint()
    other.execute("COMMIT")
    writer._write_group([sub(*_group(5))])
    assert _count(writer) == 600
    assert other.execute("SELECT count(*) FROM loads WHERE load_id = 'other'").fetchall() == [(1,)]
    other.close()


def test_when_a_checkpoint_is_due(writer: EventWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    assert writer.checkpoint_every == 60.0  # the setting's default
    writer._write_group([sub(*_group(0, 20))])
    assert not writer.checkpoint_due()  # a few rows, and not 60 s yet
    monkeypatch.setattr(_writer, "CHECKPOINT_AT_WAL", 1)
    assert writer.checkpoint_due()  # the log's size, whatever the time
    monkeypatch.setattr(_writer, "CHECKPOINT_AT_WAL", 1 << 40)
    monkeypatch.setattr(_writer, "CHECKPOINT_MIN_WAL", 1)
    writer._checkpointed_at -= 61
    assert writer.checkpoint_due()  # the timer, with something in the log
    writer.checkpoint_every = 0
    assert not writer.checkpoint_due()  # off: DuckDB's own threshold only


def test_a_small_checkpoint_waits_for_a_short_queue(
    writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer._write_group([sub(*_group(0, 20))])
    assert writer.checkpoint_step == 0 and not writer.checkpoint_due()  # off by default
    writer.checkpoint_step = 1  # api_checkpoint_step_mib: the log holds a step's worth
    assert writer.checkpoint_due()  # nothing queued: a small checkpoint now
    writer._queued_events = writer.max_events  # a backlog: the requests queued would wait for it
    assert not writer.checkpoint_due()
    monkeypatch.setattr(_writer, "CHECKPOINT_AT_WAL", 1)
    assert writer.checkpoint_due()  # the backstop, whatever the queue
    writer.checkpoint_every = 0
    assert not writer.checkpoint_due()  # off: DuckDB's own threshold only


def test_the_step_is_a_setting(tmp_path: Path) -> None:
    store = Store.open(store_settings(tmp_path / "xrm.duckdb", api_checkpoint_step_mib=2))
    try:
        assert EventWriter(store).checkpoint_step == 2 << 20
    finally:
        store.close()


def test_the_queue_counts_the_events_waiting(tmp_path: Path) -> None:
    store = Store.open(store_settings(tmp_path / "xrm.duckdb"))

    async def main() -> tuple[int, int]:
        w = EventWriter(store)
        await w.start()
        try:
            pending = [asyncio.ensure_future(w.submit(sub(*_group(k, 30)))) for k in range(4)]
            await asyncio.sleep(0)  # all four queued, none taken yet
            queued = w._queued_events
            await asyncio.gather(*pending)
        finally:
            await w.stop()
        return queued, w._queued_events

    try:
        assert asyncio.run(main()) == (120, 0)
    finally:
        store.close()


def test_a_running_writer_checkpoints_between_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writer, "CHECKPOINT_MIN_WAL", 1)
    store = Store.open(store_settings(tmp_path / "xrm.duckdb", api_checkpoint_s=0.2))

    async def main() -> EventWriter:
        w = EventWriter(store)
        await w.start()
        try:
            for g in range(12):
                outs = await asyncio.gather(*(w.submit(sub(*_group(g * 3 + k, 50))) for k in range(3)))
                assert [o.added for o in outs] == [50, 50, 50]
                await asyncio.sleep(0.05)
        finally:
            await w.stop()
        return w

    try:
        w = asyncio.run(main())
        assert w.stats.checkpoints >= 2 and w.stats.groups >= 12
        assert store.sql("SELECT count(*) FROM events").fetchall() == [(1_800,)]
    finally:
        store.close()


@pytest.fixture
def checkpointing(tmp_path: Path) -> Iterator[Live]:
    yield from serve_in_thread(Settings(
        store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1, write_keys={KEY: "webshop"},
        api_checkpoint_s=0.5))


def test_healthz_shows_the_last_checkpoints(checkpointing: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writer, "CHECKPOINT_MIN_WAL", 1)
    live = checkpointing
    for g in range(4):
        r = live.client.post("/v1/batch", json={"batch": _group(g)}, auth=(KEY, ""))
        assert r.status_code == 200
    for _ in range(100):  # idle: the writer looks again every FOLD_SECONDS, and after each group
        h = live.client.get("/healthz").json()
        if h["writer"]["checkpoints"]:
            break
        live.client.post("/v1/batch", json={"batch": _group(100 + _)}, auth=(KEY, ""))
        time.sleep(0.1)
    w = h["writer"]
    assert w["checkpoints"] >= 1 and w["last_checkpoints"][-1]["ms"] >= 0
    assert w["slowest_checkpoints_ms"][0] >= w["last_checkpoints"][-1]["ms"]
    assert isinstance(h["wal_bytes"], int)
    assert live.rows("SELECT count(*) FROM events")[0][0] >= 400
