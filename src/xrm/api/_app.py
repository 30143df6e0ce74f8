"""The FastAPI app: ``create_app(settings)``, one router per capability, OpenAPI docs at /docs.

The server owns the store while it runs (DuckDB admits one writing process; docs/store.md): it
opens it at start-up, writes events through one :class:`~xrm.api._writer.EventWriter` and reads
on fresh cursors.

    >>> app = create_app(Settings(store_path="demo/xrm.duckdb"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import wait
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from xrm import __version__
from xrm._redact import install_redaction
from xrm.api import _access, _admin, _decide, _events, _health, _identify, _network, _profiles, _scheduler
from xrm.api._auth import KeyRing, require
from xrm.api._decide_asgi import DecideFastPath
from xrm.api._errors import install_error_handlers
from xrm.api._gate import StoreGateMiddleware
from xrm.api._store_loss import EXIT_STORE_LOST, StoreLossMiddleware, install_fault_handler
from xrm.api._writer import EventWriter
from xrm.config import Settings
from xrm.web import console_router, warm_console

__all__ = ["create_app"]

log = logging.getLogger("xrm.api")


def create_app(settings: Settings) -> FastAPI:
    """The app for these settings; the store opens when the app starts (lifespan), not here."""
    install_redaction()  # no personal data in any log of the server (xrm._redact)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from xrm.store import Store

        # Attached: the event writer can then release the indexes' memory (api_index_memory_mb).
        store = Store.open(settings, attached=settings.api_index_memory_mb > 0)
        loop = asyncio.get_running_loop()

        def lost(reason: str) -> None:  # on whichever thread met it; the loop may be closing
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_stop_after_loss, app, reason)

        # Lost (DuckDB invalidated it): stop serving; run_server then exits non-zero (_store_loss.py).
        store.when_lost(lost)
        # DuckDB's own allocator (jemalloc) keeps up to 128 MB of what queries freed before it
        # gives any back: a server's resident memory swung by 60 MB under steady load (bench
        # mixed). Give it back sooner, from jemalloc's background threads (docs/api.md).
        store.sql("SET allocator_flush_threshold = '32MB'").fetchall()
        store.sql("SET allocator_background_threads = true").fetchall()
        warming = warm_console(store)  # the console's shared lists, read in a worker (web/_customers.py)
        writer = EventWriter(store)
        try:
            await writer.start()
            app.state.store, app.state.writer = store, writer
            app.state.keys.store = store
            await _decide.start(app, store)  # hooks the writer: responses, consent
            await _scheduler.start(app, store)  # runs due scheduled campaigns
            yield
        finally:
            # A lost store fails every step of the shutdown: each is still tried, none stops the rest.
            steps = (lambda: _scheduler.stop(app), writer.stop, lambda: _decide.stop(app))  # decide: its log
            for step in steps:
                try:
                    await step()
                except Exception:
                    if store.lost is None:
                        raise
                    log.warning("shutting down after the store was lost: a step failed", exc_info=True)
            await asyncio.to_thread(wait, [warming])
            store.close()  # quiet on a lost store too (tests/store/test_faults.py)

    app = FastAPI(
        title="xrm",
        version=__version__,
        summary="One-to-one relationship marketing: the event API (Segment-compatible) and profiles.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = KeyRing(settings)  # API keys, scopes, rate limits (_auth.py)
    install_error_handlers(app)
    install_fault_handler(app)
    app.include_router(_events.router, dependencies=[Depends(require("write"))])
    app.include_router(_profiles.router, dependencies=[Depends(require("read"))])
    app.include_router(_decide.router, dependencies=[Depends(require("read"))])  # POST /v1/decide
    app.include_router(_network.router, dependencies=[Depends(require("read"))])  # /v1/network/...
    app.include_router(_access.router, dependencies=[Depends(require("admin"))])
    # The review queue changes profiles and the golden record is personal data: admin keys only.
    app.include_router(_identify.router, dependencies=[Depends(require("admin"))])
    app.include_router(_health.router)
    app.include_router(_admin.router, dependencies=[Depends(require("admin"))])  # backup
    app.include_router(console_router(settings))  # the web console, on the same store
    # POST /v1/decide answered before FastAPI's routing (same key check, body model, errors and
    # answer as the route above, which documents it): the per-request machinery cost as much as
    # the decision (_decide_asgi.py).
    # Requests that read or write the store hold its gate (a release of index memory waits for them).
    app.add_middleware(StoreGateMiddleware)
    app.add_middleware(DecideFastPath)  # a decision holds the gate only where it reads
    app.add_middleware(StoreLossMiddleware)  # outermost: a lost store answers 503 before anything
    return app


def _stop_after_loss(app: FastAPI, reason: str) -> None:
    log.critical("DuckDB invalidated the store (%s): every request answers 503; the server stops "
                 "and exits with status %d so that it can be started again", reason, EXIT_STORE_LOST)
    stop = getattr(app.state, "stop_server", None)  # set by run_server; tests serve otherwise
    if stop is not None:
        stop()
