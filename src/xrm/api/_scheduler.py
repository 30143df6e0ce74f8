"""The server runs scheduled campaigns: it owns the store, so the due ones are run from here.

Every ``schedule_poll_seconds`` (0 turns it off) a background task runs
:func:`xrm.interact.run_due_schedules` in a worker thread; a failing poll is logged and the next
one tries again. Each occurrence runs at most once, also across a killed server (the claims in
``campaign_schedule_runs``), so a poll that overlaps a restart cannot send a newsletter twice.
The same poll merges orders that arrived since into the needs profiles of the customers they touch
(:func:`xrm.differentiate.update_needs`; nothing to do until needs were built once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

__all__ = ["start", "stop"]

log = logging.getLogger("xrm.api.scheduler")


async def _poll(store: Any, every: float) -> None:
    from xrm.differentiate import update_needs
    from xrm.interact import run_due_schedules

    while True:
        try:
            for run in await asyncio.to_thread(_gated, run_due_schedules, store):
                log.info("scheduled campaign %s (due %s): %s",
                         run["schedule_id"], run["due_at"], run["status"])
        except Exception:  # the poller must outlive one bad poll; the error is in the log
            log.exception("running due scheduled campaigns failed; trying again in %s s", every)
        try:
            needs = await asyncio.to_thread(_gated, update_needs, store)
            if needs.get("touched"):
                log.info("needs profiles updated: %s customers from %s orders",
                         needs["touched"], needs["orders"])
        except Exception:
            log.exception("updating needs profiles failed; trying again in %s s", every)
        await asyncio.sleep(every)


def _gated(job: Callable[[Any], Any], store: Any) -> Any:
    with store.gate.shared():  # a release of index memory waits for the job (xrm.store._gate)
        return job(store)


async def start(app: FastAPI, store: Any) -> None:
    every = float(app.state.settings.schedule_poll_seconds)
    app.state.scheduler = asyncio.create_task(_poll(store, every)) if every > 0 else None


async def stop(app: FastAPI) -> None:
    task = getattr(app.state, "scheduler", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
