"""The identities graph reads the events outside the run's transaction (issue 9): an event the
online path stores meanwhile, with identifiers the graph has not seen, keeps the profile the
online path gave it instead of losing it to the run's write (the next run places it)."""

from __future__ import annotations

from typing import Any

import xrm.identify._resolve as resolve_mod
from xrm.identify import resolve_identities


def test_an_event_stored_while_the_graph_is_built_keeps_its_profile(
    store: Any, seed: Any, monkeypatch: Any
) -> None:
    seed.record("web:1", first_name="Anna", last_name="Schmidt", email="anna@example.org", user_id="U1")
    seed.event("e1", "2024-01-01", "identify", user_id="U1", anonymous_id="tablet")
    resolve_identities(store)  # the first run: the later ones change only what changed
    pid = seed.event_profile("e1")
    build = resolve_mod._build_graph

    def online_write_meanwhile(cur: Any, *args: Any, **kwargs: Any) -> Any:
        out = build(cur, *args, **kwargs)
        seed.event("e9", "2024-01-09", "track", anonymous_id="phone-9")  # a new visitor's id
        store.sql("INSERT INTO event_profiles VALUES ('e9', ?)", [pid])  # as the event API's writer would
        return out

    monkeypatch.setattr(resolve_mod, "_build_graph", online_write_meanwhile)
    resolve_identities(store)
    assert seed.event_profile("e9") == pid and seed.event_profile("e1") == pid
    monkeypatch.undo()
    resolve_identities(store)  # the next run reads it: a visitor of its own
    assert seed.event_profile("e9") != pid
