"""``python -m bench._memprobe OUT.jsonl [xrm.api arguments]``: `xrm serve` with its memory sampled.

The mixed-load bench saw the server's resident memory rise by about 200 MB in 10 minutes; RSS alone
does not say whether that is DuckDB's buffer pool following a growing store, the Python heap,
memory malloc keeps after a free, or a cache filling up. This runs the same server
(``xrm.api.__main__.main``) with a thread that writes one JSON line every ``XRM_MEMPROBE_S``
seconds (default 10) to OUT.jsonl, with, from inside the process:

- ``rss`` / ``anon`` / ``file``: VmRSS and its anonymous and file-backed parts (MB);
- ``duckdb``: DuckDB's own accounting (``duckdb_memory()``, MB, by tag, and the total), the
  database's blocks (``pragma database_size``) and its temporary (spill) bytes;
- ``malloc``: glibc's ``mallinfo2`` (MB): bytes handed out (``used``) and kept free inside the heap
  (``free``): RSS growing with ``used`` flat is fragmentation, not a leak;
- ``py``: Python objects (``sys.getallocatedblocks``, gc-tracked object count) and, with
  ``XRM_MEMPROBE_TRACEMALLOC=1``, the traced Python heap and the source lines whose allocations
  grew most since the baseline (the first sample after ``XRM_MEMPROBE_BASELINE_S``, default 60 s:
  start-up and first loads are not growth; tracemalloc slows the server: diagnosis only);
- ``caches``: entries in the event writer's identifier caches (bounded at 200,000 each) and in the
  identity graph /v1/decide holds in memory (``Identities``: every user id and identifier).

The store is found through the garbage collector (the app's one :class:`~xrm.store.Store`), so the
server's code is not changed for the measurement.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["sample"]

_MB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


def _malloc() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"used": (m.uordblks + m.hblkhd) / _MB, "free": m.fordblks / _MB, "mmap": m.hblkhd / _MB}


def _status() -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[{"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}[key]] = int(rest.split()[0]) / 1024
    return out




def _duckdb(store: Any) -> dict[str, Any]:
    cur = store.con.cursor()
    try:
        tags = cur.execute(
            "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory()"
        ).fetchall()
        size = cur.execute("PRAGMA database_size").fetchall()[0]
    finally:
        cur.close()
    by_tag = {t: round(m / _MB, 1) for t, m, _ in tags if m}
    return {"total": round(sum(m for _, m, _ in tags) / _MB, 1),
            "temp": round(sum(t for *_, t in tags) / _MB, 1),
            "by_tag": by_tag, "blocks": int(size[3]), "block_size": int(size[2]),
            "memory_usage": size[-2], "memory_limit": size[-1]}


_HELD = {  # class -> the dict attributes counted (entries)
    "IdentifierCache": ("_cache", "_plain", "_repeated", "owners"),  # the event writer's, bounded
    "Identities": ("pid_of", "glue", "evidence", "users", "status"),  # /v1/decide's identity graph
}


def _find() -> tuple[Any, list[Any], int]:
    """The app's store, the objects of :data:`_HELD` and the gc-tracked object count (one pass)."""
    from xrm.api._decide import Identities
    from xrm.interact._timeline_resolve import IdentifierCache
    from xrm.store import Store

    store, held = None, []
    objects = gc.get_objects()
    for obj in objects:
        if isinstance(obj, Store):
            store = obj
        elif isinstance(obj, (IdentifierCache, Identities)):
            held.append(obj)
    return store, held, len(objects)


def _caches(held: list[Any]) -> dict[str, int]:
    """Entries per class and attribute, e.g. ``Identities.glue``."""
    out: dict[str, int] = {}
    for obj in held:
        cls = type(obj).__name__
        for name in _HELD[cls]:
            key = f"{cls}.{name.strip('_')}"
            out[key] = out.get(key, 0) + len(getattr(obj, name))
    return out


def sample(
    began: float, tracer: Any | None, first: Any | None, store: Any | None = None
) -> tuple[dict[str, Any], Any]:
    """One sample of every component (and the tracemalloc snapshot it compared against).

    ``store``: the store to read DuckDB's figures from; by default the one found among the
    process's objects (the server holds one; a test process may hold closed ones too)."""
    row: dict[str, Any] = {"t": round(time.monotonic() - began, 1), "at": time.time(), **_status(),
                           "malloc": _malloc()}
    found, caches, objects = _find()
    store = store if store is not None else found
    if store is not None:
        try:
            row["duckdb"] = _duckdb(store)
        except Exception as exc:  # the store closing under us at shutdown
            row["duckdb"] = {"error": type(exc).__name__}
    row["py"] = {"blocks": sys.getallocatedblocks(), "objects": objects}
    row["caches"] = _caches(caches)
    if tracer is not None:
        snap = tracer.take_snapshot()
        row["py"]["traced"] = round(tracer.get_traced_memory()[0] / _MB, 1)
        if first is None:
            if row["t"] >= float(os.environ.get("XRM_MEMPROBE_BASELINE_S", "60")):  # after first loads
                first = snap
        else:
            top = snap.compare_to(first, "lineno")[:8]
            row["py"]["grew"] = [f"{s.size_diff / _MB:+.1f} MB {s.traceback[0].filename.rsplit('/', 3)[-1]}:"
                                 f"{s.traceback[0].lineno}" for s in top]
    return row, first


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = ["xrm.api", *sys.argv[2:]]
    every = float(os.environ.get("XRM_MEMPROBE_S", "10"))
    tracer = None
    if os.environ.get("XRM_MEMPROBE_TRACEMALLOC") == "1":
        import tracemalloc

        tracemalloc.start(1)
        tracer = tracemalloc
    began = time.monotonic()

    def loop() -> None:
        first = None
        with out.open("a", encoding="utf-8") as fh:
            while True:
                time.sleep(every)
                try:
                    row, first = sample(began, tracer, first)
                except Exception as exc:  # a probe must never take the server down
                    row = {"t": round(time.monotonic() - began, 1), "error": repr(exc)}
                fh.write(json.dumps(row) + "\n")
                fh.flush()

    threading.Thread(target=loop, daemon=True, name="memprobe").start()
    from xrm.api.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
