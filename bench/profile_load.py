"""CPU seconds of every statement of a load, per kind and per batch: where `xrm load` spends its time.

    python -m bench.profile_load MANIFEST STORE [--json OUT]

Loads ``MANIFEST`` into a new store file ``STORE`` (removed first) in this process, with the
reader in-line (no prefetch thread), so that the CPU time measured around a statement
(``time.process_time``, all threads) is that statement's own: DuckDB's work happens inside
``execute``. Prints the statements by CPU, the reading and file inspection apart, the total and
the peak resident memory; ``--json`` writes (file, batch, statement, CPU s) of every insert, commit
and check, to see how a batch's cost changes as the table grows. Not part of ``python -m bench``:
a tool for bench/results/profile.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_LABEL = re.compile(
    r"(CREATE OR REPLACE TEMP TABLE \w+|INSERT OR IGNORE INTO \w+|INSERT INTO \w+|SELECT count\(\*\)"
    r"|ALTER TABLE \w+ (?:ADD PRIMARY KEY|RENAME)|CREATE INDEX \w+|CREATE TABLE \w+"
    r"|BEGIN TRANSACTION|COMMIT|ROLLBACK|CHECKPOINT|UPDATE \w+|DELETE FROM \w+|SELECT|SET|DROP)"
)


class _Timed:
    """A cursor whose ``execute`` adds its CPU time to ``totals`` (and per batch to ``batches``)."""

    def __init__(self, cur: Any, profile: _Profile) -> None:
        self._cur, self._profile = cur, profile

    def execute(self, sql: str, params: Any = None) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        result = self._cur.execute(sql) if params is None else self._cur.execute(sql, params)
        self._profile.add(sql, time.process_time() - c0, time.perf_counter() - t0)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class _Connection:
    def __init__(self, con: Any, profile: _Profile) -> None:
        self._con, self._profile = con, profile

    def cursor(self) -> _Timed:
        return _Timed(self._con.cursor(), self._profile)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class _Profile:
    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        self.batches: list[tuple[str, int, str, float]] = []
        self.file, self.batch = "", 0
        self.reading = self.inspecting = 0.0

    def add(self, sql: str, cpu: float, wall: float) -> None:
        found = _LABEL.match(" ".join(sql.split())[:80])
        label = found.group(1) if found else " ".join(sql.split())[:60]
        total = self.totals[label]
        total[0] += cpu
        total[1] += wall
        total[2] += 1
        if label.startswith(("INSERT", "COMMIT", "CREATE")):
            self.batches.append((self.file, self.batch, label, cpu))


def profile_load(manifest: Path, store_path: Path, memory_limit: str = "3GB") -> _Profile:
    """Load ``manifest`` into a new ``store_path``; the statements' CPU in the returned profile."""
    import xrm.ingest
    import xrm.ingest._load as load_module
    from xrm.config import Settings
    from xrm.store import Store

    for p in (store_path, Path(f"{store_path}.wal")):
        p.unlink(missing_ok=True)
    prof = _Profile()
    store = Store.open(Settings(store_path=store_path, memory_limit=memory_limit))
    store.con = _Connection(store.con, prof)  # type: ignore[assignment]
    read, inspect, write = load_module.read_batches, load_module.inspect_file, load_module._Writer.write

    def timed_read(facts: Any, rows: int, shape: Any = None) -> Iterator[Any]:
        prof.file, prof.batch = facts.path.name, 0
        batches = read(facts, rows, shape)
        while True:
            c0 = time.process_time()
            batch = next(batches, None)
            prof.reading += time.process_time() - c0
            if batch is None:
                return
            yield batch

    def timed_inspect(path: Path, mapping: Any) -> Any:
        c0 = time.process_time()
        try:
            return inspect(path, mapping)
        finally:
            prof.inspecting += time.process_time() - c0

    def counted_write(self: Any, batch: Any) -> None:
        prof.batch += 1
        write(self, batch)

    patches = {"read_batches": timed_read, "inspect_file": timed_inspect, "prefetch": lambda b: b}
    saved = {name: getattr(load_module, name) for name in patches}
    for name, value in patches.items():
        setattr(load_module, name, value)
    load_module._Writer.write = counted_write  # type: ignore[method-assign]
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        xrm.ingest.load_manifest(store, manifest, show_progress=False)
        store.close()
        prof.totals["(whole load, store closed)"] = [time.process_time() - c0, time.perf_counter() - t0, 1]
    finally:
        for name, value in saved.items():
            setattr(load_module, name, value)
        load_module._Writer.write = write  # type: ignore[method-assign]
    return prof


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("store", type=Path, help="a new store file (removed first; not in the repository)")
    parser.add_argument("--json", type=Path, help="write the per-batch CPU seconds here")
    parser.add_argument("--memory-limit", default="3GB")
    args = parser.parse_args()
    prof = profile_load(args.manifest, args.store, args.memory_limit)
    with open("/proc/self/status", encoding="ascii") as fh:
        peak = next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmHWM"))
    print(f"peak {peak:,} MB, store file {args.store.stat().st_size >> 20:,} MB, load average "
          f"{os.getloadavg()[0]:.1f}; reading batches {prof.reading:.1f} CPU s, inspecting files "
          f"{prof.inspecting:.1f} CPU s")
    for label, (cpu, wall, n) in sorted(prof.totals.items(), key=lambda kv: -kv[1][0]):
        print(f"{cpu:9.2f} CPU s {wall:9.2f} wall s {n:6d} x  {label}")
    if args.json:
        args.json.write_text(json.dumps(prof.batches), encoding="utf-8")


if __name__ == "__main__":
    main()
