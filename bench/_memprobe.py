"""``python -m bench._memprobe OUT.jsonl [xrm.api arguments]``: `xrm serve` with its memory sampled.

The mixed-load bench saw the server's resident memory rise by about 200 MB in 10 minutes; RSS alone
does not say whether that is DuckDB's buffer pool following a growing store, the Python heap,
memory malloc keeps after a free, or a cache filling up. This runs the same server
(``xrm.api.__main__.main``) with a thread that writes one JSON line every ``XRM_MEMPROBE_S``
seconds (default 10) to OUT.jsonl, with, from inside the process:

- ``rss`` / ``anon`` / ``file``: VmRSS and its anonymous and file-backed parts (MB);
- ``duckdb``: DuckDB's own accounting (``duckdb_memory()``, MB, by tag, and the total), the
  database's blocks (``pragma database_size``), its temporary (spill) bytes and the size of its
  write-ahead log (what was committed since the last checkpoint, held in memory until then);
- ``malloc``: glibc's ``mallinfo2`` (MB): bytes handed out (``used``) and kept free inside the heap
  (``free``): RSS growing with ``used`` flat is fragmentation, not a leak;
- ``py``: Python objects (``sys.getallocatedblocks``, gc-tracked object count, the collector's
  pending counts, collections per generation and frozen objects; after the baseline sample, the
  gc-tracked types whose count grew most since it) and, with
  ``XRM_MEMPROBE_TRACEMALLOC=1``, Python's allocations made since the baseline (the first sample
  after ``XRM_MEMPROBE_BASELINE_S``, default 60 s: start-up and first loads are not growth) and
  still alive, grouped by the 4 innermost frames of where they were made. Tracing starts at the
  baseline, so snapshots hold only the growth and stay quick (tracing from start-up, session 4's
  snapshots of the 125 MB start-up heap took a minute each on the loaded machine); it still slows
  the server (diagnosis only);
- ``caches``: entries in the event writer's identifier caches (bounded at 200,000 each) and in the
  identity graph /v1/decide holds in memory (``Identities``: every user id and identifier).

The store is found through the garbage collector (the app's one :class:`~xrm.store.Store`), so the
server's code is not changed for the measurement.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import sys
import threading
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["sample"]

_MB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


@cache  # one CDLL: a new one per sample made new ctypes classes each time (the probe's own growth)
def _mallinfo2() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc.mallinfo2


def _malloc() -> dict[str, float]:
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return {}
    m = mallinfo2()
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
    wal = Path(f"{store.path}.wal")  # rows committed but not yet checkpointed into the file's blocks
    wal_mb = round(wal.stat().st_size / _MB, 1) if wal.exists() else 0.0
    return {"total": round(sum(m for _, m, _ in tags) / _MB, 1),
            "temp": round(sum(t for *_, t in tags) / _MB, 1),
            "by_tag": by_tag, "wal": wal_mb, "blocks": int(size[3]), "block_size": int(size[2]),
            "memory_usage": size[-2], "memory_limit": size[-1]}


def index_mb(con: Any) -> float:
    """MB of the store file's used blocks that no table's column segments hold: its indexes (plus a
    few blocks of catalog metadata). DuckDB 2.0 keeps an index's buffers in memory once a look-up
    or an insert loaded them (the ART_INDEX tag) and never evicts them, so this is what ART_INDEX
    tends to when every index is touched: a figure that grows with the data, not with time. Loaded,
    an index takes a little more than on disk (every index of a 297k-event mixed-bench store, loaded
    by look-ups of all its keys: 95 MB of ART_INDEX; this: 86 MB). 0.6 s at 1.2M events."""
    size = con.execute("PRAGMA database_size").fetchall()[0]
    block_size, used = int(size[2]), int(size[4])
    tables = [t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()]
    held: set[int] = set()
    for table in tables:
        for block, more in con.execute(
            "SELECT block_id, additional_block_ids FROM pragma_storage_info(?) WHERE block_id >= 0", [table]
        ).fetchall():
            held.add(int(block))
            held.update(int(b) for b in more or ())
    return round(max(0, used - len(held)) * block_size / _MB, 1)


_HELD = {  # class -> the dict attributes counted (entries)
    "IdentifierCache": ("_cache", "_plain", "_repeated", "owners", "evidence"),  # the event writer's
    "Identities": ("pid_of", "glue", "evidence", "users", "status", "strangers"),  # /v1/decide's graph
}


# The store and the objects of _HELD made in this process (see :func:`watch`).
_MADE: list[Any] = []


def watch() -> None:
    """Remember every Store, IdentifierCache and Identities made from now on. The server freezes
    what it loaded at start-up (``gc.freeze``), and frozen objects are not in
    ``gc.get_objects()``: the probe would not find them there."""
    from xrm.api._decide import Identities
    from xrm.interact._timeline_resolve import IdentifierCache
    from xrm.store import Store

    for cls in (Store, IdentifierCache, Identities):
        init = cls.__init__

        def remembered(self: Any, *args: Any, __init: Any = init, **kwargs: Any) -> None:
            __init(self, *args, **kwargs)
            _MADE.append(self)

        cls.__init__ = remembered  # type: ignore[method-assign]


def _find() -> tuple[Any, list[Any], Counter[str]]:
    """The app's store, the objects of :data:`_HELD` and the gc-tracked objects by type (one pass)."""
    from xrm.api._decide import Identities
    from xrm.interact._timeline_resolve import IdentifierCache
    from xrm.store import Store

    # The first store made since watch() is the server's (opened at start-up); else the last found.
    made = [obj for obj in _MADE if isinstance(obj, Store)]
    store: Any = made[0] if made else None
    held: list[Any] = []
    objects = gc.get_objects()
    types: Counter[str] = Counter()
    for obj in [*_MADE, *objects]:
        types[type(obj).__qualname__] += 1
        if isinstance(obj, Store):
            store = store if made else obj
        elif isinstance(obj, (IdentifierCache, Identities)) and all(h is not obj for h in held):
            held.append(obj)
    del objects
    for obj in _MADE:
        types[type(obj).__qualname__] -= 1
    return store, held, types


# gc-tracked objects by type at the baseline sample (see :func:`sample`): which kinds grow after it.
_TYPES_AT_BASELINE: Counter[str] = Counter()


def _caches(held: list[Any]) -> dict[str, int]:
    """Entries per class and attribute, e.g. ``Identities.glue``."""
    out: dict[str, int] = {}
    for obj in held:
        cls = type(obj).__name__
        for name in _HELD[cls]:
            key = f"{cls}.{name.strip('_')}"
            out[key] = out.get(key, 0) + len(getattr(obj, name))
    return out


def _traced(tracer: Any) -> dict[str, Any]:
    """Python's traced heap (MB) and its largest groups by where they were allocated.

    Tracing begins at the baseline (:func:`main`): what it holds is what was allocated since and is
    still alive, so the largest groups are where the growth comes from (and the snapshot is small:
    the start-up heap is not traced)."""
    snap = tracer.take_snapshot()
    return {"traced": round(tracer.get_traced_memory()[0] / _MB, 1), "grew": [
        f"{s.size / _MB:+.2f} MB {s.count} blocks "
        + " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(s.traceback))
        for s in snap.statistics("traceback")[:10]]}


def sample(
    began: float, tracer: Any | None, first: Any | None, store: Any | None = None
) -> tuple[dict[str, Any], Any]:
    """One sample of every component (and the tracemalloc snapshot it compared against).

    ``store``: the store to read DuckDB's figures from; by default the one found among the
    process's objects (the server holds one; a test process may hold closed ones too)."""
    row: dict[str, Any] = {"t": round(time.monotonic() - began, 1), "at": time.time(), **_status(),
                           "malloc": _malloc()}
    found, caches, types = _find()
    store = store if store is not None else found
    if store is not None:
        try:
            gate = getattr(store, "gate", None)  # the server may release index memory meanwhile
            with gate.shared(urgent=True) if gate is not None else contextlib.nullcontext():
                row["duckdb"] = _duckdb(store)
        except Exception as exc:  # the store closing under us at shutdown
            row["duckdb"] = {"error": type(exc).__name__}
    collections = [g["collections"] for g in gc.get_stats()]
    row["py"] = {"blocks": sys.getallocatedblocks(), "objects": types.total(),
                 "gc": {"pending": list(gc.get_count()), "collections": collections,
                        "frozen": gc.get_freeze_count()}}
    row["caches"] = _caches(caches)
    if row["t"] >= float(os.environ.get("XRM_MEMPROBE_BASELINE_S", "60")):
        if not _TYPES_AT_BASELINE:
            _TYPES_AT_BASELINE.update(types)
        else:  # the types whose count grew most since the baseline (cheap: no tracemalloc needed)
            grew = types.copy()
            grew.subtract(_TYPES_AT_BASELINE)
            row["py"]["types_grew"] = {k: v for k, v in grew.most_common(8) if v > 0}
    if tracer is not None and tracer.is_tracing():
        row["py"] |= _traced(tracer)
    return row, first


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = ["xrm.api", *sys.argv[2:]]
    if os.environ.get("XRM_MEMPROBE_STDERR"):  # the server's log kept (the harness's is a temp file)
        log = os.open(os.environ["XRM_MEMPROBE_STDERR"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 2)
    every = float(os.environ.get("XRM_MEMPROBE_S", "10"))
    baseline = float(os.environ.get("XRM_MEMPROBE_BASELINE_S", "60"))
    tracer = None
    if os.environ.get("XRM_MEMPROBE_TRACEMALLOC") == "1":
        import tracemalloc

        tracer = tracemalloc
    began = time.monotonic()

    def loop() -> None:
        with out.open("a", encoding="utf-8") as fh:
            while True:
                time.sleep(every)
                try:
                    row, _ = sample(began, tracer, None)
                    if tracer is not None and not tracer.is_tracing() and row["t"] >= baseline:
                        tracer.start(4)  # from here on: the allocations after start-up and first loads
                except Exception as exc:  # a probe must never take the server down
                    row = {"t": round(time.monotonic() - began, 1), "error": repr(exc)}
                fh.write(json.dumps(row) + "\n")
                fh.flush()

    watch()
    threading.Thread(target=loop, daemon=True, name="memprobe").start()
    from xrm.api.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
