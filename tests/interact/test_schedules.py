"""Scheduled campaigns: due occurrences run once, missed ones are not replayed, claims survive a kill."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.interact.conftest import add_crowd

from xrm.exceptions import InputError, NotFound
from xrm.interact import (
    campaign_from_dict,
    list_schedules,
    parse_interval,
    remove_schedule,
    run_campaigns,
    run_due_schedules,
    schedule_campaign,
    set_schedule_enabled,
)
from xrm.store import Store

T0 = datetime(2026, 3, 2, 10, 0)  # a Monday, 11:00 in Berlin (outside quiet hours)
NEWS = {
    "id": "weekly-news", "name": "Weekly news", "channel": "email", "control_share": 0.0,
    "audience": "SELECT user_id AS customer FROM records",
    "template": {"subject": "News for {{ customer.first_name }}", "text": "Hallo {{ customer.first_name }}"},
}


def _runs(store: Store) -> int:
    return store.sql("SELECT count(*) FROM campaign_runs WHERE campaign_id = 'weekly-news'").fetchall()[0][0]


def _messages(store: Store) -> int:
    return store.sql("SELECT count(*) FROM messages").fetchall()[0][0]


def test_due_occurrence_runs_once_and_missed_ones_are_skipped(store: Store) -> None:
    add_crowd(store, "s", 12, granted_at=T0 - timedelta(days=30))
    assert schedule_campaign(store, NEWS, every=timedelta(days=7), start=T0) == "weekly-news"
    assert run_due_schedules(store, now=T0 - timedelta(hours=1)) == []
    (first,) = run_due_schedules(store, now=T0 + timedelta(minutes=1))
    assert first["status"] == "done" and first["outcomes"]["queued"] == 12
    assert _messages(store) == 12
    # The same occurrence is not run twice, however often the poller looks.
    assert run_due_schedules(store, now=T0 + timedelta(minutes=2)) == []
    assert _runs(store) == 1
    # Three weeks later, one run (not three), then the next time is in the future again.
    (late,) = run_due_schedules(store, now=T0 + timedelta(days=21, hours=2))
    assert late["due_at"] == T0 + timedelta(days=7)
    (row,) = list_schedules(store)
    assert row["next_run_at"] == T0 + timedelta(days=28) and row["last_status"] == "done"
    assert _runs(store) == 2


def _left_running(store: Store, prefix: str, n: int) -> None:
    """A daily schedule whose first occurrence a process claimed and started running, then died:
    the state such a process leaves in the store."""
    add_crowd(store, prefix, n, granted_at=T0 - timedelta(days=30))
    schedule_campaign(store, NEWS, every=timedelta(days=1), start=T0)
    store.sql(
        "INSERT INTO campaign_schedule_runs (schedule_id, due_at, claimed_at, status) "
        "VALUES ('weekly-news', ?, ?, 'running')", [T0, T0],
    ).fetchall()
    store.sql("UPDATE campaign_schedules SET next_run_at = ?", [T0 + timedelta(days=1)]).fetchall()


def test_a_claim_left_running_by_a_killed_process_is_settled(store: Store) -> None:
    _left_running(store, "k", 5)
    # ... and its campaign run had committed before it died.
    run_campaigns(store, [campaign_from_dict(NEWS)], now=T0)
    assert run_due_schedules(store, now=T0 + timedelta(minutes=5)) == []
    assert _runs(store) == 1 and _messages(store) == 5  # nobody got it twice
    (row,) = list_schedules(store)
    assert row["last_status"] == "done" and row["last_run_id"]


def test_a_claim_whose_run_never_committed_runs_again(store: Store) -> None:
    _left_running(store, "r", 4)  # ... and died before its campaign run committed
    (again,) = run_due_schedules(store, now=T0 + timedelta(minutes=5))
    assert again["due_at"] == T0 and again["status"] == "done"
    assert _runs(store) == 1 and _messages(store) == 4


def test_pause_resume_remove_and_a_failing_campaign(store: Store) -> None:
    add_crowd(store, "p", 3, granted_at=T0 - timedelta(days=30))
    schedule_campaign(store, NEWS, every=timedelta(days=1), start=T0)
    set_schedule_enabled(store, "weekly-news", False)
    assert run_due_schedules(store, now=T0 + timedelta(hours=1)) == []
    set_schedule_enabled(store, "weekly-news", True, now=T0 + timedelta(hours=1))
    assert len(run_due_schedules(store, now=T0 + timedelta(days=2))) == 1
    broken = {**NEWS, "id": "broken", "audience": "SELECT nope AS customer FROM records"}
    schedule_campaign(store, broken, every=timedelta(hours=6), start=T0)
    (failed,) = run_due_schedules(store, now=T0 + timedelta(days=2, minutes=1))
    assert failed["status"] == "failed" and "nope" in failed["error"]
    remove_schedule(store, "broken")
    with pytest.raises(NotFound, match="no schedule"):
        remove_schedule(store, "broken")


def test_bad_intervals_and_definitions_are_refused(store: Store) -> None:
    assert parse_interval("12h") == timedelta(hours=12) and parse_interval("2w") == timedelta(days=14)
    for bad in ("", "1 day", "1s", "3m"):
        with pytest.raises(InputError):
            parse_interval(bad)
    with pytest.raises(InputError, match="missing 'channel'"):
        schedule_campaign(store, {k: v for k, v in NEWS.items() if k != "channel"}, every=timedelta(days=1))


def test_cli_schedule_list_due_pause(isettings, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from xrm.cli import app

    with Store.open(isettings) as store:
        add_crowd(store, "c", 3, granted_at=datetime(2026, 1, 1))
    path = tmp_path / "news.json"
    path.write_text(json.dumps(NEWS), encoding="utf-8")
    base = ["--store", str(isettings.store_path), "campaign"]
    runner = CliRunner(env={"XRM_SECRET_KEY": "s" * 32})
    made = runner.invoke(app, [*base, "schedule", str(path), "--every", "1d", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["schedule_id"] == "weekly-news"
    (row,) = json.loads(runner.invoke(app, [*base, "schedules", "--json"]).stdout)
    assert row["enabled"] and row["every_seconds"] == 86_400
    ran = runner.invoke(app, [*base, "due", "--json"])
    assert ran.exit_code == 0, ran.output
    assert [r["status"] for r in json.loads(ran.stdout)] == ["done"]
    assert json.loads(runner.invoke(app, [*base, "due", "--json"]).stdout) == []
    assert runner.invoke(app, [*base, "pause", "weekly-news"]).exit_code == 0
    (row,) = json.loads(runner.invoke(app, [*base, "schedules", "--json"]).stdout)
    assert not row["enabled"]
    bad = runner.invoke(app, [*base, "schedule", str(path), "--every", "1 day"])
    assert bad.exit_code == 1 and "unit m, h, d or w" in bad.output
