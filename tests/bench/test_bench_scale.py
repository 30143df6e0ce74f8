"""The scale benchmark's own machinery: stages in real child processes (done, failed, out of time),
the growth slope that names a superlinear step, and the chart it draws."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_scale  # noqa: E402


def test_a_stage_reports_time_cpu_and_peak_memory_of_its_own_process():
    code = "data = bytearray(200 * 1024 * 1024)\nextra = {'n': 1}"
    result = bench_scale._run_stage("data = None", code, 60)
    assert result["status"] == "done"
    assert result["extra"] == {"n": 1}
    assert result["seconds"] >= 0 and result["cpu_s"] >= 0
    # The 200 MB allocated in the timed part show in this stage's peak, above its floor.
    assert result["peak_mb"] - result["floor_mb"] > 150


def test_a_stage_past_the_budget_is_killed_and_recorded_as_not_finished():
    result = bench_scale._run_stage("import time", "time.sleep(30)", 1.5)
    assert result["status"] == "not finished"
    assert "time budget" in result["why"]
    assert result["seconds"] < 20


def test_a_failing_stage_is_recorded_with_its_error():
    result = bench_scale._run_stage("", "raise MemoryError('Out of Memory Error: could not allocate')", 60)
    assert result["status"] == "not finished"
    assert result["why"].startswith("out of memory: failed (exit 1)")
    assert "could not allocate" in result["why"]
    assert bench_scale._run_stage("", "pass", 0)["status"] == "not run"


def test_fit_slope_is_one_for_linear_and_two_for_quadratic_growth():
    sizes = [1e4, 5e4, 1e5, 1e6]
    assert bench_scale.fit_slope([(n, 3e-4 * n) for n in sizes]) == pytest.approx(1.0)
    assert bench_scale.fit_slope([(n, 1e-9 * n * n) for n in sizes]) == pytest.approx(2.0)
    assert bench_scale.fit_slope([(1e4, 1.0)]) is None


def _results(quadratic_stage: str) -> dict[int, dict]:
    out = {}
    for n in (10_000, 50_000, 100_000):
        stages = {}
        for stage in bench_scale.STAGES:
            cpu = (n / 1e4) ** 2 * 5 if stage == quadratic_stage else n / 1e4
            stages[stage] = {"status": "done", "seconds": cpu * 1.2, "cpu_s": cpu, "peak_mb": 300.0}
        out[n] = {"customers": n, "facts": {"events": 50 * n, "records": 2 * n}, "stages": stages}
    out[100_000]["stages"]["network"] = {"status": "not finished", "why": "killed by SIGKILL"}
    return out


def test_growth_names_the_superlinear_step_and_the_step_that_did_not_finish():
    table, verdicts, notes = bench_scale._growth(_results("identities"))
    assert len(verdicts) == 1
    assert verdicts[0].startswith("**identities** grows faster than linearly: slope 2.00")
    assert notes == ["- 100k customers, network: not finished: killed by SIGKILL"]
    load = next(row for row in table if row.startswith("| load |"))
    # Slopes per step up (10k->50k, 50k->100k), of peak memory (flat), overall, of the largest two.
    assert load.endswith("| 1.00, 1.00 | 0.00 | 1.00 | 1.00 |")
    ident = next(row for row in table if row.startswith("| identities |"))
    assert ident.endswith("| 2.00, 2.00 | 0.00 | 2.00 | 2.00 |")
    assert table[2] == ("| events / records (sample files) | 500,000 / 20,000 | 2,500,000 / 100,000 "
                        "| 5,000,000 / 200,000 | | | | |")


def test_chart_is_svg_with_a_line_per_stage_that_finished_twice():
    svg = bench_scale.svg_chart(_results("identities"))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    # network finished at two sizes only, still a line; every stage has a legend entry.
    assert len(root.findall(f"{ns}polyline")) == len(bench_scale.STAGES)
    labels = {t.text for t in root.findall(f"{ns}text")}
    assert set(bench_scale.STAGES) <= labels


def test_memory_chart_has_megabytes_on_its_axis():
    root = ET.fromstring(bench_scale.svg_chart(_results("identities"), key="peak_mb"))
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("peak memory" in t for t in texts) and any(t.endswith(" MB") for t in texts)


def test_load_alone_table_has_a_row_per_finished_size_with_the_slope_from_the_size_before():
    loads = {n: {"commit": "abc", "machine": "m", "stages": {"load": {
        "status": "done", "seconds": n / 1e3, "cpu_s": (n / 1e4) ** 1.5, "peak_mb": 100.0,
        "extra": {"loaded": 50 * n}}}} for n in (10_000, 40_000)}
    loads[90_000] = {"commit": "abc", "machine": "m", "stages": {"load": {"status": "not finished"}}}
    rows = [line for line in bench_scale._load_alone(loads) if line.startswith("| 10k") or
            line.startswith("| 40k") or line.startswith("| 90k")]
    assert rows == ["| 10k | 500,000 | 10.0 | 1.0 | 100 |  | abc | m |",
                    "| 40k | 2,000,000 | 40.0 | 8.0 | 100 | 1.50 | abc | m |"]
    assert bench_scale._load_alone({}) == []
