"""The ingest bench's open loop against a real ``xrm serve``: requests go out on schedule, each is
timed from when it was due, and every one counted as answered is stored and resolved."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench._harness import serve
from bench.bench_ingest_api import PER_BATCH, _load_rate

from xrm.store import Store


def test_open_loop_offers_its_rate_and_every_answer_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "xrm.duckdb"
    with serve(store, {"XRM_MEMORY_LIMIT": "1GB", "XRM_THREADS": "1"}) as url:
        r = asyncio.run(_load_rate(url, seconds=1.0, rate=2_000, warmup=0.5))
    # 1 s at 2,000 events/s: 20 requests of 100 due in the measured span, all answered 200.
    assert r["due_measured"] == 20 and r["requests"] == 20 and r["errors"] == 0
    assert r["events"] == 20 * PER_BATCH and r["events_per_s"] == 2_000
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    with Store.open(store) as s:  # warm-up and measured requests alike
        assert s.count("events") == r["sent_total"] * PER_BATCH == s.count("event_profiles")
