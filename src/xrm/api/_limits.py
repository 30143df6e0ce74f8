"""Request rate per key: a token bucket each, refilled continuously, in the server's memory.

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

__all__ = ["RateLimiter", "retry_after_header"]


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
