"""POST /v1/decide served by a plain ASGI handler in front of FastAPI's routing.

A decision is answered from memory in well under a millisecond; FastAPI's per-request machinery
(routing through every router, dependency solving for the key check, the query and header
parameters, body validation through its model field, the response class) cost about as much
again (docs/customize.md, "Decision latency"). So the server answers ``POST /v1/decide`` here,
before the router: the same key check (:meth:`KeyRing.authorize`, scope read, its cache and rate
limit), the same body model (:class:`~xrm.api._decide.DecideRequest`, validated from the raw bytes
by pydantic's JSON parser), the same error shape (``{"code", "message"}``, 400 naming the field)
and the same answer (:func:`xrm.api._decide.answer`). The FastAPI route stays, for the OpenAPI
document and for an app mounted without this middleware; other methods and paths pass through.

    >>> app.add_middleware(DecideFastPath)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import duckdb
import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from xrm.api._audit import MAX_PURPOSE
from xrm.api._auth import KeyRing, credential_of
from xrm.api._body import too_large
from xrm.api._decide import DecideRequest, answer
from xrm.api._errors import ApiError
from xrm.api._store_loss import fault_answer
from xrm.exceptions import InputError, NotYetImplemented

__all__ = ["PATH", "DecideFastPath", "validation_message"]

PATH = "/v1/decide"
BODY_LIMIT = 32 * 1024  # a decide body is a few hundred bytes; Segment's per-call limit is plenty
_JSON = (b"content-type", b"application/json")


class DecideFastPath:
    """ASGI middleware: ``POST /v1/decide`` answered here, everything else passed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            status, payload, headers = 200, await _decide(scope, receive), None
        except ApiError as exc:
            status, headers = exc.status, exc.headers
            payload = orjson.dumps({"code": exc.code, "message": exc.message, **exc.extra})
        except InputError as exc:
            status, headers = 400, None
            payload = orjson.dumps({"code": "invalid_request", "message": str(exc)})
        except NotYetImplemented as exc:
            status, headers = 501, None
            payload = orjson.dumps({"code": "not_implemented", "message": str(exc)})
        except duckdb.Error as exc:  # out of memory or a lost store: 503 as FastAPI's handler answers
            fault = fault_answer(scope["app"], exc, "no decision was made")
            if fault is None:
                raise
            status, payload = fault.status_code, bytes(fault.body)
            headers = {"Retry-After": fault.headers["retry-after"]}
        out = [_JSON, (b"content-length", str(len(payload)).encode())]
        if headers:
            out += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})


async def _decide(scope: Scope, receive: Receive) -> bytes:
    app = scope["app"]
    authorization = purpose = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-xrm-purpose":
            purpose = value.decode("latin-1")
    # The key first, as the route's dependency does: no body is read for a caller without one.
    ring: KeyRing = app.state.keys
    token = credential_of(authorization)
    if not ring.cached(token):  # every CACHE_S: the key's rows read on a worker thread, not the loop
        await asyncio.to_thread(ring.warm, token)  # (its look-ups hold the store's gate)
    principal = ring.authorize(token, "read")
    if purpose is None and scope.get("query_string"):
        purpose = (parse_qs(scope["query_string"].decode("latin-1")).get("purpose") or [None])[0]
    if purpose is not None and len(purpose) > MAX_PURPOSE:
        raise ApiError(400, "invalid_request", f"purpose: {len(purpose)} characters is over the limit of "
                       f"{MAX_PURPOSE}; say why the data is read in fewer words")
    raw = await _body(receive)
    try:
        body = DecideRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc.errors())) from None
    state = getattr(app.state, "decide", None)
    if state is None:
        raise ApiError(503, "unavailable", "the server is starting or stopping; try again")
    return await answer(state, principal, body, purpose, PATH)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "invalid_request", "body: the client went away before sending it")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > BODY_LIMIT:
            raise too_large("decide request", size, BODY_LIMIT, rule="a decide request is one small object")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks) if len(chunks) != 1 else chunks[0]
    if not raw.strip():
        raise ApiError(400, "invalid_json",
                       "body: empty; send a JSON object with an identifier and a context")
    return raw


def validation_message(errors: list[Any]) -> str:
    """pydantic's errors in the words of the API's 400s (as ``_errors``' handler for FastAPI's)."""
    problems = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "(request)"
        shown = err.get("input") is not None and err.get("type") != "missing"  # not the whole body
        got = f" (got {err['input']!r})" if shown else ""
        problems.append(f"{where}: {err.get('msg', 'invalid')}{got}")
    return "; ".join(problems)
