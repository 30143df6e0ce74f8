"""The FastAPI app: ``create_app(settings)``, one router per capability, OpenAPI docs at /docs.

The server owns the store while it runs (DuckDB admits one writing process; docs/store.md): it
opens it at start-up, writes events through one :class:`~xrm.api._writer.EventWriter` and reads
on fresh cursors.

    >>> app = create_app(Settings(store_path="demo/xrm.duckdb"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from xrm import __version__
from xrm.api import _events, _health, _profiles
from xrm.api._errors import install_error_handlers
from xrm.api._events import WriteKeys
from xrm.api._writer import EventWriter
from xrm.config import Settings
from xrm.web import console_router

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """The app for these settings; the store opens when the app starts (lifespan), not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from xrm.store import Store

        store = Store.open(settings)
        writer = EventWriter(store)
        try:
            await writer.start()
            app.state.store, app.state.writer = store, writer
            yield
        finally:
            await writer.stop()
            store.close()

    app = FastAPI(
        title="xrm",
        version=__version__,
        summary="One-to-one relationship marketing: the event API (Segment-compatible) and profiles.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.write_keys = WriteKeys(settings.write_keys)
    install_error_handlers(app)
    app.include_router(_events.router)
    app.include_router(_profiles.router)
    app.include_router(_health.router)
    app.include_router(console_router(settings))  # the web console, on the same store
    return app
