"""bench ingest_api's row selection: the environment picks rows and shortens them for A/B runs."""

from __future__ import annotations

from bench.bench_ingest_api import CONNECTIONS, RATES, plan


def test_the_default_plan_is_every_row() -> None:
    seconds, warmup, rows = plan(False, {})
    assert (seconds, warmup) == (60.0, 5.0)
    assert rows == [(c, 0.0) for c in CONNECTIONS] + [(0, float(r)) for r in RATES]


def test_rows_and_seconds_from_the_environment() -> None:
    env = {"XRM_BENCH_INGEST_ROWS": "3000r, 16,10000r", "XRM_BENCH_INGEST_SECONDS": "30"}
    seconds, _, rows = plan(False, env)
    assert seconds == 30.0
    assert rows == [(0, 3000.0), (16, 0.0), (0, 10000.0)]
