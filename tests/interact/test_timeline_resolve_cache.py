"""The event writer's identifier→profile memory (IdentifierCache.owners) changes no result."""

from __future__ import annotations

from pathlib import Path

import pytest

from xrm.config import Settings
from xrm.identify import IdentityRules, resolve_event
from xrm.interact import IdentifierCache
from xrm.interact._timeline_resolve import StaleOwners, _InTransaction, resolve_events
from xrm.store import Store

from .test_timeline_resolve import _state, _stream


def test_bulk_with_one_cache_across_groups_equals_one_by_one(tmp_path: Path) -> None:
    events = _stream(11, 300)
    # Then the same people come back with their user ids only: groups with no one-by-one event,
    # where the memory of the groups before is used.
    events += [(f"r{k}", {"type": "track", "event": "E", "userId": ev["userId"]})
               for k, (_, ev) in enumerate(events) if "userId" in ev and ev["type"] != "alias"]
    bulk = Settings(store_path=tmp_path / "bulk.duckdb", memory_limit="1GB", threads=1)
    serial = Settings(store_path=tmp_path / "serial.duckdb", memory_limit="1GB", threads=1)
    cache = IdentifierCache(IdentityRules.for_settings(bulk))
    hits = 0
    with Store.open(bulk) as a, Store.open(serial) as b:
        for start in range(0, len(events), 20):
            group = events[start:start + 20]
            hits += len(cache.owners)
            with a.transaction() as cur:  # one cache for all groups, as in the writer
                summary = resolve_events(cur, bulk, group, cache, fresh_ids={m for m, _ in group})
            by_id = dict(group)
            with b.transaction() as cur:
                for mid in summary.order:
                    resolve_event(_InTransaction(cur, serial), {**by_id[mid], "messageId": mid})
        assert hits > 0  # the memory was used, not only filled
        got, want = _state(a), _state(b)
    for table in want:
        assert got[table] == want[table], table


def test_forgotten_after_a_rollback(tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "x.duckdb", memory_limit="1GB", threads=1)
    cache = IdentifierCache(IdentityRules.for_settings(settings))
    with Store.open(settings) as store:
        cur = store.con.cursor()
        cur.execute("BEGIN TRANSACTION")
        resolve_events(cur, settings, [("m1", {"type": "track", "userId": "u1"})], cache)
        assert cache.owners  # the new profile is remembered ...
        cur.execute("ROLLBACK")
        cache.forget_owners()  # ... until the caller says its transaction did not happen
        with store.transaction() as cur2:
            resolve_events(cur2, settings, [("m2", {"type": "track", "userId": "u1"})], cache)
        assert store.sql("SELECT count(*) FROM profiles").fetchall() == [(1,)]
        assert store.sql("SELECT profile_id FROM event_profiles").fetchall() == [(1,)]
        cur.close()


def test_a_stale_owner_is_caught_before_commit(tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "x.duckdb", memory_limit="1GB", threads=1)
    cache = IdentifierCache(IdentityRules.for_settings(settings))
    with Store.open(settings) as store:
        with store.transaction() as cur:
            resolve_events(cur, settings, [("m1", {"type": "track", "userId": "u1"})], cache)
        assert cache.owners == {("user_id", "u1"): 1}
        store.sql("DELETE FROM identifiers")  # the graph changes behind the cache (an erasure)
        cur = store.con.cursor()
        cur.execute("BEGIN TRANSACTION")
        with pytest.raises(StaleOwners, match="no longer held"):
            resolve_events(cur, settings, [("m2", {"type": "track", "userId": "u1"})], cache)
        cur.execute("ROLLBACK")
        cur.close()
        cache.forget_owners()
        with store.transaction() as cur:
            resolve_events(cur, settings, [("m2", {"type": "track", "userId": "u1"})], cache)
        (pid,), = store.sql("SELECT profile_id FROM event_profiles WHERE message_id = 'm2'").fetchall()
        assert store.sql("SELECT profile_id FROM identifiers").fetchall() == [(pid,)]
        assert pid != 1
