"""The mixed-load bench's memory probe and its report: a real store found inside the process, real
DuckDB and malloc figures, and the slope the lead reads for "memory growth (none)"."""

from __future__ import annotations

import math

from bench._memprobe import sample
from bench.bench_mixed import _memory_table, slope

from xrm.store import Store


def test_probe_reads_every_component_of_a_live_store(store: Store) -> None:
    store.sql("CREATE TABLE t (k VARCHAR PRIMARY KEY)").fetchall()
    store.sql("INSERT INTO t SELECT 'key-' || range FROM range(50000)").fetchall()
    row, first = sample(0.0, None, None, store)
    assert first is None and row["rss"] > 10 and row["anon"] > 0
    assert row["duckdb"]["by_tag"].get("ART_INDEX", 0) > 0  # the primary key's index, in memory
    store.sql("CHECKPOINT").fetchall()  # the rows into the file's blocks
    duck = sample(0.0, None, None, store)[0]["duckdb"]
    assert duck["blocks"] > 0 and duck["memory_limit"].endswith("GiB")  # settings: 2GB
    assert row["malloc"]["used"] > 0 and row["py"]["blocks"] > 100_000


def test_slope_and_table_follow_the_samples() -> None:
    assert math.isnan(slope([(0, 1.0), (10, 2.0)]))
    assert abs(slope([(t, 100 + t / 6) for t in range(0, 600, 10)]) - 10.0) < 1e-9  # 10 MB a minute
    rows = [{"t": float(t), "rss": 300 + t / 60, "anon": 200.0, "duckdb": {"total": 50.0, "blocks": 10,
             "block_size": 262144}, "malloc": {"used": 40.0, "free": 2.0}, "py": {"blocks": 900_000},
             "caches": {"IdentifierCache.owners": 1000, "Identities.glue": 5000}} for t in range(0, 310, 10)]
    table, rss_slope = _memory_table(rows, 300.0)
    assert abs(rss_slope - 1.0) < 1e-9
    assert "| 300 | 305 | 200 | 50 | 2 | 40 | 2 | 900 | 1 | 5 |" in table
    assert table.splitlines()[-1].startswith("| MB/min, 2nd half | +1.00 | +0.00 | +0.00 |")
