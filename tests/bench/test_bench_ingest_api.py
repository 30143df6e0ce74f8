"""The ingest bench's load generator against a real ``xrm serve``: the open loop sends on schedule
and times each request from when it was due, the closed loop keeps N requests in flight, the bodies
go gzip-compressed with unique messageIds, and every request counted as answered is stored and
resolved."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

from bench._harness import serve
from bench._ingest_load import percentile
from bench.bench_ingest_api import PER_BATCH, _load, _requests

from xrm.store import Store


def test_requests_are_gzip_batches_with_unique_message_ids() -> None:
    reqs = _requests("http://127.0.0.1:1", 3)
    ids = []
    for req in reqs:
        head, body = req.split(b"\r\n\r\n", 1)
        assert head.startswith(b"POST /v1/batch HTTP/1.1\r\n")
        assert b"content-encoding: gzip" in head and f"content-length: {len(body)}".encode() in head
        ids += [e["messageId"] for e in json.loads(gzip.decompress(body))["batch"]]
    assert len(ids) == len(set(ids)) == 3 * PER_BATCH


def test_percentile_is_in_ms_and_nan_when_empty() -> None:
    assert percentile([0.001, 0.002, 0.003, 0.004], 0.5) == 3.0
    assert percentile([0.001], 1.0) == 1.0
    assert percentile([], 0.99) != percentile([], 0.99)  # nan


def test_open_loop_offers_its_rate_and_every_answer_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "xrm.duckdb"
    with serve(store, {"XRM_MEMORY_LIMIT": "1GB", "XRM_THREADS": "1"}) as url:
        r = asyncio.run(_load(url, seconds=1.0, connections=0, warmup=0.5, rate=2_000))
    # 1 s at 2,000 events/s: 20 requests of 100 due in the measured span, all answered 200.
    assert r["due_measured"] == 20 and r["requests"] == 20 and r["errors"] == 0
    assert r["events"] == 20 * PER_BATCH and r["events_per_s"] == 2_000
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["loadgen_cpu_s"] >= 0 and r["build_s"] > 0
    with Store.open(store) as s:  # warm-up and measured requests alike
        assert s.count("events") == r["sent_total"] * PER_BATCH == s.count("event_profiles")


def test_closed_loop_keeps_its_connections_busy_and_every_answer_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "xrm.duckdb"
    with serve(store, {"XRM_MEMORY_LIMIT": "1GB", "XRM_THREADS": "1"}) as url:
        r = asyncio.run(_load(url, seconds=1.0, connections=2, warmup=0.3))
    assert r["errors"] == 0 and r["requests"] > 0 and r["events"] == r["requests"] * PER_BATCH
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    with Store.open(store) as s:  # nothing sent twice or lost, warm-up included
        assert s.count("events") == r["sent_total"] * PER_BATCH == s.count("event_profiles")
