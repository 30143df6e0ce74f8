"""Bulk online resolution gives exactly what identify's resolve_event gives, event by event."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from xrm.config import Settings
from xrm.identify import resolve_event
from xrm.interact._timeline_resolve import _InTransaction, resolve_events
from xrm.store import Store


def _stream(seed: int, n: int) -> list[tuple[str, dict[str, Any]]]:
    """Visitors coming back, logging in, sharing a device, aliasing, giving e-mails and cards."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        person = rng.randrange(40)
        anon = f"anon-{person}-{rng.randrange(3)}" if rng.random() < 0.85 else f"anon-{rng.randrange(60)}"
        ev: dict[str, Any] = {"type": rng.choice(["track", "page", "identify", "track"])}
        if rng.random() < 0.9:
            ev["anonymousId"] = anon
        if rng.random() < 0.5 or "anonymousId" not in ev:
            ev["userId"] = f"user-{person}"
        if ev["type"] == "identify" and rng.random() < 0.6:
            ev["traits"] = {"email": f"P{person % 30}@Mail.de ", "loyalty_card": f"{person:04d}-77"}
        if rng.random() < 0.05:
            ev = {"type": "alias", "previousId": anon, "userId": f"user-{rng.randrange(40)}"}
        if rng.random() < 0.03:
            ev = {"type": "track", "anonymousId": "undefined"}  # blocked: no usable identifier
        out.append((f"m{k}", ev))
    return out


def _state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    q = {
        "event_profiles": "SELECT * FROM event_profiles ORDER BY 1",
        "profiles": "SELECT profile_id, status, merged_into, n_identifiers FROM profiles ORDER BY 1",
        "identifiers": "SELECT id_type, id_value, profile_id, n_seen FROM identifiers ORDER BY 1, 2",
        "evidence": "SELECT * FROM profile_evidence ORDER BY ALL",
        "links": "SELECT type_a, value_a, type_b, value_b, status, occurrence, reason FROM identity_links "
                 "ORDER BY ALL",
        "merges": "SELECT action, profile_id, other_profile_id, reason FROM merge_log ORDER BY ALL",
    }
    return {k: store.sql(v).fetchall() for k, v in q.items()}


def test_bulk_equals_one_by_one(tmp_path: Path) -> None:
    events = _stream(7, 240)
    bulk = Settings(store_path=tmp_path / "bulk.duckdb", memory_limit="1GB", threads=1)
    serial = Settings(store_path=tmp_path / "serial.duckdb", memory_limit="1GB", threads=1)
    totals = {"known": 0, "new": 0, "one_by_one": 0, "unresolved": 0}
    with Store.open(bulk) as a, Store.open(serial) as b:
        for start in range(0, len(events), 30):
            group = events[start:start + 30]
            with a.transaction() as cur:
                summary = resolve_events(cur, bulk, group)
            for key in totals:
                totals[key] += getattr(summary, key)
            by_id = dict(group)
            with b.transaction() as cur:  # one commit per group, as above; the logic is identify's
                for mid in summary.order:
                    resolve_event(_InTransaction(cur, serial), {**by_id[mid], "messageId": mid})
        # Each path was taken, so the comparison covers them all.
        assert min(totals.values()) > 0, totals
        print(totals)
        got, want = _state(a), _state(b)
        for table in want:
            assert got[table] == want[table], table
        # Every event with a usable identifier has its profile.
        assert len(got["event_profiles"]) == len(events) - totals["unresolved"]


def test_resolving_again_changes_nothing(tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "x.duckdb", memory_limit="1GB", threads=1)
    events = _stream(3, 60)
    with Store.open(settings) as store:
        with store.transaction() as cur:
            first = resolve_events(cur, settings, events)
        before = _state(store)
        with store.transaction() as cur:
            again = resolve_events(cur, settings, events)  # a client's retry
        assert first.order and again.order == ()
        assert _state(store) == before
