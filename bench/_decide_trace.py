"""``python -m bench._decide_trace --store FILE --port N``: ``python -m xrm.api`` with a timeline of
where each ``POST /v1/decide`` spent its time, for finding the open loop's slow requests (issue 6).

Written as JSON to ``$XRM_DECIDE_TRACE`` when the server stops (SIGTERM; at the lifespan's end):
per request its start, the wait for the gate (``fresh``), the answer (decision and JSON) and the
two sends, all on ``time.perf_counter`` (CLOCK_MONOTONIC, the load generator's clock too, which
records each request's due time and latency with ``XRM_DECIDE_CLIENT_TRACE``); the garbage
collector's pauses (``gc.callbacks``); the decision-log flushes (and whether the write-ahead log
shrank: a checkpoint); the gate's reads; and the event loop's lag (a task that asks to wake every
millisecond: each time it woke over 2 ms late). ``XRM_TRACE_FLUSH_S``: another flush interval;
``XRM_TRACE_SETTLE_S``: another settle window (experiments only); ``XRM_TRACE_SWITCH_S``: another GIL
switch interval.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import runpy
import time
from typing import Any

from xrm.api import _decide, _decide_asgi

OUT = os.environ.get("XRM_DECIDE_TRACE", "/tmp/decide_trace.json")
now = time.perf_counter
trace: dict[str, list[Any]] = {"req": [], "gc": [], "flush": [], "gate": [], "lag": []}
_gc_at: list[float] = [0.0]


def _gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_at[0] = now()
    else:
        trace["gc"].append((_gc_at[0], now(), info["generation"], info["collected"]))


def _wal(path: str) -> int:
    try:
        return os.stat(path + ".wal").st_size
    except OSError:
        return -1


def _patch() -> None:
    from xrm.customize import Decider

    flush, read_gate, fresh, answer = Decider.flush, _decide._State._read_gate, _decide._State.fresh, \
        _decide_asgi.answer
    call = _decide_asgi.DecideFastPath.__call__
    current: dict[str, float] = {}

    def t_flush(self: Any) -> int:
        wal, t = _wal(str(self.store.path)), now()
        n = flush(self)
        trace["flush"].append((t, now(), n, wal, _wal(str(self.store.path))))
        return n

    def t_read_gate(self: Any) -> None:
        t = now()
        read_gate(self)
        trace["gate"].append((t, now()))

    async def t_fresh(self: Any) -> None:
        t = now()
        await fresh(self)
        current["fresh"] = now() - t

    async def t_answer(*args: Any) -> bytes:
        t = now()
        out = await answer(*args)
        current["answer"] = now() - t
        return out

    async def t_call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != _decide_asgi.PATH:
            await call(self, scope, receive, send)
            return
        marks: list[float] = [now()]

        async def t_send(message: Any) -> None:
            await send(message)
            marks.append(now())

        current.clear()
        await call(self, scope, receive, t_send)
        trace["req"].append((*marks, current.get("fresh", 0.0), current.get("answer", 0.0)))

    async def lag() -> None:
        while True:
            t = now()
            await asyncio.sleep(0.001)
            late = now() - t - 0.001
            if late > 0.002:
                trace["lag"].append((t, late))

    started: list[Any] = []
    orig_get = _decide._State.get

    async def t_get(self: Any) -> Any:
        if not started:
            started.append(asyncio.get_running_loop().create_task(lag()))
        return await orig_get(self)

    orig_stop = _decide.stop

    async def t_stop(app: Any) -> None:
        await orig_stop(app)
        _dump()  # here: uvicorn re-raises SIGTERM after shutting down, so atexit would not run

    _decide.stop = t_stop
    Decider.flush = t_flush  # type: ignore[method-assign]
    _decide._State._read_gate = t_read_gate  # type: ignore[method-assign]
    _decide._State.fresh = t_fresh  # type: ignore[method-assign]
    _decide._State.get = t_get  # type: ignore[method-assign]
    _decide_asgi.answer = t_answer  # type: ignore[assignment]
    _decide_asgi.DecideFastPath.__call__ = t_call  # type: ignore[method-assign]
    gc.callbacks.append(_gc)
    if os.environ.get("XRM_TRACE_FLUSH_S"):  # an experiment's flush interval (seconds)
        _decide.FLUSH_EVERY_S = float(os.environ["XRM_TRACE_FLUSH_S"])
    if os.environ.get("XRM_TRACE_SWITCH_S"):  # the interpreter's GIL switch interval (default 5 ms)
        import sys

        sys.setswitchinterval(float(os.environ["XRM_TRACE_SWITCH_S"]))
    if os.environ.get("XRM_TRACE_SETTLE_S"):  # an experiment's settle window (seconds; unsafe below ~0.1)
        _decide.SETTLE_S = float(os.environ["XRM_TRACE_SETTLE_S"])


def _dump() -> None:
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(trace, f)


if __name__ == "__main__":
    _patch()
    runpy.run_module("xrm.api", run_name="__main__", alter_sys=True)
