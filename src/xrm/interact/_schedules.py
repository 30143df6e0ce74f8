"""Scheduled campaigns: a saved campaign definition that runs every N hours or days.

A weekly newsletter, a monthly one-to-one offer mailing, a daily check of a trigger. Each
schedule keeps its campaign's definition (what ``campaign_from_dict`` reads, so only file-sayable
campaigns), an interval and the next due time. :func:`run_due_schedules` runs those that are due;
``xrm serve`` calls it every ``schedule_poll_seconds`` (it owns the store), and without a server
``xrm campaign due`` does, e.g. from cron.

Each occurrence runs at most once, also when the process is killed. An occurrence is first
*claimed* (a ``campaign_schedule_runs`` row, keyed by schedule and due time, committed together
with the advanced ``next_run_at``), then the campaign runs (its decisions and messages commit
together: the transactional outbox), then the claim is marked done with the run's id. A claim
found still ``running`` later is settled by looking for the campaign run it started: found →
done; not found → the run never committed, so it runs now. Missed occurrences (the server was
down for three days of a daily schedule) are not replayed one by one: the schedule runs once and
moves on to its next time in the future, so nobody gets three copies of one newsletter.

    >>> sid = schedule_campaign(store, definition, every=timedelta(days=7))  # doctest: +SKIP
    >>> run_due_schedules(store)  # doctest: +SKIP
    [{'schedule_id': 'weekly-news', 'due_at': ..., 'status': 'done', 'run_id': 'run-...'}]
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from xrm.exceptions import InputError, NotFound
from xrm.interact._campaigns import campaign_from_dict, run_campaigns
from xrm.interact._clock import utc

__all__ = [
    "list_schedules",
    "parse_interval",
    "remove_schedule",
    "run_due_schedules",
    "schedule_campaign",
    "set_schedule_enabled",
]

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MIN_INTERVAL = timedelta(minutes=5)  # shorter belongs in a trigger, not a schedule


def parse_interval(text: str) -> timedelta:
    """``"30m"``, ``"12h"``, ``"1d"``, ``"2w"`` as a timedelta (at least 5 minutes)."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text or "")
    if not m:
        raise InputError(f"interval {text!r}: write a number and a unit m, h, d or w, e.g. 1d or 12h")
    every = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    if every < MIN_INTERVAL:
        raise InputError(f"interval {text!r} is under 5 minutes: use a triggered campaign for that")
    return every


def schedule_campaign(
    store: Any,
    definition: dict[str, Any],
    *,
    every: timedelta,
    start: datetime | None = None,
    schedule_id: str | None = None,
) -> str:
    """Save a schedule for a campaign definition; its first run is at ``start`` (default: now).

    The definition is checked now (a bad template or channel fails here, not at 3 a.m.).
    Re-scheduling the same id replaces its definition and interval.
    """
    campaign = campaign_from_dict(definition)
    if every < MIN_INTERVAL:
        raise InputError(f"every = {every}: a schedule runs at most every 5 minutes")
    sid = schedule_id or campaign.campaign_id
    first, now = utc(start), utc()
    with store.transaction() as tx:
        tx.execute(
            """
            INSERT INTO campaign_schedules (schedule_id, campaign_id, definition, every_seconds,
                                            next_run_at, enabled, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, true, ?, ?)
            ON CONFLICT (schedule_id) DO UPDATE SET campaign_id = excluded.campaign_id,
                definition = excluded.definition, every_seconds = excluded.every_seconds,
                next_run_at = excluded.next_run_at, enabled = true, updated_at = excluded.updated_at
            """,
            [sid, campaign.campaign_id, json.dumps(definition), int(every.total_seconds()), first, now, now],
        )
    return sid


def list_schedules(store: Any) -> list[dict[str, Any]]:
    """Every schedule with its interval, next due time and last run."""
    rows = store.sql(
        """
        SELECT s.schedule_id, s.campaign_id, s.every_seconds, s.next_run_at, s.enabled,
               r.due_at, r.status, r.run_id
        FROM campaign_schedules s
        LEFT JOIN (SELECT * FROM campaign_schedule_runs
                   QUALIFY row_number() OVER (PARTITION BY schedule_id ORDER BY due_at DESC) = 1) r
          USING (schedule_id)
        ORDER BY s.next_run_at, s.schedule_id
        """
    ).fetchall()
    return [
        {"schedule_id": sid, "campaign_id": cid, "every_seconds": every, "next_run_at": nxt,
         "enabled": enabled, "last_due_at": due, "last_status": status, "last_run_id": run_id}
        for sid, cid, every, nxt, enabled, due, status, run_id in rows
    ]


def _require(tx: Any, schedule_id: str) -> None:
    if not tx.execute("SELECT 1 FROM campaign_schedules WHERE schedule_id = ?", [schedule_id]).fetchall():
        raise NotFound(f"no schedule {schedule_id!r}; `xrm campaign schedules` lists them")


def set_schedule_enabled(
    store: Any, schedule_id: str, enabled: bool, now: datetime | None = None
) -> None:
    """Pause (``False``) or resume a schedule; resuming runs it no earlier than ``now``."""
    at = utc(now)
    with store.transaction() as tx:
        _require(tx, schedule_id)
        tx.execute(
            "UPDATE campaign_schedules SET enabled = ?, updated_at = ?, "
            "next_run_at = CASE WHEN ? THEN greatest(next_run_at, ?) ELSE next_run_at END "
            "WHERE schedule_id = ?",
            [enabled, at, enabled, at, schedule_id],
        )


def remove_schedule(store: Any, schedule_id: str) -> None:
    """Delete a schedule (its past runs stay in campaign_runs and the outbox)."""
    with store.transaction() as tx:
        _require(tx, schedule_id)
        tx.execute("DELETE FROM campaign_schedules WHERE schedule_id = ?", [schedule_id])


def _next_after(due: datetime, every: timedelta, now: datetime) -> datetime:
    """The first occurrence after ``now`` on the schedule's grid (missed ones are skipped)."""
    steps = max(1, int((now - due) / every) + 1)
    return due + steps * every


def _settle_running(store: Any) -> None:
    """Claims left ``running`` by a killed process: done if their campaign run committed."""
    stale = store.sql(
        "SELECT r.schedule_id, r.due_at, r.claimed_at, s.campaign_id FROM campaign_schedule_runs r "
        "JOIN campaign_schedules s USING (schedule_id) WHERE r.status = 'running'"
    ).fetchall()
    for sid, due, claimed, campaign_id in stale:
        found = store.sql(
            "SELECT run_id FROM campaign_runs WHERE campaign_id = ? AND started_at >= ? AND NOT dry_run "
            "AND run_id NOT IN (SELECT run_id FROM campaign_schedule_runs WHERE run_id IS NOT NULL) "
            "ORDER BY started_at LIMIT 1",
            [campaign_id, claimed],
        ).fetchall()
        with store.transaction() as tx:
            if found:
                tx.execute(
                    "UPDATE campaign_schedule_runs SET status = 'done', run_id = ?, finished_at = ? "
                    "WHERE schedule_id = ? AND due_at = ?", [found[0][0], utc(), sid, due],
                )
            else:  # the run never committed: run this occurrence again
                tx.execute(
                    "UPDATE campaign_schedule_runs SET status = 'claimed' "
                    "WHERE schedule_id = ? AND due_at = ?", [sid, due],
                )


def run_due_schedules(store: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Run every enabled schedule due at ``now`` (default: the clock) once; what ran, and how."""
    at = utc(now)
    _settle_running(store)
    with store.transaction() as tx:
        for sid, due, every in tx.execute(
            "SELECT schedule_id, next_run_at, every_seconds FROM campaign_schedules "
            "WHERE enabled AND next_run_at <= ?", [at],
        ).fetchall():
            tx.execute(
                "INSERT INTO campaign_schedule_runs (schedule_id, due_at, claimed_at, status) "
                "VALUES (?, ?, ?, 'claimed') ON CONFLICT DO NOTHING", [sid, due, at],
            )
            tx.execute(
                "UPDATE campaign_schedules SET next_run_at = ? WHERE schedule_id = ?",
                [_next_after(due, timedelta(seconds=every), at), sid],
            )
        claimed = tx.execute(
            "SELECT r.schedule_id, r.due_at, s.definition FROM campaign_schedule_runs r "
            "JOIN campaign_schedules s USING (schedule_id) WHERE r.status = 'claimed' ORDER BY r.due_at"
        ).fetchall()
    done = []
    for sid, due, definition in claimed:
        with store.transaction() as tx:
            tx.execute(
                "UPDATE campaign_schedule_runs SET status = 'running', claimed_at = ? "
                "WHERE schedule_id = ? AND due_at = ?", [at, sid, due],
            )
        try:
            (run,) = run_campaigns(store, [campaign_from_dict(json.loads(definition))], now=at)
        except Exception as exc:  # a failing campaign must not stop the others; the error is kept
            with store.transaction() as tx:
                tx.execute(
                    "UPDATE campaign_schedule_runs SET status = 'failed', finished_at = ?, error = ? "
                    "WHERE schedule_id = ? AND due_at = ?", [utc(), f"{type(exc).__name__}: {exc}", sid, due],
                )
            done.append({"schedule_id": sid, "due_at": due, "status": "failed", "error": str(exc)})
            continue
        with store.transaction() as tx:
            tx.execute(
                "UPDATE campaign_schedule_runs SET status = 'done', run_id = ?, finished_at = ? "
                "WHERE schedule_id = ? AND due_at = ?", [run.run_id, utc(), sid, due],
            )
        done.append({"schedule_id": sid, "due_at": due, "status": "done", "run_id": run.run_id,
                     "outcomes": run.outcomes})
    return done
