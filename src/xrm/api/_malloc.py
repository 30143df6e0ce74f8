"""glibc malloc settings for the long-running server: few arenas, and free pages given back.

The mixed-load bench (issue 10) saw the server's resident memory climb while the bytes malloc had
handed out stayed flat: glibc keeps what Python and the libraries free inside its heaps (fragments
between live blocks are never returned by its automatic trim, which only cuts the heap's top) and
gives every new thread an arena of its own (up to 8 per core). So the server asks for at most two
arenas at start-up and a daemon thread calls ``malloc_trim(0)`` every ``TRIM_EVERY_S`` seconds,
which returns the free pages inside every arena to the system (a few milliseconds; the arena is
locked meanwhile). DuckDB allocates with its own jemalloc and is not concerned.

The same thread first collects Python's two young generations (:func:`collect_young`): the server
runs the collector only after 50,000 net new objects (``xrm.api._server``), and under a steady load,
where almost every object made is freed again by its reference count, that took longer than the
10-minute bench: the cyclic garbage of every request (sqlglot trees, exception frames) waited
meanwhile (session 8: 15,000 pending objects 4 minutes after warm-up, and not one collection).

Elsewhere than glibc (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from functools import cache

__all__ = ["TRIM_EVERY_S", "collect_young", "limit_arenas", "start_trimming", "trim"]

TRIM_EVERY_S = 30.0
_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


@cache  # one CDLL: each new one makes new ctypes function classes, which the process keeps
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only: AttributeError elsewhere
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = 2) -> bool:
    """At most ``arenas`` malloc arenas for the threads created from now on; False if not glibc."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)


def trim() -> bool:
    """Give the free pages inside malloc's heaps back to the system; True if any were."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def collect_young() -> int:
    """Collect generations 0 and 1 (not the old one, where the long-lived caches are: a few ms);
    the number of unreachable objects found."""
    return gc.collect(1)


def start_trimming(
    every: float = TRIM_EVERY_S, stop: threading.Event | None = None
) -> threading.Thread | None:
    """A daemon thread that calls :func:`collect_young`, then :func:`trim`, every ``every`` seconds
    until ``stop`` is set (the server's runs as long as the process); None where not glibc."""
    if _libc() is None:
        return None
    halt = stop or threading.Event()

    def loop() -> None:
        while not halt.wait(every):
            collect_young()
            trim()

    thread = threading.Thread(target=loop, daemon=True, name="xrm-malloc-trim")
    thread.start()
    return thread
