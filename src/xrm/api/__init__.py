"""The HTTP API: a Segment-compatible event API, profiles and their timeline (``xrm serve``).

    >>> from xrm.api import create_app, run_server
    >>> run_server(settings, port=8000)  # doctest: +SKIP

FastAPI is imported only when ``create_app`` is first used, never by ``import xrm``. See docs/api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xrm._lazy import lazy_exports

if TYPE_CHECKING:
    from xrm.api._app import create_app
    from xrm.api._server import run_server

# Lazy: the store loads xrm.api._schema (the key and audit tables) without importing FastAPI.
__all__ = ["create_app", "run_server"]
__getattr__, __dir__ = lazy_exports(__name__, {"create_app": "_app", "run_server": "_server"}, __all__)
