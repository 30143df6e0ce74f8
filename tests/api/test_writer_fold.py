"""The fold runs beside the commits (its own cursor and transaction), not between them.

A commit while a fold is open neither loses its counters nor has them counted twice; a commit
whose merge updates a row the open fold updated fails on DuckDB's conflict and is written again,
resolved, once the fold is done. Real store, real threads; the open fold is held by the test."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from xrm.api._writer import EventWriter, Outcome
from xrm.interact._timeline_resolve import fold_activity

from ._writer_support import sub


def _event(mid: str, **ids: str) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "messageId": mid, "timestamp": "2024-05-01T12:00:00Z", **ids}


def _one(w: EventWriter, sql: str) -> Any:
    assert w._cur is not None
    return w._cur.execute(sql).fetchall()[0][0]


def test_a_commit_during_an_open_fold_is_counted_once(writer: EventWriter) -> None:
    writer._write_group([sub(*(_event(f"m{k}", userId="u1", anonymousId="a1") for k in range(3)))])
    fold_cur = writer._fold_cur
    assert fold_cur is not None
    with writer._fold_lock:  # a fold in the middle of its transaction
        fold_cur.execute("BEGIN TRANSACTION")
        fold_activity(fold_cur)
        # Meanwhile a commit of known people: appends only, no conflict, not in the fold's snapshot.
        out = writer._write_group([sub(*(_event(f"n{k}", userId="u1", anonymousId="a1") for k in range(4)))])
        assert [o.added for o in out] == [4]
        fold_cur.execute("COMMIT")
    assert _one(writer, "SELECT count(*) FROM identity_activity") > 0  # the commit's, left for later
    writer.fold()
    assert _one(writer, "SELECT count(*) FROM identity_activity") == 0
    assert _one(writer, "SELECT n_seen FROM identifiers WHERE id_value = 'u1'") == 7
    assert writer.stats.fold_conflicts == 0


def test_a_merge_beside_a_fold_is_written_again_after_it(
    writer: EventWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xrm.api._writer as writer_module

    # Two profiles: an anonymous visitor, and a known user; their counters waiting to be folded.
    writer._write_group([sub(_event("m1", anonymousId="x1"), _event("m2", userId="u9"))])
    writer._write_group([sub(_event("m3", anonymousId="x1"), _event("m4", userId="u9"))])
    assert _one(writer, "SELECT count(DISTINCT profile_id) FROM identifiers") == 2
    inside, go_on = threading.Event(), threading.Event()

    def paused_fold(cur: Any) -> int:  # the real fold, held open before its COMMIT
        n = fold_activity(cur)
        inside.set()
        assert go_on.wait(60)
        return n

    monkeypatch.setattr(writer_module, "fold_activity", paused_fold)
    folding = threading.Thread(target=writer.fold)
    folding.start()
    assert inside.wait(60)
    # The visitor logs in while the fold is open: a merge, resolved one by one (in place).
    result: list[list[Outcome]] = []
    t = threading.Thread(target=lambda: result.append(
        writer._write_group([sub(_event("m5", userId="u9", anonymousId="x1"))])))
    t.start()
    for _ in range(1200):  # it rolled back and waits for the fold
        if writer.stats.fold_conflicts:
            break
        t.join(0.05)
    assert writer.stats.fold_conflicts == 1 and t.is_alive()
    go_on.set()
    folding.join(60)
    t.join(60)
    assert not t.is_alive() and [o.added for o in result[0]] == [1]
    s = writer.stats
    assert s.resolution_failures == 0 and s.unresolved == 0 and s.resolved_one_by_one == 1
    monkeypatch.setattr(writer_module, "fold_activity", fold_activity)
    writer.fold()
    # One profile; every event stored and resolved once; each identifier counted once per event.
    assert _one(writer, "SELECT count(DISTINCT profile_id) FROM identifiers") == 1
    assert _one(writer, "SELECT count(*) FROM event_profiles") == 5
    assert _one(writer, "SELECT count(*) FROM identity_activity") == 0
    assert _one(writer, "SELECT n_seen FROM identifiers WHERE id_value = 'x1'") == 3
    assert _one(writer, "SELECT n_seen FROM identifiers WHERE id_value = 'u9'") == 3
