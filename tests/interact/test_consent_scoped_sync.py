"""A customer's consent events are imported by look-ups of that customer alone (the Customer 360 page
reads one customer's consents; a scan of every event on each visit grew with the store), with the
same entries a sync of the whole store makes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.interact.conftest import add_event
from tests.plans import table_scans

from xrm.interact import consent_history, current_consents, has_consent, sync_consents
from xrm.interact._consent import _unsynced_of
from xrm.store import Store

T0 = datetime(2026, 3, 2, 10, 0)


def _consent_events(store: Store, user: str) -> None:
    add_event(store, "Consent Updated", user, T0,
              properties={"channel": "email", "purpose": "marketing", "granted": True})
    add_event(store, "Consent Updated", user, T0 + timedelta(days=1),
              properties={"channel": "email", "purpose": "marketing", "granted": False})  # a revocation
    add_event(store, "Consent Updated", user, T0 + timedelta(days=2),
              properties={"channel": "sms", "purpose": "marketing", "granted": False})  # a denial
    add_event(store, "Consent Updated", user, T0 + timedelta(days=3),
              properties={"channel": "fax", "purpose": "marketing", "granted": True})  # breaks a rule
    add_event(store, "Product Viewed", user, T0, properties={"channel": "email"})


def _entries(store: Store, user: str) -> list[tuple[Any, ...]]:
    """The customer's entries, less the event ids (random per store); each proof names its event."""
    rows = store.sql(
        "SELECT customer, channel, purpose, status, source, given_at, expires_at, proof, event_message_id "
        "FROM consents WHERE customer = ? ORDER BY given_at, seq", [user]).fetchall()
    assert all(json.loads(r[7])["event"] == r[8] for r in rows)
    return [r[:7] for r in rows]


def _plain(consents: Any) -> list[tuple[Any, ...]]:
    return [(c.channel, c.purpose, c.status, c.given_at, c.expires_at) for c in consents]


def test_scoped_sync_makes_the_entries_a_full_sync_makes(tmp_path: Path) -> None:
    from xrm.config import Settings

    stores = [Store.open(Settings(store_path=tmp_path / f"{n}.duckdb", memory_limit="1GB", threads=1))
              for n in ("scoped", "full")]
    try:
        for s in stores:
            for user in ("u1", "u2"):
                _consent_events(s, user)
        scoped, full = stores
        with scoped.transaction() as tx:
            got = sync_consents(tx, ["u1"])
        with full.transaction() as tx:
            everyone = sync_consents(tx)
        assert got["added"] == 3 and len(got["rejected"]) == 1
        assert everyone["added"] == 6
        assert _entries(scoped, "u1") == _entries(full, "u1")
        assert [e[3] for e in _entries(scoped, "u1")] == ["granted", "revoked", "denied"]
        assert _entries(scoped, "u2") == []  # not read: another customer's events wait for their turn
        # consent_history and has_consent sync their own customer: the same as after a full sync
        assert _plain(consent_history(scoped, "u2")) == _plain(consent_history(full, "u2"))
        assert not has_consent(scoped, "u2", "email", "marketing", at=T0 + timedelta(days=2))
        assert has_consent(scoped, "u2", "email", "marketing", at=T0 + timedelta(hours=1))
        now = [_plain(current_consents(s, "u1").values()) for s in (scoped, full)]
        assert now[0] == now[1]
        with scoped.transaction() as tx:  # nothing left to import, twice over
            assert sync_consents(tx, ["u1", "u2"])["added"] == 0
            assert sync_consents(tx)["added"] == 0
    finally:
        for s in stores:
            s.close()


def test_a_customers_sync_reads_by_index(store: Store, tmp_path: Path) -> None:
    store.sql("""
        INSERT INTO events (message_id, type, event, user_id, ts, properties)
        SELECT 'm' || i, 'track', 'Consent Updated', 'u' || (i // 3), TIMESTAMP '2026-01-01' + to_seconds(i),
               '{"channel": "email", "purpose": "marketing", "granted": true}'
        FROM range(30000) r(i)
    """).fetchall()
    store.sql("""
        INSERT INTO consents (customer, channel, purpose, status, source, given_at, event_message_id)
        SELECT 'u' || (i // 3), 'email', 'marketing', 'granted', 'test', TIMESTAMP '2026-01-01', 'm' || i
        FROM range(30000) r(i) WHERE i // 3 <> 77
    """).fetchall()
    seen: list[tuple[str, str]] = []
    con = store.con.cursor()

    class Profiled:  # each SELECT run once more under the profiler, to read its plan
        def execute(self, sql: str, params: Any = None) -> Any:
            seen.extend(table_scans(con, sql, params, tmp_path / "p.json"))
            return con.execute(sql, params)

    cur: Any = Profiled()
    rows = _unsynced_of(cur, ["u77"])
    assert [r[0] for r in rows] == ["m231", "m232", "m233"]
    assert {t for t, _ in seen} == {"events", "consents"}
    assert all(kind == "Index Scan" for _, kind in seen), seen
