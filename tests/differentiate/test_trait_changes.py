"""Trait changes between scoring runs (tier moves, P(alive) crossing the churn alert), and the
Interact trigger that reacts to them, on a real store of the CDNOW orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xrm.differentiate import build_purchase_summaries, score_value
from xrm.exceptions import ConfigError, InputError
from xrm.interact import TraitChanged
from xrm.interact._triggers import trigger_from_dict


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)


def test_changes_are_written_between_runs_and_fire_once(cdnow_store) -> None:
    store = cdnow_store
    build_purchase_summaries(store)
    first = score_value(store)
    assert first["trait_changes"] == {}  # a first scoring changes nothing
    before = dict(store.sql("SELECT customer_id, tier FROM customer_value").fetchall())
    p_before = dict(store.sql("SELECT customer_id, p_alive FROM customer_value").fetchall())
    # Another model and a wider MVC share move tiers and P(alive).
    second = score_value(store, model="paretonbd", mvc_share=0.15, churn_alert_p_alive=0.5)
    after = dict(store.sql("SELECT customer_id, tier FROM customer_value").fetchall())
    p_after = dict(store.sql("SELECT customer_id, p_alive FROM customer_value").fetchall())
    moved = {c for c in after if before[c] != after[c]}
    crossed = {c for c in p_after if (p_before[c] >= 0.5) != (p_after[c] >= 0.5)}
    assert moved and crossed
    rows = store.sql(
        "SELECT customer_id, trait, old_value, new_value, direction FROM trait_changes"
    ).fetchall()
    assert {c for c, t, *_ in rows if t == "tier"} == moved
    assert {c for c, t, *_ in rows if t == "p_alive"} == crossed
    for c, t, old, new, direction in rows:
        if t == "tier":
            assert (old, new) == (before[c], after[c])
        else:
            assert direction == ("down" if p_after[c] < 0.5 else "up")
    assert sum(second["trait_changes"].values()) == len(rows)

    cur = store.con.cursor()
    up_to_mvc = TraitChanged("tier", direction="up", to="MVC").fire(cur, _now())
    assert {c for c, _ in up_to_mvc} == {c for c in moved if after[c] == "MVC"}
    dropped = trigger_from_dict({"kind": "trait_changed", "trait": "p_alive"}).fire(cur, _now())
    assert {c for c, _ in dropped} == {c for c in crossed if p_after[c] < 0.5}
    assert len({k for _, k in dropped}) == 1  # one key per scoring run: a campaign fires once
    assert TraitChanged("p_alive").fire(cur, _now() + timedelta(days=30)) == []  # past the lookback
    with pytest.raises(InputError, match="direction"):
        TraitChanged("tier", direction="sideways").fire(cur, _now())


def test_the_alert_threshold_is_checked(cdnow_store) -> None:
    build_purchase_summaries(cdnow_store)
    with pytest.raises(ConfigError, match="churn_alert_p_alive"):
        score_value(cdnow_store, churn_alert_p_alive=1.5)
