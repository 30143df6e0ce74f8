"""The HTTP API: a Segment-compatible event API, profiles and their timeline (``xrm serve``).

    >>> from xrm.api import create_app, run_server
    >>> run_server(settings, port=8000)  # doctest: +SKIP

FastAPI is imported only here and below, never by ``import xrm``. See docs/api.md.
"""

from xrm.api._app import create_app
from xrm.api._server import run_server

__all__ = ["create_app", "run_server"]
