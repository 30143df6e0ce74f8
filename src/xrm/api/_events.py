"""The Segment tracking API: /v1/identify, /v1/track, /v1/page, /v1/screen, /v1/group, /v1/alias, /v1/batch.

A drop-in for Segment's HTTP tracking API: point an official client's ``host`` here. The write
key comes as the HTTP Basic user name (empty password) or as ``writeKey`` in the body; bodies may
be gzip-compressed; a call may be 32 KB, a batch 500 KB. Success is exactly HTTP 200 with
``{"success": true}``, sent after the events are committed (the clients retry anything else);
errors are 4xx with ``{"code": ..., "message": ...}`` naming the field and the problem.

    >>> httpx.post(url + "/v1/track", json={"userId": "u1", "event": "Shop"}, auth=(k, ""))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from xrm.api._auth import event_source
from xrm.api._body import BATCH_LIMIT, EVENT_LIMIT, read_json, too_large
from xrm.api._errors import ApiError
from xrm.api._store_loss import fault_answer
from xrm.api._writer import EventWriter, Submission
from xrm.ingest._api_batch import quick_event

__all__ = ["CALLS", "router"]

log = logging.getLogger("xrm.api")

CALLS = ("identify", "track", "page", "screen", "group", "alias")
SUCCESS = {"success": True}

router = APIRouter(prefix="/v1", tags=["events (Segment tracking API)"])

_OBJECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
    },
    "responses": {
        "200": {"description": "Committed.", "content": {"application/json": {"example": SUCCESS}}},
        "400": {"description": "A field breaks a rule: {code, message, errors}."},
        "401": {"description": "Missing or unknown write key."},
        "403": {"description": "The key's scope is read (write or admin needed)."},
        "413": {"description": "Over 32 KB per event or 500 KB per batch."},
        "429": {"description": "Over the key's request rate; retry after Retry-After seconds."},
    },
}


def _exact(request: Request) -> bool:
    return bool(getattr(request.state, "exact_json", False))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prepare(
    event: dict[str, Any], where: str, received: str, shared: dict[str, Any] | None, exact: bool
) -> str:
    """The event as stored: batch-level context merged in, a missing time set to receipt.

    ``exact``: the body was read by ``json`` (see :func:`~xrm.api._body.read_json`), so it is
    written by ``json`` too; otherwise orjson writes it (its compact output is valid JSON alike).
    """
    event.pop("writeKey", None)
    if shared:
        own = event.get("context")
        event["context"] = {**shared, **own} if isinstance(own, dict) else (own or dict(shared))
    if event.get("timestamp") in (None, "") and event.get("originalTimestamp") in (None, ""):
        event["timestamp"] = received  # Segment: no timestamp means the time it was received
    if exact:
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
        size = len(text.encode("utf-8"))
    else:
        raw = orjson.dumps(event, default=str)
        text, size = raw.decode("utf-8"), len(raw)
    if size > EVENT_LIMIT:
        raise too_large(where or "event", size, EVENT_LIMIT)
    return text


async def _store(request: Request, sub: Submission, prefix: str) -> JSONResponse:
    writer: EventWriter = request.app.state.writer
    try:
        outcome = await writer.submit(sub)
    except Exception as exc:
        answer = fault_answer(request.app, exc, "the events were not stored; send them again")
        if answer is not None:
            return answer
        raise ApiError(
            503, "unavailable", f"the events were not stored ({type(exc).__name__}); send them again"
        ) from None
    if outcome.problems:
        errors = [
            {"index": p.line, "field": p.field, "value": p.value, "reason": p.reason}
            for p in outcome.problems
        ]
        where = [f"{prefix.format(p.line)}{p.field}: {p.reason}" for p in outcome.problems[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        n = len(sub.texts)
        raise ApiError(
            400, "invalid_event",
            f"{len(errors)} of {n} event{'s' if n != 1 else ''} invalid, nothing stored: "
            + "; ".join(where) + more,
            errors=errors,
        )
    return JSONResponse(SUCCESS)


def _single(call: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        body = await read_json(request, limit=EVENT_LIMIT, what=call)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", f"{call}: the body must be a JSON object {{...}}")
        source = event_source(request, body)
        body["type"] = call  # the endpoint names the call, as in Segment
        text = _prepare(body, call, _now(), None, _exact(request))
        sub = Submission(f"POST /v1/{call}", source, [text], [body], [quick_event(body, text)])
        return await _store(request, sub, "")

    endpoint.__name__ = call
    endpoint.__doc__ = f"Segment `{call}` call: one event, committed before the 200."
    return endpoint


for _call in CALLS:
    router.add_api_route(
        f"/{_call}", _single(_call), methods=["POST"], openapi_extra=_OBJECT_BODY,
        summary=f"{_call.title()} call",
    )


@router.post("/batch", summary="Batch of calls", openapi_extra=_OBJECT_BODY)
async def batch(request: Request) -> JSONResponse:
    """Segment `batch`: ``{"batch": [call, ...], "context": {...}}``; all stored or none."""
    body = await read_json(request, limit=BATCH_LIMIT, what="batch")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "batch: the body must be a JSON object {\"batch\": [...]}")
    source = event_source(request, body)
    items = body.get("batch")
    if not isinstance(items, list):
        raise ApiError(
            400, "invalid_batch",
            f"batch: {'missing' if items is None else 'not a list'}; send {{\"batch\": [{{...}}, ...]}}",
        )
    shared = body.get("context") if isinstance(body.get("context"), dict) else None
    received = _now()
    exact = _exact(request)
    texts: list[str] = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(400, "invalid_batch", f"batch[{k}]: is not a JSON object; each call is {{...}}")
        texts.append(_prepare(item, f"batch[{k}]", received, shared, exact))
    if not texts:
        return JSONResponse(SUCCESS)
    quick = [quick_event(e, t) for e, t in zip(items, texts, strict=True)]
    return await _store(request, Submission("POST /v1/batch", source, texts, items, quick), "batch[{}].")
