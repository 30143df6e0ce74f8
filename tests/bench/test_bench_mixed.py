"""The mixed-load bench's memory probe and its report: a real store found inside the process, real
DuckDB and malloc figures, and the slope the lead reads for "memory growth (none)"."""

from __future__ import annotations

import json
import math
import random

import bench._memprobe as memprobe
import bench.bench_mixed as mixed
from bench._memprobe import sample
from bench.bench_mixed import _memory_table, slope, verdict

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
    assert duck["wal"] == 0.0  # all checkpointed
    assert row["malloc"]["used"] > 0 and row["py"]["blocks"] > 100_000


def test_slope_and_table_follow_the_samples() -> None:
    assert math.isnan(slope([(0, 1.0), (10, 2.0)]))
    assert abs(slope([(t, 100 + t / 6) for t in range(0, 600, 10)]) - 10.0) < 1e-9  # 10 MB a minute
    rows = [{"t": float(t), "rss": 300 + t / 60, "anon": 200.0, "duckdb": {"total": 50.0, "blocks": 10,
             "block_size": 262144, "by_tag": {"ART_INDEX": 7.0}}, "malloc": {"used": 40.0, "free": 2.0},
             "py": {"blocks": 900_000}, "caches": {"IdentifierCache.owners": 1000, "Identities.glue": 5000}}
            for t in range(-30, 310, 10)]
    table, rss_slope = _memory_table(rows, 300.0)  # the warm-up's samples (t < 0) are left out
    assert abs(rss_slope - 1.0) < 1e-9
    assert "| 0 | 300 | 200 | 50 | 7 | 250 | 2 | nan | 40 | 2 | 108 | 900 | 1 | 5 |" in table
    assert "| 300 | 305 | 200 | 50 | 7 | 255 | 2 | nan | 40 | 2 | 108 | 900 | 1 | 5 |" in table
    assert table.splitlines()[-1].startswith("| MB/min, 2nd half | +1.00 | +0.00 | +0.00 | +0.00 | +1.00 |")


def test_samples_without_duckdb_figures_and_after_the_load_are_left_out(tmp_path) -> None:
    probe = tmp_path / "memory.jsonl"
    rows = [{"at": 1000.0 + t, "rss": 300.0 + t / 60,
             "duckdb": {"total": 50.0, "by_tag": {"ART_INDEX": 5 + t / 60}}} for t in range(0, 301, 10)]
    rows.append({"at": 1000.0 + 305, "rss": 900.0, "duckdb": {"error": "ConnectionException"}})  # shutdown
    probe.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    samples = mixed._samples(probe, 1000.0, 300.0)
    assert len(samples) == 31 and samples[-1]["t"] == 300.0
    comps = [(s["t"], mixed._component(s)) for s in samples]
    comps.append((299.0, mixed._component(rows[-1] | {"t": 299.0})))  # a failed DuckDB read mid-run
    assert abs(slope([(t, c["RSS less DuckDB"]) for t, c in comps]) - 1.0) < 1e-9  # the nan is skipped
    assert verdict([(t, c["ART"]) for t, c in comps], 300, 60)[1].endswith("+1.00 MB/min")


def test_art_line_sets_index_buffers_against_the_indexes() -> None:
    comps = [{"ART": 10.0}, {"ART": float("nan")}, {"ART": 30.0}, {"ART": 20.0}]
    line = mixed._art_line(comps, (40.0, 50.0))
    assert "10 MB at the start, 20 MB at the end, 30 MB at most" in line
    assert "40 MB before the run, 50 MB after" in line
    assert "25% of them at the start, 40% at the end, 60% at most" in line
    assert mixed._art_line([], (1.0, 1.0)) == "ART_INDEX: no samples"


def test_index_mb_counts_the_blocks_of_indexes_not_tables(store: Store) -> None:
    from bench._memprobe import index_mb

    cur = store.con.cursor()
    cur.execute("CREATE TABLE plain AS SELECT 'visitor-' || range AS k, range AS v FROM range(300000)")
    cur.execute("CHECKPOINT")
    before = index_mb(cur)
    cur.execute("CREATE INDEX plain_k ON plain (k)")
    cur.execute("CHECKPOINT")
    after = index_mb(cur)
    assert before < 1.0 and after - before >= 2.0, (before, after)  # the table not counted; its index is
    cur.execute("DROP INDEX plain_k")
    cur.execute("CHECKPOINT")
    assert index_mb(cur) <= before + 0.5


def test_verdict_tells_a_sawtooth_from_a_slow_leak() -> None:
    # A cache emptied and refilled every 100 s: up and down by 20 MB, flat on the whole.
    saw = [(float(t), 400 + (t % 100) / 5) for t in range(0, 601, 10)]
    ok, says = verdict(saw, 600, 60)
    assert ok, says
    # 0.8 MB/min is under the slope rule, but 8 MB over 10 minutes on 100 MB is over the 5% rule.
    leak = [(float(t), 100 + t * 0.8 / 60) for t in range(0, 601, 10)]
    ok, says = verdict(leak, 600, 60)
    assert not ok and "+0.80 MB/min" in says
    steep = [(float(t), 1000 + t * 1.5 / 60) for t in range(0, 601, 10)]  # 1.5 MB/min on 1 GB: 1.4%
    assert not verdict(steep, 600, 60)[0]
    assert verdict([(0.0, 1.0)], 600, 60) == (False, "not enough samples")


def test_batches_see_the_population_then_mix_in_new_visitors(monkeypatch) -> None:
    monkeypatch.setattr(mixed, "VISITORS", 120)
    monkeypatch.setattr(mixed, "NEW", 0.2)
    rng = random.Random(3)
    first = [json.loads(mixed._batch(r, rng))["batch"] for r in range(3)]  # 3 x 50 covers 120
    assert {c["userId"] for b in first for c in b} == {f"visitor-{i}" for i in range(120)}
    later = [c for r in range(3, 203) for c in json.loads(mixed._batch(r, rng))["batch"]]
    new = [c for c in later if c["userId"].startswith("visitor-n")]
    assert 0.17 < len(new) / len(later) < 0.23  # the new visitors' share
    assert len({c["userId"] for c in new}) == len(new)  # each new one is new
    returning = {c["userId"] for c in later} - {c["userId"] for c in new}
    assert returning <= {f"visitor-{i}" for i in range(120)}
    assert len({c["messageId"] for c in later}) == len(later)


def test_probe_names_the_object_types_that_grew(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("XRM_MEMPROBE_BASELINE_S", "0")
    monkeypatch.setattr(memprobe, "_TYPES_AT_BASELINE", memprobe.Counter())

    class Leaked:
        pass

    kept: list[object] = []
    row, _ = sample(0.0, None, None, store)  # the baseline
    assert "types_grew" not in row["py"] and row["py"]["gc"]["collections"][0] >= 0
    kept.extend(Leaked() for _ in range(5000))
    row, _ = sample(0.0, None, None, store)
    assert row["py"]["types_grew"]["test_probe_names_the_object_types_that_grew.<locals>.Leaked"] >= 5000
    for _ in range(3):
        row, _ = sample(0.0, None, None, store)
    assert not {"CDLL", "PyCFuncPtrType"} & set(row["py"]["types_grew"])  # the probe adds nothing of its own


def test_probe_traces_only_what_was_allocated_after_tracing_began() -> None:
    import tracemalloc

    before = [bytearray(1000) for _ in range(2000)]  # allocated before: not in the figures
    tracemalloc.start(4)
    try:
        after = [bytearray(1000) for _ in range(3000)]
        got = memprobe._traced(tracemalloc)
    finally:
        tracemalloc.stop()
    assert len(before) + len(after) == 5000
    top = got["grew"][0].split()  # the innermost frame first: the line that allocated
    assert top[4].startswith("test_bench_mixed.py:") and int(top[2]) >= 3000, got["grew"]
    assert 2.5 < got["traced"] < 10


def test_probe_finds_the_store_and_caches_after_the_server_froze_them(settings, monkeypatch) -> None:
    import gc

    from xrm.api._decide import Identities
    from xrm.interact._timeline_resolve import IdentifierCache

    for cls in (Store, IdentifierCache, Identities):
        monkeypatch.setattr(cls, "__init__", cls.__init__)  # watch() is undone afterwards
    monkeypatch.setattr(memprobe, "_MADE", [])
    memprobe.watch()
    with Store.open(settings) as s:
        ids = Identities(limit=10)
        ids.glue.put(("email", "a@b.de"), 1)
        gc.freeze()  # as /v1/decide does once its graph is loaded: gc.get_objects() no longer sees them
        try:
            assert all(o is not s for o in gc.get_objects())
            row, _ = sample(0.0, None, None)
        finally:
            gc.unfreeze()
        assert row["duckdb"]["blocks"] >= 0 and row["caches"]["Identities.glue"] == 1
