"""Limits per key: request rate (a token bucket each, in the server's memory) and body sizes.

One server process owns the store (docs/store.md), so one bucket per key in that process is the
whole truth; a restart starts every bucket full. A request takes one token; an empty bucket
answers how long until the next token, which becomes the 429's ``Retry-After`` (whole seconds,
rounded up, at least 1: the header has no fractions and the Segment clients wait that long).

    >>> buckets = RateLimiter(); buckets.take("k1", rate=10, burst=20)  # doctest: +SKIP
    0.0
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["RateLimiter", "check_key_sizes", "key_limit", "retry_after_header"]


class RateLimiter:
    """Token buckets by key id; :meth:`take` is thread-safe (sync endpoints run on a pool)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str, *, rate: float, burst: int) -> float:
        """Take one token: 0.0 if granted, else the seconds until one is there (nothing taken)."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - when) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


# -- size limits per key -----------------------------------------------------------------------
#
# The server reads every body with Segment's limits (32 KB a call, 500 KB a batch: _body.py). A key
# may carry lower ones (``xrm keys create --max-event-kb/--max-batch-kb``): where the key is known
# before the body is read (Authorization header) the body is cut at the key's limit; where it is
# only in the body (``writeKey``), the body is read with the server's limit and checked against the
# key's once the key is known. Either way the answer is the one 413 ``payload_too_large``.


class _Sized(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def max_event_bytes(self) -> int: ...
    @property
    def max_batch_bytes(self) -> int: ...


def key_limit(who: _Sized | None, *, batch: bool) -> tuple[int, str] | None:
    """The key's own body limit (bytes) and the rule to quote, or None: the server's applies."""
    if who is None:
        return None
    from xrm.api._body import BATCH_LIMIT, EVENT_LIMIT

    own, server = (who.max_batch_bytes, BATCH_LIMIT) if batch else (who.max_event_bytes, EVENT_LIMIT)
    if own >= server:
        return None
    flag = "--max-batch-kb" if batch else "--max-event-kb"
    what = "per batch request" if batch else "per call"
    return own, (
        f"API key {who.name!r} is limited to {own // 1024} KB {what} (`xrm keys limits {who.name} "
        f"{flag} N` changes it)"
    )


def check_key_sizes(request: Any, body: dict[str, Any], who: _Sized) -> None:
    """413 when the body read (``request.state.body_bytes``) or, in a batch, one call in it is over
    the key's own limit."""
    from xrm.api._body import too_large

    batch = str(request.url.path).endswith("/batch")
    size = getattr(request.state, "body_bytes", None)
    own = key_limit(who, batch=batch)
    if own is not None and size is not None and size > own[0]:
        raise too_large("batch" if batch else "event", size, own[0], rule=own[1])
    per_call = key_limit(who, batch=False)
    items = body.get("batch") if batch else None
    if per_call is not None and isinstance(items, list):
        import orjson

        for k, item in enumerate(items):
            n = len(orjson.dumps(item, default=str))
            if n > per_call[0]:
                raise too_large(f"batch[{k}]", n, per_call[0], rule=per_call[1])
