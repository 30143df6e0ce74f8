"""The console's static files (styles, scripts, the Vega libraries), served from the package.

    >>> GET /console/static/vendor/vega.min.js  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import Request, Response

__all__ = ["STATIC", "static_file"]

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".txt": "text/plain; charset=utf-8", ".svg": "image/svg+xml", ".woff2": "font/woff2",
          ".png": "image/png", ".ico": "image/x-icon"}


@cache
def _load(rel: str) -> tuple[bytes, str, str] | None:
    path = (STATIC / rel).resolve()
    if STATIC not in path.parents or not path.is_file() or path.suffix not in _TYPES:
        return None
    body = path.read_bytes()
    return body, _TYPES[path.suffix], '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def static_file(request: Request) -> Response:
    """A file under static/ (no login: these are public code and styles), cached by ETag."""
    found = _load(str(request.path_params["path"]))
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body, kind, etag = found
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=kind, headers=headers)
