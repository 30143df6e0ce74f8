"""Request bodies: read with a size limit, gzip undone (also with the limit), parsed as JSON.

The limit applies to the body as the application sees it (after gzip), so a small compressed
body cannot unpack into a large one.

Bodies are parsed with orjson (several times faster than ``json``). Where orjson would read a
body differently from ``json`` (NaN, an integer over 64 bits that it would make a float, a lone
surrogate) the standard parser reads it, and ``request.state.exact_json`` is set so the event
texts are written back with ``json`` too: a body means the same whichever parser took it.

    >>> payload = await read_json(request, limit=500 * 1024, what="batch")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request

from xrm.api._errors import ApiError
from xrm.api._limits import key_limit

__all__ = ["BATCH_LIMIT", "EVENT_LIMIT", "read_json", "too_large"]

# Digits as "0", all else as " ": a run of 19 zeros may be an integer over 64 bits (which orjson
# would read as a float). Two C passes; a regular expression is ten times slower here.
_DIGITS = bytes.maketrans(bytes(range(256)), bytes(48 if 48 <= c <= 57 else 32 for c in range(256)))
_LONG_NUMBER = b"0" * 19
EVENT_LIMIT = 32 * 1024  # Segment: 32 KB per call
BATCH_LIMIT = 500 * 1024  # Segment: 500 KB per batch request


_SEGMENT_RULE = "Segment's limits: 32 KB per event, 500 KB per batch"


def too_large(what: str, size: int, limit: int, *, rule: str | None = None) -> ApiError:
    return ApiError(
        413, "payload_too_large",
        f"{what}: {size:,} bytes is over the limit of {limit // 1024} KB; send fewer or smaller "
        f"events per request ({rule or _SEGMENT_RULE})",
    )


async def read_json(request: Request, *, limit: int, what: str) -> Any:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise ApiError(
            415, "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; send the body plain or gzip-compressed",
        )
    rule = None
    own = key_limit(getattr(request.state, "principal", None), batch=what == "batch")
    if own is not None and own[0] < limit:  # the key (known from its header) has a lower limit
        limit, rule = own
    declared = request.headers.get("content-length")
    if encoding != "gzip" and declared and declared.isdigit() and int(declared) > limit:
        raise too_large(what, int(declared), limit, rule=rule)
    chunks, size = [], 0
    inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
    async for chunk in request.stream():
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, limit + 1 - size)
            except zlib.error as exc:
                raise ApiError(
                    400, "invalid_gzip",
                    f"body: Content-Encoding is gzip but the body is not valid gzip ({exc})",
                ) from None
            if inflate.unconsumed_tail:
                raise too_large(what, limit + 1, limit, rule=rule)
        size += len(chunk)
        if size > limit:
            raise too_large(what, size, limit, rule=rule)
        chunks.append(chunk)
    request.state.body_bytes = size  # checked against the key's limit once a body writeKey names it
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "invalid_json", f"{what}: the body is empty; send a JSON object")
    import orjson

    if _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, a lone surrogate, or not JSON at all: json decides and words it
    request.state.exact_json = True
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "invalid_json", f"{what}: the body is not valid JSON ({exc}); send one JSON object"
        ) from None
