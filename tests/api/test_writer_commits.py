"""The event writer's group commit on a real store: retries found by the plain insert, the cap per commit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from xrm.api._writer import CHECKPOINT_WAL, EventWriter
from xrm.config import Settings
from xrm.store import Store

from ._writer_support import sub
from .live import KEY, Live


def _event(mid: str, user: str = "u1") -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "userId": user, "anonymousId": f"a-{user}",
            "messageId": mid, "timestamp": "2024-05-01T12:00:00Z", "properties": {"sku": mid}}


def _rows(w: EventWriter, sql: str) -> list[tuple[Any, ...]]:
    assert w._cur is not None
    return w._cur.execute(sql).fetchall()


def test_a_retry_in_a_group_is_stored_once_and_the_others_still_are(writer: EventWriter) -> None:
    first = writer._write_group([sub(_event("m0"), _event("m1"))])
    assert [o.added for o in first] == [2] and writer.stats.groups_with_retries == 0
    # m1 again (a client's retry) beside new events, and one id twice within the group.
    out = writer._write_group([sub(_event("m2")), sub(_event("m1"), _event("m3")),
                               sub(_event("m4"), _event("m4"))])
    assert [(o.added, o.problems) for o in out] == [(1, []), (1, []), (1, [])]
    assert writer.stats.groups_with_retries == 1  # the plain insert failed once; written again
    assert _rows(writer, "SELECT message_id, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        (f"m{k}", 1) for k in range(5)]
    assert _rows(writer, "SELECT count(DISTINCT message_id), count(*) FROM event_profiles") == [(5, 5)]
    # The failed attempt left nothing behind: every event of u1 counted once (once folded in).
    writer.fold()
    assert _rows(writer, "SELECT n_seen FROM identifiers WHERE id_value = 'u1'") == [(5,)]
    s = writer.stats
    assert (s.events_added, s.events_duplicate) == (5, 2)


def test_a_group_of_retries_only_adds_nothing(writer: EventWriter) -> None:
    writer._write_group([sub(_event("m0", "u7"))])
    again = writer._write_group([sub(_event("m0", "u7"))])
    assert again[0].added == 0 and not again[0].problems
    assert _rows(writer, "SELECT count(*) FROM events") == [(1,)]
    writer.fold()
    assert _rows(writer, "SELECT n_seen FROM identifiers WHERE id_value = 'u7'") == [(1,)]


def test_checkpoints_wait_for_a_larger_log(writer: EventWriter) -> None:
    (got,), = _rows(writer, "SELECT current_setting('checkpoint_threshold')")
    assert got.replace(".0", "").replace(" ", "") == CHECKPOINT_WAL


def test_a_commit_carries_at_most_the_cap(tmp_path: Path) -> None:
    store = Store.open(Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1))

    async def main() -> list[int]:
        w = EventWriter(store, max_events=3)
        await w.start()
        try:
            outs = await asyncio.gather(*(
                w.submit(sub(_event(f"r{k}-a", f"p{k}"), _event(f"r{k}-b", f"p{k}"))) for k in range(8)))
        finally:
            await w.stop()
        assert [o.added for o in outs] == [2] * 8
        return w.stats.group_sizes

    try:
        sizes = asyncio.run(main())
    finally:
        store.close()
    # Gathering stops once the cap is reached (a request is never split): 2 + 2 at most.
    assert sum(sizes) == 16 and max(sizes) <= 4 and len(sizes) >= 4


def test_retry_over_http_answers_200_and_counts_a_duplicate(live: Live) -> None:
    batch = {"batch": [_event("h1"), _event("h2")]}
    assert live.client.post("/v1/batch", json=batch, auth=(KEY, "")).status_code == 200
    batch = {"batch": [_event("h2"), _event("h3")]}  # h2 again: the client retried
    r = live.client.post("/v1/batch", json=batch, auth=(KEY, ""))
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert live.rows("SELECT message_id FROM events ORDER BY 1") == [("h1",), ("h2",), ("h3",)]
    stats = live.client.get("/healthz").json()["writer"]
    assert (stats["events_added"], stats["events_duplicate"], stats["groups_with_retries"]) == (3, 1, 1)
