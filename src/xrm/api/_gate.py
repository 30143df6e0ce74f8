"""Every request that may read or write the store holds its gate while it runs (ASGI middleware).

The event writer releases DuckDB's index memory now and then by detaching the store and attaching
it again (``api_index_memory_mb``; :class:`xrm.store._gate.StoreGate` says why everyone must hold
the gate). Requests wait for a release without tying up a thread; three kinds pass straight
through: the Segment calls (their events go to the event writer, which lands them while a release
runs; their API-key look-ups hold the gate themselves, :mod:`xrm.api._auth`), ``/v1/decide`` (its
few store reads hold the gate themselves, :mod:`xrm.api._decide`) and ``/healthz`` (no query).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xrm.api._decide_asgi import PATH as DECIDE
from xrm.api._events import CALLS
from xrm.store._gate import StoreGate

__all__ = ["StoreGateMiddleware", "enter", "settled"]

HELD = "xrm_store_gate"  # in the request's state: the gate this request holds

PASS = frozenset({"/healthz", DECIDE, "/v1/batch", *(f"/v1/{call}" for call in CALLS)})


class StoreGateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        store = getattr(scope["app"].state, "store", None) if scope["type"] == "http" else None
        if store is None or scope["path"] in PASS:
            await self.app(scope, receive, send)
            return
        gate: StoreGate = store.gate
        await enter(gate)
        state = scope.setdefault("state", {})
        state[HELD] = gate
        held = True

        async def sending(message: Message) -> None:
            # Done with the store once the answer starts: a file sent (a backup, an export) is a
            # copy, and a slow download must not hold a release off.
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                state.pop(HELD, None)
                gate.leave()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if held:
                gate.leave()


def settled(request: Request) -> None:
    """Wait (on a worker thread) for the events landed during a checkpoint to reach the store, out of
    the gate meanwhile: their move may wait for a release, and the release for this request."""
    writer = getattr(request.app.state, "writer", None)
    if writer is None or not writer.pending:
        return
    gate: StoreGate | None = request.scope.get("state", {}).get(HELD)
    if gate is not None:
        gate.leave()
    try:
        writer.wait_settled()
    finally:
        if gate is not None:
            gate.enter()


async def enter(gate: StoreGate) -> None:
    """Take a request's shared hold of ``gate``, waiting on the loop while a release waits or runs."""
    loop = asyncio.get_running_loop()
    while not gate.try_enter():
        opened = loop.create_future()

        def wake(fut: asyncio.Future[None] = opened) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: no one waits any more
                loop.call_soon_threadsafe(_done, fut)

        gate.when_open(wake)
        await opened


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
