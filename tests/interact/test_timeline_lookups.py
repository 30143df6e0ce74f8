"""The timeline reads a profile's rows by index look-ups, not by scanning tables that grow with the
store (the Customer 360 target: under 300 ms on a 1M-customer store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xrm.interact import timeline
from xrm.interact._snapshot import read_snapshot
from xrm.interact._timeline import _items, _person
from xrm.store import Store

PER_TABLE = ("events", "event_profiles", "identifiers", "consents")


def _fill(store: Store, people: int = 3000, events_each: int = 5) -> None:
    """``people`` profiles with a user id, an anonymous id, resolved events and a consent each."""
    store.sql(f"""
        INSERT INTO events (message_id, type, event, user_id, anonymous_id, ts)
        SELECT 'm' || i, 'track', 'Product Viewed', 'u' || (i // {events_each}),
               'a' || (i // {events_each}), TIMESTAMP '2026-01-01' + to_seconds(i)
        FROM range({people * events_each}) r(i)
    """).fetchall()
    store.sql(f"INSERT INTO event_profiles SELECT 'm' || i, i // {events_each} + 1 "
              f"FROM range({people * events_each}) r(i)").fetchall()
    store.sql(f"""
        INSERT INTO identifiers (id_type, id_value, profile_id, n_seen)
        SELECT t, v || p, p + 1, 1 FROM range({people}) r(p),
               (VALUES ('user_id', 'u'), ('anonymous_id', 'a')) k(t, v)
    """).fetchall()
    store.sql(f"INSERT INTO profiles (profile_id, status, created_at, updated_at) "
              f"SELECT p + 1, 'active', now(), now() FROM range({people}) r(p)").fetchall()
    store.sql(f"""
        INSERT INTO consents (customer, channel, purpose, status, source, given_at)
        SELECT 'u' || p, 'email', 'marketing', 'granted', 'test', TIMESTAMP '2026-02-01'
        FROM range({people}) r(p)
    """).fetchall()


def _scans(node: dict[str, Any], out: list[tuple[str, str]]) -> list[tuple[str, str]]:
    info = node.get("extra_info", {})
    if node.get("type") == "TABLE_SCAN":
        out.append((str(info.get("Table", "")).rsplit(".", 1)[-1], str(info.get("Type", ""))))
    for child in node.get("children", []):
        _scans(child, out)
    return out


def _profiled(cur: Any, sql: str, params: Any, tmp: Path) -> list[tuple[str, str]]:
    out = tmp / "profile.json"
    cur.execute("PRAGMA enable_profiling = 'json'")
    cur.execute(f"PRAGMA profiling_output = '{out}'")
    cur.execute(sql, params).fetchall()
    cur.execute("PRAGMA disable_profiling")
    scans: list[tuple[str, str]] = []
    for node in json.loads(out.read_text())["operator"]:
        _scans(node, scans)
    return scans


def test_a_profiles_rows_are_read_by_index(store: Store, tmp_path: Path) -> None:
    _fill(store)
    pid = 1234
    # besides its 5 events by user id: one unresolved with only its anonymous id (read by anonymous id)
    # and one resolved to it that names neither id (read by message id): all three look-ups run
    store.sql("INSERT INTO events (message_id, type, event, user_id, anonymous_id, ts) VALUES "
              "('anon-only', 'page', 'Home', NULL, 'a1233', TIMESTAMP '2026-03-01'), "
              "('no-ids', 'track', 'Call', NULL, NULL, TIMESTAMP '2026-03-02')").fetchall()
    store.sql("INSERT INTO event_profiles VALUES ('no-ids', ?)", [pid]).fetchall()
    page = timeline(store, pid, limit=50)
    assert {i.item_id for i in page.items if i.kind == "event"} == {
        *(f"m{i}" for i in range(5 * 1233, 5 * 1234)), "anon-only", "no-ids"}
    assert [i.kind for i in page.items].count("consent") == 1
    with read_snapshot(store) as cur:
        person = _person(cur, pid)
        assert (person["keep_a"], person["em"]) == (["anon-only"], ["no-ids"])
        scans = _profiled(cur, f"{_items(person)} SELECT * FROM items ORDER BY ts DESC LIMIT 51",
                          person, tmp_path)
        for sql, params in (
            ("SELECT id_type, id_value FROM identifiers WHERE profile_id = ?", [pid]),
            ("SELECT message_id FROM event_profiles WHERE profile_id = ?", [pid]),
            ("SELECT message_id FROM events WHERE user_id IN (SELECT unnest(?))", [person["uids"]]),
        ):
            scans += _profiled(cur, sql, params, tmp_path)
    read = {t for t, _ in scans}
    assert {"events", "event_profiles", "identifiers", "consents"} <= read
    full = [(t, kind) for t, kind in scans if t in PER_TABLE and kind != "Index Scan"]
    assert not full, f"scans that grow with the store: {full}"
