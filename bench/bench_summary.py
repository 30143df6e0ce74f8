"""The purchase summary at scale: up to 100 million `Order Completed` transactions in DuckDB.

Issue 4, item 1: 100M transactions must summarise within this machine's 24 GiB, with memory that
grows with the number of customers, not of transactions.  The orders are made inside DuckDB with
SQL ``range()`` (nothing per order passes through Python), 10 per customer on average, spread over
two years, in their own process; a fresh process then runs ``purchase_summary`` (the Ibis
expression the pipeline runs) on the store opened with a DuckDB ``memory_limit``, writing the
summary to Parquet.  Its wall time and peak resident memory (VmHWM, the whole process) are what
the table reports, with the size of DuckDB's spill files at their largest.

    python -m bench --only summary [--quick]            # 1M and 10M (quick: 1M)
    XRM_BENCH_SUMMARY_SIZES=10000000,100000000 python -m bench --only summary
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Measurement, Section, machine_line, measure_python

__all__ = ["generate_orders", "run", "section", "summary_at"]

MEMORY_LIMIT = "8GB"  # well under the 24 GiB machine, so that spilling, not RAM, carries 100M
_START = "2024-01-01"
_SPAN_S = 2 * 365 * 86400

# Deterministic pseudo-random columns from hash(i): customer ids uniform over n_customers, times
# uniform over two years, spend 1.00-200.99.  One statement: DuckDB writes it in parallel.
_GENERATE = """
CREATE OR REPLACE TABLE bench_orders AS
SELECT 'track' AS type, 'Order Completed' AS event,
       'u' || CAST(hash(i) % {customers} AS VARCHAR) AS user_id,
       TIMESTAMP '{start}' + to_seconds(CAST(hash(i + {n}) % {span} AS BIGINT)) AS ts,
       CAST(1 + (hash(i + 2 * {n}) % 20000) / 100.0 AS DOUBLE) AS revenue
FROM range({n}) AS t(i)
"""

_OPEN = """
from pathlib import Path
from xrm.config import Settings
from xrm.store import Store
folder = Path({folder!r})
store = Store.open(Settings(store_path=folder / "bench.duckdb", memory_limit={memory!r}))
"""

_SUMMARY_RUN = """
from xrm.differentiate import order_events, purchase_summary
orders = order_events(store.ibis.table("bench_orders"))
expr = purchase_summary(orders, observation_end="2025-12-31", calibration_end="2025-06-30")
expr.to_parquet(folder / "summary.parquet")
import pyarrow.parquet as pq
extra = {"customers": pq.ParquetFile(folder / "summary.parquet").metadata.num_rows}
"""


def generate_orders(folder: Path, n_tx: int, *, memory_limit: str = MEMORY_LIMIT) -> float:
    """``n_tx`` orders by ``n_tx // 10`` customers in ``folder/bench.duckdb`` (a child process);
    returns its wall time."""
    sql = _GENERATE.format(customers=max(n_tx // 10, 1), start=_START, n=n_tx, span=_SPAN_S)
    code = _OPEN.format(folder=str(folder), memory=memory_limit) + f"store.sql({sql!r})\nstore.close()\n"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a spill file removed while we looked
                total += (Path(root) / name).stat().st_size
    return total


def summary_at(n_tx: int, *, memory_limit: str = MEMORY_LIMIT) -> dict[str, Any]:
    """Generate ``n_tx`` orders, then time the summary in a fresh process (one run)."""
    with tempfile.TemporaryDirectory(prefix="xrm-bench-summary-", dir=os.environ.get("XRM_BENCH_TMP")) as tmp:
        folder = Path(tmp)
        made_s = generate_orders(folder, n_tx, memory_limit=memory_limit)
        db_bytes = (folder / "bench.duckdb").stat().st_size
        spill = {"peak": 0}
        done = threading.Event()

        def watch() -> None:  # DuckDB deletes its spill files when done: sample their size
            while not done.wait(1.0):
                spill["peak"] = max(spill["peak"], _dir_bytes(folder / "bench.duckdb.tmp"))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            m: Measurement = measure_python(
                f"summary {n_tx:,}", _SUMMARY_RUN,
                setup=_OPEN.format(folder=str(folder), memory=memory_limit), runs=1, timeout=6 * 3600,
            )
        finally:
            done.set()
            watcher.join()
        return {
            "transactions": n_tx, "customers": m.extra.get("customers", 0), "seconds": m.median_s,
            "peak_mb": m.median_peak_mb, "generate_s": made_s, "db_mb": db_bytes / 2**20,
            "spill_mb": spill["peak"] / 2**20, "load": os.getloadavg()[0], "memory_limit": memory_limit,
        }


def _sizes(quick: bool) -> list[int]:
    env = os.environ.get("XRM_BENCH_SUMMARY_SIZES")
    if env:
        return [int(x) for x in env.split(",") if x.strip()]
    return [1_000_000] if quick else [1_000_000, 10_000_000]


def lines_for(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Orders made in DuckDB with `range()` (10 per customer "
        "on average over two years, customer ids as strings), then `purchase_summary` "
        "(calibration end 2025-06-30, observation end 2025-12-31) in a fresh process, written to "
        "Parquet. One run per size. Peak memory: VmHWM of that whole process (Python, Ibis, "
        "DuckDB). Spill: the largest size of DuckDB's temp directory, sampled each second.",
        "",
        "| transactions | customers | DuckDB memory_limit | summary time (s) | peak memory (MiB) "
        "| spill peak (MiB) | store file (MiB) | generate (s) | 1-min load at end |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['transactions']:,} | {r['customers']:,} | {r.get('memory_limit', MEMORY_LIMIT)} "
            f"| {r['seconds']:.1f} | {r['peak_mb']:,.0f} "
            f"| {r['spill_mb']:,.0f} | {r['db_mb']:,.0f} | {r['generate_s']:.1f} | {r['load']:.1f} |"
        )
    return lines


def run(quick: bool) -> Section:
    return section([summary_at(n) for n in _sizes(quick)])


def section(rows: list[dict[str, Any]], note: str = "") -> Section:
    """The BENCHMARKS.md section for measured ``rows`` (also for rows measured by hand), with a
    ``note`` on runs that did not finish."""
    big = max(rows, key=lambda r: r["transactions"])
    met = big["transactions"] >= 100_000_000 and big["peak_mb"] < 24 * 1024
    lines = [
        f"Machine: {machine_line()} (each row's own 1-min load is in the table; other work shares "
        "the machine, its memory included).",
        "",
        *lines_for(rows),
        "",
        f"Target (issue 4): 100M transactions summarised within 24 GiB: **{'met' if met else 'NOT met'}**"
        + ("" if big["transactions"] >= 100_000_000 else
           f" in this run (largest size run: {big['transactions']:,}; "
           "`XRM_BENCH_SUMMARY_SIZES=100000000 python -m bench --only summary`)")
        + ".",
        *([note] if note else []),
    ]
    return Section("Purchase summary at scale (DuckDB)", "\n".join(lines))
