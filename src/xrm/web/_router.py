"""``console_router(settings)``: every console route, to include in the server's FastAPI app.

    >>> app.include_router(console_router(settings))  # doctest: +SKIP

The host app must open the store in its lifespan as ``app.state.store`` (``xrm.api.create_app``
does); the console reads and writes through it, so it shares the server's single DuckDB writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from xrm.config import Settings
from xrm.web import _campaigns, _customers, _login, _network, _overview, _quality, _segments
from xrm.web._context import PREFIX
from xrm.web._static import static_file

__all__ = ["console_router"]


def console_router(settings: Settings | None = None) -> APIRouter:
    """The console's routes under ``/console`` (HTML pages, forms, static files; not in OpenAPI)."""
    del settings  # everything the console needs travels with the store (store.settings)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    get, post = ["GET"], ["POST"]
    routes: list[tuple[str, Callable[..., Any], list[str]]] = [
        ("", _overview.root, get),
        ("/", _overview.overview, get),
        ("/login", _login.login_form, get),
        ("/login", _login.login_submit, post),
        ("/logout", _login.logout, post),
        ("/lang", _login.lang, post),
        ("/customers", _customers.search, get),
        ("/customers/{pid}", _customers.customer_360, get),
        ("/customers/{pid}/nba", _customers.customer_nba, post),
        ("/customers/{pid}/export", _customers.customer_export, get),
        ("/customers/{pid}/erase", _customers.customer_erase, post),
        ("/segments", _segments.segments, get),
        ("/campaigns", _campaigns.campaigns, get),
        ("/campaigns", _campaigns.create_campaign, post),
        ("/campaigns/{cid}", _campaigns.campaign_detail, get),
        ("/campaigns/{cid}/preview", _campaigns.campaign_preview, post),
        ("/campaigns/{cid}/dry-run", _campaigns.campaign_dry_run, post),
        ("/campaigns/{cid}/launch", _campaigns.campaign_launch, post),
        ("/network", _network.network, get),
        ("/quality", _quality.quality, get),
        ("/quality/review", _quality.review_decide, post),
    ]
    for path, endpoint, methods in routes:
        router.add_api_route(path, endpoint, methods=methods, include_in_schema=False)
    router.add_api_route("/static/{path:path}", static_file, methods=get, include_in_schema=False)
    return router
