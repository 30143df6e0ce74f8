"""The GDPR export reads a person's events once, by their ids, and still exports every one of them:
those found by an id the last hop of the search found, and those resolved to their profile that name
none of their ids (the only ones read by message id)."""

from __future__ import annotations

from typing import Any

from xrm.interact import export_profile
from xrm.store import Store


class _Logged:
    """The store, with every statement its cursors run written down."""

    def __init__(self, store: Store) -> None:
        self.store, self.settings = store, store.settings
        self.log: list[tuple[str, Any]] = []
        outer = self

        class Con:
            def cursor(self) -> Any:
                return _Cursor(store.con.cursor(), outer.log)

        self.con = Con()


class _Cursor:
    def __init__(self, cur: Any, log: list[tuple[str, Any]]) -> None:
        self._cur, self._log = cur, log

    def execute(self, sql: str, params: Any = None) -> Any:
        self._log.append((" ".join(sql.split()), params))
        return self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def _event(store: Store, mid: str, user: str | None = None, anon: str | None = None,
           prev: str | None = None) -> None:
    store.sql("INSERT INTO events (message_id, type, event, user_id, anonymous_id, previous_id, ts, "
              "properties) VALUES (?, 'track', 'Seen', ?, ?, ?, TIMESTAMP '2026-01-01', ?)",
              [mid, user, anon, prev, f'{{"n": "{mid}"}}']).fetchall()


def _holds(store: Store, profile: int, *ids: tuple[str, str]) -> None:
    for t, v in ids:
        store.sql("INSERT INTO identifiers (id_type, id_value, profile_id, n_seen) VALUES (?, ?, ?, 1)",
                  [t, v, profile]).fetchall()


def test_every_event_of_the_person_once(store: Store) -> None:
    # A chain the search follows hop by hop: u1's event names a1; profile 7 holds a1 and x2; x2's
    # event names x3; profile 8 holds x3 and x4; x4's event names x5; profile 9 holds x5 and x6. The
    # search stops after three hops: x6 was found last and its event is read after it.
    _event(store, "e-u1", user="u1", anon="a1")
    _event(store, "e-x2", anon="x3", prev="x2")
    _event(store, "e-x4", anon="x4", prev="x5")
    _event(store, "e-x6", anon="x6")  # not resolved yet: the person's by its anonymous id
    _event(store, "e-none")  # no ids: resolved to profile 7
    _event(store, "e-other", user="u2", anon="a2")
    _holds(store, 7, ("user_id", "u1"), ("anonymous_id", "a1"), ("anonymous_id", "x2"))
    _holds(store, 8, ("anonymous_id", "x3"), ("anonymous_id", "x4"))
    _holds(store, 9, ("anonymous_id", "x5"), ("anonymous_id", "x6"))
    _holds(store, 10, ("user_id", "u2"), ("anonymous_id", "a2"))
    store.sql("INSERT INTO event_profiles VALUES ('e-u1', 7), ('e-none', 7), ('e-x2', 8), ('e-x4', 8), "
              "('e-other', 10)").fetchall()

    logged = _Logged(store)
    got = export_profile(logged, "u1")  # type: ignore[arg-type]
    events = {r["message_id"]: r for r in got["tables"]["events"]}
    assert set(events) == {"e-u1", "e-x2", "e-x4", "e-x6", "e-none"}
    assert events["e-x6"]["properties"] == {"n": "e-x6"}  # JSON comes back parsed, as for other tables
    assert len(got["tables"]["events"]) == len(events)  # each once
    # read by message id: only the event that names none of the ids
    by_mid = [(sql, params) for sql, params in logged.log if sql.startswith('SELECT * FROM "events"')]
    assert [(sql.split()[5], params) for sql, params in by_mid] == [('"message_id"', {"event": ["e-none"]})]
    # the same rows as the export that also searches every table's text (it reads events the old way)
    also = export_profile(store, "u1", mentions=True)["tables"]["events"]
    assert sorted(also, key=lambda r: r["message_id"]) == sorted(events.values(),
                                                                 key=lambda r: r["message_id"])
    assert set(got["identifiers"]["anonymous_ids"]) >= {"a1", "x2", "x3", "x4", "x5", "x6"}
