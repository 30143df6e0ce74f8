"""The server's malloc settings (xrm.api._malloc) on the real glibc of this process: free pages in
the middle of a heap, which glibc's own trim leaves, go back to the system."""

from __future__ import annotations

import ctypes
import threading
import time
from pathlib import Path

import pytest

from xrm.api import _malloc

pytestmark = pytest.mark.skipif(_malloc._libc() is None, reason="glibc only")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trim_returns_the_free_pages_inside_the_heap() -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    # 80 MB in 4 KB blocks (under the mmap threshold: inside the heap), touched so they are resident;
    # then all freed but every 64th, which pins the heap's top: glibc's automatic trim gives back nothing.
    blocks = [libc.malloc(4096) for _ in range(20_000)]
    for b in blocks:
        libc.memset(b, 1, 4096)
    kept = blocks[::64]
    for i, b in enumerate(blocks):
        if i % 64:
            libc.free(b)
    before = _rss_mb()
    assert _malloc.trim()
    after = _rss_mb()
    for b in kept:
        libc.free(b)
    assert before - after > 40, (before, after)  # most of the ~78 MB freed came back


def test_arenas_limited_and_trimming_in_the_background() -> None:
    assert _malloc._libc() is _malloc._libc()  # a CDLL per call would add ctypes classes for good
    assert _malloc.limit_arenas(8)  # glibc's default for a small machine: no change for this process
    stop = threading.Event()
    thread = _malloc.start_trimming(every=0.01, stop=stop)
    assert thread is not None and thread.daemon
    time.sleep(0.05)
    assert thread.is_alive()
    stop.set()
    thread.join(1)
    assert not thread.is_alive()


def test_the_trimming_thread_collects_cyclic_garbage_of_the_young_generations() -> None:
    # The server's collector waits for 50,000 net new objects; under a steady load that can take
    # longer than the run, so the trimming thread collects generations 0 and 1 on its own.
    import gc
    import weakref

    class Node:
        pass

    was_enabled = gc.isenabled()
    gc.disable()  # only the thread may collect the cycle below
    stop = threading.Event()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        alive = weakref.ref(a)
        del a, b
        assert alive() is not None  # a reference cycle: its counts never reach zero
        thread = _malloc.start_trimming(every=0.01, stop=stop)
        assert thread is not None
        deadline = time.monotonic() + 5
        while alive() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert alive() is None
    finally:
        stop.set()
        if was_enabled:
            gc.enable()
