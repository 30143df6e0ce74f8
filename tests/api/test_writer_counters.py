"""The writer's deferred counters (identity_activity, folded in) and its bounded identifier cache.

A commit appends what it saw to ``identity_activity`` instead of updating ``identifiers``,
``profiles`` and ``profile_evidence`` in place; after a fold the store holds what updating in
place (``resolve_events`` without ``deferred``) gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xrm.api._writer import EventWriter
from xrm.identify import IdentityRules
from xrm.interact import IdentifierCache, resolve_events
from xrm.store import Store

from ._writer_support import store_settings, sub


def _event(mid: str, who: int, *, email: bool = False) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "track", "event": "Viewed", "userId": f"u{who}", "anonymousId": f"a{who}",
                          "messageId": mid, "timestamp": "2024-05-01T12:00:00Z"}
    if email:
        ev |= {"type": "identify", "traits": {"email": f"p{who}@kunden-mail.de"}}
        del ev["event"]
    return ev


def _groups() -> list[list[dict[str, Any]]]:
    """Six groups: new people, then the same people again (known), some with an e-mail."""
    return [[_event(f"g{g}-{k}", (g * 7 + k) % 15, email=k % 4 == 0) for k in range(10)] for g in range(6)]


STATE = {
    "identifiers": "SELECT id_type, id_value, profile_id, n_seen FROM identifiers ORDER BY 1, 2",
    "evidence": "SELECT * FROM profile_evidence ORDER BY ALL",
    "profiles": "SELECT profile_id, status, n_identifiers FROM profiles ORDER BY 1",
    "event_profiles": "SELECT * FROM event_profiles ORDER BY 1",
}


def test_folded_counters_equal_updating_in_place(writer: EventWriter, tmp_path: Path) -> None:
    groups = _groups()
    for g in groups:
        writer._write_group([sub(*g)])
    cur = writer._cur
    assert cur is not None
    (pending,), = cur.execute("SELECT count(*) FROM identity_activity").fetchall()
    assert pending > 0  # known people's counters were appended, not updated
    (stale,), = cur.execute("SELECT max(n_seen) FROM identifiers").fetchall()
    assert writer.fold() == pending
    assert cur.execute("SELECT count(*) FROM identity_activity").fetchall() == [(0,)]
    (folded,), = cur.execute("SELECT max(n_seen) FROM identifiers").fetchall()
    assert folded > stale
    # The same groups resolved by updating in place, in another store.
    settings = store_settings(tmp_path / "in_place.duckdb")
    cache = IdentifierCache(IdentityRules.for_settings(settings))
    with Store.open(settings) as other:
        for g in groups:
            with other.transaction() as tx:
                tx.execute("SET TimeZone = 'UTC'")
                pairs = [(e["messageId"], e) for e in g]
                resolve_events(tx, settings, pairs, cache, fresh_ids={m for m, _ in pairs})
        want = {k: other.sql(q).fetchall() for k, q in STATE.items()}
    got = {k: cur.execute(q).fetchall() for k, q in STATE.items()}
    assert got == want
    assert want["evidence"] and max(r[3] for r in want["evidence"]) > 1  # evidence counted up too
    (late,), = cur.execute("SELECT count(*) FROM profiles WHERE updated_at > created_at").fetchall()
    assert late > 0  # returning people's profiles were touched


def test_counters_left_by_a_stopped_writer_are_folded_at_start(tmp_path: Path) -> None:
    settings = store_settings(tmp_path / "xrm.duckdb")
    store = Store.open(settings)
    w = EventWriter(store)
    w._open()
    groups = _groups()[:3]
    for g in groups:
        w._write_group([sub(*g)])
    times = sum(e["userId"] == "u1" for g in groups for e in g)
    assert w._cur is not None
    (pending,), = w._cur.execute("SELECT count(*) FROM identity_activity").fetchall()
    assert pending > 0
    w._cur.close()  # gone without its closing fold (as a killed server)
    w._cur = None
    again = EventWriter(store)
    again._open()
    try:
        assert again.stats.folds == 1
        assert store.sql("SELECT count(*) FROM identity_activity").fetchall() == [(0,)]
        assert times > 1  # every time u1 was seen counted
        assert store.sql("SELECT n_seen FROM identifiers WHERE id_value = 'u1'").fetchall() == [(times,)]
    finally:
        again._close()
        store.close()


def test_an_erased_identifier_is_caught_and_not_brought_back(writer: EventWriter) -> None:
    writer._write_group([sub(_event("m1", 1), _event("m2", 2))])
    writer._write_group([sub(_event("m3", 1))])  # u1 known: counters appended
    cur = writer._cur
    assert cur is not None
    (old,), = cur.execute("SELECT profile_id FROM identifiers WHERE id_value = 'u1'").fetchall()
    # An erasure behind the writer's memory: u1's identifiers, profile and pending counters go.
    cur.execute("DELETE FROM identifiers WHERE profile_id = ?", [old])
    cur.execute("DELETE FROM identity_activity WHERE profile_id = ?", [old])
    out = writer._write_group([sub(_event("m4", 1))])
    assert out[0].added == 1 and not out[0].problems
    (new,), = cur.execute("SELECT profile_id FROM event_profiles WHERE message_id = 'm4'").fetchall()
    assert new != old  # the stale owner was caught before commit; u1 starts a new profile
    writer.fold()
    assert cur.execute("SELECT n_seen FROM identifiers WHERE id_value = 'u1'").fetchall() == [(1,)]


def test_the_identifier_cache_is_bounded_by_the_setting(tmp_path: Path) -> None:
    store = Store.open(store_settings(tmp_path / "xrm.duckdb", api_writer_cache=40))
    w = EventWriter(store)
    w._open()
    try:
        peak: dict[str, int] = {}
        for g in range(30):  # 300 different people, half of them with an e-mail
            w._write_group([sub(*(_event(f"b{g}-{k}", g * 10 + k, email=k % 2 == 0) for k in range(10)))])
            for name, n in w.stats.cache_entries.items():
                peak[name] = max(peak.get(name, 0), n)
        assert set(peak) == {"normalised", "visitors", "owners", "evidence"}
        assert all(20 <= n <= 40 for n in peak.values()), peak  # filled, and never past the bound
        assert w.cache_size == 40
        assert store.sql("SELECT count(DISTINCT profile_id) FROM event_profiles").fetchall() == [(300,)]
    finally:
        w._close()
        store.close()
    with pytest.raises(ValueError, match="at least 1"):
        IdentifierCache(IdentityRules.for_settings(store_settings(tmp_path / "x.duckdb")), 0)


def test_a_running_writer_folds_when_idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import xrm.api._writer as writer_module

    monkeypatch.setattr(writer_module, "FOLD_SECONDS", 0.2)
    store = Store.open(store_settings(tmp_path / "xrm.duckdb"))

    async def main() -> tuple[int, int]:
        w = EventWriter(store)
        await w.start()
        try:
            await w.submit(sub(_event("i1", 1)))
            await w.submit(sub(_event("i2", 1)))  # known: its counters appended
            folds = w.stats.folds
            for _ in range(50):  # no request comes: the writer folds on its own
                await asyncio.sleep(0.1)
                if w.stats.folds > folds:
                    break
            (left,), = store.sql("SELECT count(*) FROM identity_activity").fetchall()
            return w.stats.folds - folds, left
        finally:
            await w.stop()

    try:
        folded, left = asyncio.run(main())
        assert folded >= 1 and left == 0
        assert store.sql("SELECT n_seen FROM identifiers WHERE id_value = 'u1'").fetchall() == [(2,)]
    finally:
        store.close()
