"""Issue 9: the rule pass's Python objects are freed before the write, the step's memory peak."""

from __future__ import annotations

import gc

import xrm.identify._resolve as resolve_mod
from xrm.identify import resolve_identities
from xrm.identify._components import Link


def test_rule_pass_links_are_freed_before_the_write(store, seed, monkeypatch):
    write = resolve_mod._write
    alive: list[int] = []

    def counting_write(*args, **kwargs):
        gc.collect()
        alive.append(sum(isinstance(o, Link) for o in gc.get_objects()))
        return write(*args, **kwargs)

    monkeypatch.setattr(resolve_mod, "_write", counting_write)
    # One tablet used by two user ids breaks the user_id limit: the rule pass runs.
    seed.record("web:1", first_name="Anna", last_name="Schmidt", user_id="U1")
    seed.record("web:2", first_name="Ben", last_name="Schmidt", user_id="U2")
    seed.event("e1", "2024-01-01", "identify", user_id="U1", anonymous_id="tablet")
    seed.event("e2", "2024-01-02", "identify", user_id="U2", anonymous_id="tablet")
    summary = resolve_identities(store)
    assert summary["links_dropped"] == 1 and summary["nodes_in_rule_pass"] > 0
    assert alive == [0]
    # the rule pass's links still reach identity_links
    (n,), = store.sql("SELECT count(*) FROM identity_links WHERE status = 'dropped'").fetchall()
    assert n == 1
