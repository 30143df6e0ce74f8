"""The 100M-transaction summary benchmark's machinery on a small size: the orders are made in DuckDB
as specified (customers, two years, spend), and the measured run summarises every customer."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_summary  # noqa: E402


def test_generated_orders_follow_the_spec(tmp_path):
    bench_summary.generate_orders(tmp_path, 20_000, memory_limit="1GB")
    con = duckdb.connect(str(tmp_path / "bench.duckdb"), read_only=True)
    try:
        n, customers, lo, hi, r_lo, r_hi, kinds = con.execute(
            "SELECT count(*), count(DISTINCT user_id), min(ts), max(ts), min(revenue), max(revenue), "
            "count(DISTINCT (type, event)) FROM bench_orders"
        ).fetchone()
    finally:
        con.close()
    assert n == 20_000 and 1_900 <= customers <= 2_000 and kinds == 1
    assert str(lo) >= "2024-01-01" and str(hi) < "2026-01-01"
    assert r_lo >= 1.0 and r_hi < 201.0


def test_a_small_run_summarises_every_customer_and_writes_its_section():
    row = bench_summary.summary_at(20_000, memory_limit="1GB")
    # customers who first bought after the calibration end (2025-06-30) are not yet customers
    assert 1_500 < row["customers"] <= 2_000 and row["peak_mb"] > 0 and row["seconds"] > 0
    text = bench_summary.section([row]).body
    assert "| 20,000 |" in text and "NOT met" in text  # 20,000 is not the 100M of the target
