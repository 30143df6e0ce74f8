"""When DuckDB fails under the server: clear answers, and a lost store ends the process.

Out of memory (DuckDB's ``memory_limit``): the request that met it answers 503 with Retry-After
and says which setting to raise; nothing it sent was stored, so the client sends it again. A lost
store (DuckDB invalidated the database after a fatal error; :meth:`xrm.store.Store.note_fault`):
every request from then on answers 503 at once, ``/healthz`` answers 503 with the reason, and the
server shuts down and exits with :data:`EXIT_STORE_LOST`, so a supervisor (systemd, Kubernetes)
starts it again. Every acknowledged event was committed before its 200 (or into a landing file,
moved at the next start), so a restart loses none.

    $ python -m xrm.api --store xrm.duckdb; echo $?     # after DuckDB invalidated the store
    3
"""

from __future__ import annotations

import json
import logging
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from xrm.api._errors import error_response
from xrm.store._faults import memory_advice

__all__ = ["EXIT_STORE_LOST", "LOST_EXIT_S", "LOST_MESSAGE", "StoreLossMiddleware", "fault_answer",
           "install_fault_handler"]

log = logging.getLogger("xrm.api")

EXIT_STORE_LOST = 3  # the server's exit status after a lost store (0: stopped by a signal)
RETRY_LOST_S = 5  # a supervisor restarts the server in about this
RETRY_MEMORY_S = 30
LOST_EXIT_S = 30.0  # the most a shutdown after a lost store may take before the process just ends


# DuckDB's own words go to the server's log only: an error's text may quote stored values.
LOST_MESSAGE = ("the store was lost (DuckDB invalidated the database after a fatal error); nothing was "
                f"read or written. The server is stopping to start again (exit status {EXIT_STORE_LOST}); "
                "try again in a few seconds")


def fault_answer(app: Any, exc: BaseException, doing: str) -> JSONResponse | None:
    """The 503 for a DuckDB fault met while ``doing`` (e.g. "the events were not stored"); None if
    ``exc`` is no such fault."""
    store = getattr(app.state, "store", None)
    if store is None:
        return None
    fault = store.note_fault(exc)
    if fault == "lost":
        return error_response(503, "unavailable", LOST_MESSAGE,
                              headers={"Retry-After": str(RETRY_LOST_S)})
    if fault == "memory":
        return error_response(503, "unavailable", f"{doing}: {memory_advice(store.settings.memory_limit)}",
                              headers={"Retry-After": str(RETRY_MEMORY_S)})
    return None


def install_fault_handler(app: FastAPI) -> None:
    """DuckDB errors no route turned into an answer: a 503 for a fault, else a 500 in the API's one
    error shape (never DuckDB's text, which may quote personal data)."""

    async def duckdb_error(request: Request, exc: Exception) -> JSONResponse:
        answer = fault_answer(request.app, exc, "nothing was read or written")
        if answer is not None:
            return answer
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", f"the store failed ({type(exc).__name__}); see the "
                              "server's log")

    app.add_exception_handler(duckdb.Error, duckdb_error)


class StoreLossMiddleware:
    """Outermost: once the store is lost every request answers 503 without touching it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        store = getattr(scope["app"].state, "store", None) if scope["type"] == "http" else None
        if store is None or store.lost is None:
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/healthz":
            body: dict[str, Any] = {"status": "store_lost", "message": LOST_MESSAGE}
        else:
            body = {"code": "unavailable", "message": LOST_MESSAGE}
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
            (b"retry-after", str(RETRY_LOST_S).encode())]})
        await send({"type": "http.response.body", "body": raw})
