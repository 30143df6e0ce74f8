"""The whole batch pipeline at growing sizes: time, CPU and peak memory of each step, and how each grows.

For each size (customers of the sample business, about 50 events each) the stages run one after
another, **each in a fresh process** on the same DuckDB file, so each stage's peak resident memory
(``VmHWM``) is its own and no stage profits from another's warm caches inside DuckDB:

1. ``sample``: ``generate_sample(out, customers=N, seed=42)`` (not part of the pipeline; shown for scale),
2. ``load``: ``load_manifest`` of all its files into a new store file (checked, keyed, idempotent),
3. every step of :data:`xrm.pipeline.STEPS` in order (``run_pipeline(store, steps=(name,))``).

Imports and opening the store are untimed; the time ends with the store closed (checkpointed).
A stage that runs past the size's time budget is killed and recorded as not finished, as is one
that dies (out of memory: killed by the kernel, or DuckDB's own out-of-memory error); the stages
after it are recorded as not run. Results are kept per size in ``bench/results/scale.json`` so that
a run of one size (say 10M, hours) adds to the table the others made; the table and the chart
(``bench/results/scale.svg``, log-log CPU seconds against size per stage) are drawn from all of
them. ``bench/results/scale-baseline.json``, an earlier run kept by hand (the code before a change),
adds a before / after table for the sizes both measured.

    python -m bench --only scale [--quick]                 # full: 100k, 1M, 3M, 10M customers
    XRM_BENCH_SCALE_SIZES=10000000 python -m bench --only scale
    python -m bench.bench_scale --sizes 10000000 --budget 43200   # the same, as arguments
    python -m bench.bench_scale --load-only --sizes 100000,300000 --keep   # sample + load only

Settings (environment): ``XRM_BENCH_SCALE_SIZES`` (comma-separated customers; ``none`` redraws the
table and chart from the results kept),
``XRM_BENCH_SCALE_BUDGET`` (seconds per size, all stages together; default 4 h),
``XRM_BENCH_SCALE_DIR`` (scratch folder for the data, default ``$TMPDIR/xrm-bench-scale``; never
the repository), ``XRM_BENCH_SCALE_KEEP=1`` (keep each size's sample and store for a later run:
a kept sample is reused and its generation time taken from the earlier run).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench._harness import CHILD_CLOCKS, ROOT, Section, machine_line, run_child
from xrm.pipeline import STEPS

__all__ = ["STAGES", "fit_slope", "run", "svg_chart"]

SIZES = (100_000, 1_000_000, 3_000_000, 10_000_000)
QUICK_SIZES = (10_000, 50_000)
BUDGET_S = 4 * 3600
SEED = 42
RESULTS = ROOT / "bench" / "results"
# A stage grows faster than linearly when its log-log slope over the largest sizes is above this;
# stages under MIN_SECONDS at the largest size are fixed costs, whose slope says nothing.
SUPERLINEAR = 1.15
MIN_SECONDS = 5.0

_STEP_NAMES = tuple(name for name, _ in STEPS)
STAGES = ("sample", "load", *_STEP_NAMES)


# -- one stage in a fresh process ---------------------------------------------------------------

_CHILD = CHILD_CLOCKS + """{setup}
_floor = _hwm()
_t0, _c0 = time.perf_counter(), _cpu()
{code}
_result = {{"seconds": time.perf_counter() - _t0, "cpu_s": _cpu() - _c0, "peak_mb": _hwm(),
           "floor_mb": _floor, "extra": globals().get("extra", {{}})}}
print("@@SCALE@@" + json.dumps(_result, default=str))
"""

_SAMPLE_SETUP = """
import shutil
from pathlib import Path
from xrm.sample import generate_sample
out = Path({out!r})
shutil.rmtree(out, ignore_errors=True)
"""
_SAMPLE = """
manifest = generate_sample(out, customers={n}, seed={seed}, show_progress=False)
extra = {{"events": manifest["events"], "records": sum(f["rows"] for f in manifest["files"]
          if f.get("mapping"))}}
"""

_STORE_SETUP = """
from pathlib import Path
from xrm.config import Settings
from xrm.store import Store
store_path = Path({store!r})
if {fresh}:
    for p in (store_path, Path(str(store_path) + ".wal")):
        p.unlink(missing_ok=True)
# Imported here, untimed: each step imports its capability lazily.
import xrm.ingest, xrm.pipeline, xrm.identify, xrm.differentiate, xrm.customize, xrm.network, xrm.interact
store = Store.open(Settings(store_path=store_path))
"""
_LOAD = """
reports = xrm.ingest.load_manifest(store, {manifest!r}, show_progress=False)
store.close()
extra = {{"read": sum(r.rows_read for r in reports), "loaded": sum(r.rows_loaded for r in reports),
          "rejected": sum(r.rows_rejected for r in reports)}}
"""
_STEP = """
(result,) = xrm.pipeline.run_pipeline(store, steps=({name!r},))
store.close()
extra = {{"status": result.status, "message": result.message[:300]}}
"""


def _run_stage(setup: str, code: str, timeout: float) -> dict[str, Any]:
    """Run one stage in a fresh process; ``{"status": "done", ...}`` or why it did not finish."""
    script = _CHILD.format(setup=textwrap.dedent(setup), code=textwrap.dedent(code))
    if timeout <= 0:
        return {"status": "not run", "why": "the size's time budget was spent by the stages before"}
    return run_child(script, timeout, "@@SCALE@@",
                     budget=" (the time budget left for this size)")


def _measure_size(
    n: int, budget: float, scratch: Path, keep: bool, stages_wanted: tuple[str, ...] = STAGES
) -> dict[str, Any]:
    """The stages at ``n`` customers (all, or ``stages_wanted``); a dict stage -> result, plus the
    size's facts."""
    folder = scratch / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    sample, store = folder / "sample", folder / "xrm.duckdb"
    manifest = sample / "manifest.json"
    deadline = time.monotonic() + budget
    stages: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    reused = keep and manifest.exists() and (folder / "sample.json").exists()
    if reused:
        stages["sample"] = json.loads((folder / "sample.json").read_text()) | {"reused": True}
    else:
        stages["sample"] = _run_stage(
            _SAMPLE_SETUP.format(out=str(sample)), _SAMPLE.format(n=n, seed=SEED), deadline - time.monotonic()
        )
        (folder / "sample.json").write_text(json.dumps(stages["sample"]))
    if stages["sample"]["status"] == "done":
        facts = dict(stages["sample"].get("extra", {}))
    print(f"   {n:,} sample: {_brief(stages['sample'])}", flush=True)
    plan: list[tuple[str, str, str]] = [
        ("load", _STORE_SETUP.format(store=str(store), fresh=True), _LOAD.format(manifest=str(manifest)))
    ]
    plan += [(name, _STORE_SETUP.format(store=str(store), fresh=False), _STEP.format(name=name))
             for name in _STEP_NAMES]
    plan = [step for step in plan if step[0] in stages_wanted]
    broken = stages["sample"]["status"] != "done"
    for name, setup, code in plan:
        if broken:
            stages[name] = {"status": "not run", "why": "an earlier stage did not finish"}
            continue
        result = _run_stage(setup, code, deadline - time.monotonic())
        status = result.get("extra", {}).get("status")
        if result["status"] == "done" and status and status != "done":
            # run_pipeline reports a capability that is not built as a status, not an error.
            result = {"status": "not finished", "why": f"{status}: {result['extra'].get('message', '')}"}
        stages[name] = result
        print(f"   {n:,} {name}: {_brief(result)}", flush=True)
        broken = result["status"] != "done"
    if stages.get("load", {}).get("status") == "done":
        facts["rows_loaded"] = stages["load"]["extra"].get("loaded")  # events and records
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return {"customers": n, "facts": facts, "stages": stages, "budget_s": budget,
            "machine": machine_line(), "commit": _commit()}


def _brief(r: dict[str, Any]) -> str:
    if r["status"] == "done":
        return f"{r['seconds']:.1f} s, CPU {r['cpu_s']:.1f} s, peak {r['peak_mb']:,.0f} MB"
    return f"{r['status']}: {r.get('why', '')}"


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    where = f" (xrm from PYTHONPATH={os.environ['PYTHONPATH']})" if os.environ.get("PYTHONPATH") else ""
    return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "") + where


# -- growth: slopes, table, chart ---------------------------------------------------------------

def fit_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(seconds) on log(size): 1 is linear, 2 quadratic."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def _series(results: dict[int, Any], stage: str, key: str = "seconds") -> list[tuple[float, float]]:
    """(customers, ``key``) of the sizes where ``stage`` finished, smallest first."""
    return [(float(n), float(r["stages"][stage][key])) for n, r in sorted(results.items())
            if r["stages"].get(stage, {}).get("status") == "done"]


_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def svg_chart(results: dict[int, Any], stages: tuple[str, ...] = STAGES, key: str = "cpu_s") -> str:
    """A log-log chart of ``key`` (CPU s by default: steadier than wall time on a shared machine;
    ``peak_mb`` draws peak memory) against customers, one line per stage, as SVG text."""
    series = {s: _series(results, s, key) for s in stages}
    what, unit = {"cpu_s": ("CPU seconds", "s"), "peak_mb": ("peak memory (MB)", "MB")}.get(
        key, ("wall seconds", "s"))
    points = [p for pts in series.values() for p in pts]
    width, height, left, right, top, bottom = 760, 440, 70, 190, 30, 50
    if not points:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="80">'
                '<text x="10" y="40">no finished stage to draw</text></svg>\n')
    lx = [math.log10(p[0]) for p in points]
    ly = [math.log10(max(p[1], 0.01)) for p in points]
    x0, x1 = math.floor(min(lx)), math.ceil(max(lx) + 1e-9)
    y0, y1 = math.floor(min(ly)), math.ceil(max(ly) + 1e-9)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def px(v: float) -> float:
        return left + (math.log10(v) - x0) / (x1 - x0) * (width - left - right)

    def py(v: float) -> float:
        return top + (y1 - math.log10(max(v, 0.01))) / (y1 - y0) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">xrm batch pipeline: {what} per stage against '
           f'customers (log-log)</text>']
    for e in range(x0, x1 + 1):
        x = px(10.0 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                   f'{_human(10 ** e)}</text>')
    for e in range(y0, y1 + 1):
        y = py(10.0 ** e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0 ** e:g} {unit}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">customers '
               f'(about 50 events each)</text>')
    for i, (stage, pts) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        dash = ' stroke-dasharray="5,4"' if stage == "sample" else ""
        if len(pts) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly_ = top + 14 + 18 * i
        out.append(f'<line x1="{width - right + 12}" y1="{ly_ - 4}" x2="{width - right + 32}" y2="{ly_ - 4}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{width - right + 38}" y="{ly_}">{stage}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _human(n: float) -> str:
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:g}{unit}"
    return f"{n:g}"


def _cell(r: dict[str, Any] | None) -> str:
    if not r:
        return ""
    if r["status"] == "done":
        reused = " (earlier run)" if r.get("reused") else ""
        return f"{r['seconds']:,.1f} / {r['cpu_s']:,.1f} / {r['peak_mb']:,.0f}{reused}"
    return f"**{r['status']}**"


def _growth(results: dict[int, Any]) -> tuple[list[str], list[str], list[str]]:
    """The growth table, the verdict lines (superlinear stages), and the not-finished notes."""
    sizes = sorted(results)
    head = "| stage | " + " | ".join(f"{_human(n)} customers" for n in sizes) + \
        " | CPU slope, each step up | peak MB slope (largest two) | CPU slope (all sizes) " \
        "| CPU slope (largest two) |"
    table = [head, "|---|" + "---:|" * len(sizes) + "---:|---:|---:|---:|"]
    facts = ["| events / records (sample files) | " + " | ".join(
        f"{results[n]['facts'].get('events', 0):,} / {results[n]['facts'].get('records', 0):,}"
        for n in sizes) + " | | | | |"]
    verdicts: list[str] = []
    for stage in STAGES:
        # Slopes of CPU seconds: wall time on a shared machine moves with the other work on it.
        pts = _series(results, stage, "cpu_s")
        whole = fit_slope(pts)
        last = fit_slope(pts[-2:]) if len(pts) >= 2 else None
        cells = " | ".join(_cell(results[n]["stages"].get(stage)) for n in sizes)
        fmt = lambda s: "" if s is None else f"{s:.2f}"  # noqa: E731
        # The growth exponent between each pair of neighbouring sizes: where it bends, not only its mean.
        steps = ", ".join(fmt(fit_slope(pts[j:j + 2])) for j in range(len(pts) - 1))
        mem = _series(results, stage, "peak_mb")
        table.append(f"| {stage} | {cells} | {steps} | {fmt(fit_slope(mem[-2:]))} | {fmt(whole)} "
                     f"| {fmt(last)} |")
        if last is not None and last > SUPERLINEAR and pts[-1][1] >= MIN_SECONDS and stage != "sample":
            verdicts.append(
                f"**{stage}** grows faster than linearly: slope {last:.2f} between "
                f"{_human(pts[-2][0])} and {_human(pts[-1][0])} customers "
                f"({pts[-2][1]:,.1f} to {pts[-1][1]:,.1f} CPU s)."
            )
    notes = []
    for n in sizes:
        for stage, r in results[n]["stages"].items():
            if r["status"] != "done" and r.get("why") != "an earlier stage did not finish":
                notes.append(f"- {_human(n)} customers, {stage}: {r['status']}: {r.get('why', '')}")
    return table[:2] + facts + table[2:], verdicts, notes


def _extrapolation(results: dict[int, Any], target: int = 10_000_000) -> list[str]:
    """Seconds at ``target`` customers from each stage's last measured slope: an estimate only."""
    rows = []
    for stage in STAGES[1:]:
        pts = _series(results, stage)
        cpu = _series(results, stage, "cpu_s")
        if len(pts) < 2 or pts[-1][0] >= target:
            continue
        slope = max(1.0, fit_slope(cpu[-2:]) or 1.0)
        grow = (target / pts[-1][0]) ** slope
        wall, cpu_s = pts[-1][1] * grow, cpu[-1][1] * grow
        rows.append(f"| {stage} | {_human(pts[-1][0])} | {slope:.2f} | {cpu_s:,.0f} s "
                    f"(≈ {cpu_s / 3600:,.1f} h) | {wall:,.0f} s (≈ {wall / 3600:,.1f} h) |")
    if not rows:
        return []
    return [f"| stage | from | CPU slope used (at least 1) | **extrapolated** CPU s at {_human(target)} | "
            f"**extrapolated** wall s at {_human(target)} (this run's machine load) |",
            "|---|---:|---:|---:|---:|", *rows]


def _load_alone(loads: dict[int, Any]) -> list[str]:
    """The load stage measured alone (``--load-only``, ``bench/results/scale-load.json``), per size."""
    rows, done = [], []
    for n, r in sorted(loads.items()):
        stage = r["stages"].get("load", {})
        if stage.get("status") != "done":
            continue
        done.append((float(n), float(stage["cpu_s"])))
        slope = fit_slope(done[-2:]) if len(done) >= 2 else None
        loaded = stage.get("extra", {}).get("loaded", 0)
        step = "" if slope is None else f"{slope:.2f}"
        rows.append(f"| {_human(n)} | {loaded:,} | {stage['seconds']:,.1f} | {stage['cpu_s']:,.1f} | "
                    f"{stage['peak_mb']:,.0f} | {step} | {r['commit']} | {r['machine']} |")
    if not rows:
        return []
    return ["### Load alone", "",
            "The load stage by `python -m bench.bench_scale --load-only` (sample reused when kept), one run "
            "per size, kept in bench/results/scale-load.json; the table above keeps each size's load as "
            "measured with the rest of its pipeline (its commit is named at the end), so its load cells "
            "may come from older code. Method and before/after: docs/loading.md, \"Loading into an empty "
            "store\".", "",
            "| customers | rows loaded | wall s | CPU s | peak MB | CPU slope from the size before | commit "
            "| machine |",
            "|---:|---:|---:|---:|---:|---:|---|---|", *rows, ""]


def _comparison(results: dict[int, Any], baseline: dict[int, Any]) -> list[str]:
    """Before (``baseline``) and after (``results``), stage by stage, for the sizes both measured."""
    sizes = [n for n in sorted(results) if n in baseline]
    rows = []
    for n in sizes:
        for stage in STAGES[1:]:
            a, b = baseline[n]["stages"].get(stage, {}), results[n]["stages"].get(stage, {})
            if a.get("status") != "done" or b.get("status") != "done":
                continue
            rows.append(
                f"| {_human(n)} | {stage} | {a['cpu_s']:,.1f} | {b['cpu_s']:,.1f} | "
                f"{b['cpu_s'] / a['cpu_s']:.2f} | {a['peak_mb']:,.0f} | {b['peak_mb']:,.0f} | "
                f"{a['seconds']:,.1f} | {b['seconds']:,.1f} |"
            )
    if not rows:
        return []
    first = baseline[sizes[0]]
    return [
        f"Before and after, same data (same seed), one run each: before = commit {first['commit']} "
        f"({first['machine']}); after = the rows of the table above.",
        "",
        "| customers | stage | CPU s before | CPU s after | after / before | peak MB before | peak MB after "
        "| wall s before | wall s after |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


# -- configuration and entry points -------------------------------------------------------------

def _sizes(quick: bool) -> tuple[int, ...]:
    wanted = os.environ.get("XRM_BENCH_SCALE_SIZES")
    if wanted == "none":  # redraw the table and chart from bench/results/scale.json only
        return ()
    if wanted:
        return tuple(int(x.replace("_", "")) for x in wanted.split(",") if x.strip())
    return QUICK_SIZES if quick else SIZES


def _scratch() -> Path:
    base = Path(os.environ.get("XRM_BENCH_SCALE_DIR") or Path(tempfile.gettempdir()) / "xrm-bench-scale")
    if base.resolve().is_relative_to(ROOT.resolve()):
        raise SystemExit(f"XRM_BENCH_SCALE_DIR={base} is inside the repository; give a scratch folder")
    return base


def _read_results(path: Path) -> dict[int, Any]:
    if not path.exists():
        return {}
    return {int(k): v for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def run(quick: bool) -> Section:
    budget = float(os.environ.get("XRM_BENCH_SCALE_BUDGET", BUDGET_S))
    keep = os.environ.get("XRM_BENCH_SCALE_KEEP") == "1"
    scratch = _scratch()
    RESULTS.mkdir(parents=True, exist_ok=True)
    store = RESULTS / "scale.json"
    results = _read_results(store)
    for n in _sizes(quick):
        results[n] = _measure_size(n, budget, scratch, keep)
        store.write_text(json.dumps({str(k): v for k, v in sorted(results.items())}, indent=1) + "\n",
                         encoding="utf-8")
    (RESULTS / "scale.svg").write_text(svg_chart(results), encoding="utf-8")
    (RESULTS / "scale-memory.svg").write_text(svg_chart(results, key="peak_mb"), encoding="utf-8")
    table, verdicts, notes = _growth(results)
    extra = _extrapolation(results)
    # A kept earlier run (the code before a change) to compare with: bench/results/scale-baseline.json.
    compared = _comparison(results, _read_results(RESULTS / "scale-baseline.json"))
    largest = max(results) if results else 0
    ten_m = results.get(10_000_000, {}).get("stages", {})
    finished_10m = bool(ten_m) and all(r.get("status") == "done" for r in ten_m.values())
    body = [
        "Each cell: wall s / CPU s / peak MB of one stage, in a fresh process on the same DuckDB file "
        "(DuckDB threads = cores, memory_limit = the default 8GB). One run per size; CPU s (user + "
        "system, all threads) is the steadier figure on a shared machine. Peak MB is the process's "
        "VmHWM, including the untimed imports and store opening (about 250–300 MB on their own). "
        "`sample` makes the data and is not part of the pipeline. CPU slope = least-squares slope of "
        "log(CPU s) on log(customers); 1 is linear. Data: the sample business "
        f"(`generate_sample(customers=N, seed={SEED})`, about 50 events and 2 records per customer), "
        "under a scratch folder.",
        "",
        "![CPU seconds per stage against customers, log-log](bench/results/scale.svg)",
        "![Peak memory per stage against customers, log-log](bench/results/scale-memory.svg)",
        "",
        *table,
        "",
        *(verdicts or ["No stage grew faster than linearly between the two largest sizes measured "
                       f"(CPU slope above {SUPERLINEAR} with at least {MIN_SECONDS:g} CPU s)."]),
        "",
    ]
    if notes:
        body += ["Not finished:", "", *notes, ""]
    if not finished_10m:
        body += [f"**10M customers: not measured** (largest measured: {_human(largest)}); the issue's "
                 "target (10M on 2 cores, 24 GiB) is not shown met."]
        if extra:
            body += ["", "**Extrapolation, not a measurement**: each stage's time at 10M customers from its "
                     "largest measured size and its CPU slope between the two largest sizes (at least 1). "
                     "It ignores spilling to disk past memory_limit and anything else that changes "
                     "with size; treat it as a floor.", "", *extra]
        body.append("")
    body += _load_alone(_read_results(RESULTS / "scale-load.json"))
    if compared:
        body += ["### Before and after the bottleneck work", "", *compared, "",
                 "What was profiled and why: [bench/results/profile.md](bench/results/profile.md).", ""]
    body += ["Per size: " + "; ".join(f"{_human(n)}: {r['machine']}, commit {r['commit']}, budget "
                                       f"{r['budget_s']:,.0f} s" for n, r in sorted(results.items())) + "."]
    return Section("Scale: the batch pipeline step by step", "\n".join(body))


def load_only(sizes: tuple[int, ...], budget: float, scratch: Path, keep: bool) -> dict[int, Any]:
    """Only ``sample`` (reused when kept) and ``load`` at each size, each in a fresh process;
    results added to ``bench/results/scale-load.json`` by size, a line per size printed."""
    out = RESULTS / "scale-load.json"
    results = _read_results(out)
    for n in sizes:
        results[n] = _measure_size(n, budget, scratch, keep, ("sample", "load"))
        results[n]["load_average"] = os.getloadavg()
        out.write_text(json.dumps({str(k): v for k, v in sorted(results.items())}, indent=1) + "\n",
                       encoding="utf-8")
    done = [(float(n), float(r["stages"]["load"]["cpu_s"])) for n, r in sorted(results.items())
            if r["stages"].get("load", {}).get("status") == "done"]
    slope = fit_slope(done[-2:]) if len(done) >= 2 else None
    print(f"load CPU slope (largest two sizes): {slope:.2f}" if slope is not None else "load CPU slope: -")
    return results


def main() -> None:
    """``python -m bench.bench_scale --sizes 10000000 --budget 43200``: run sizes, update BENCHMARKS.md."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="customers, comma-separated (e.g. 10000000)")
    parser.add_argument("--budget", type=float, help="seconds per size, all stages together")
    parser.add_argument("--dir", help="scratch folder for the data (not inside the repository)")
    parser.add_argument("--keep", action="store_true", help="keep each size's sample and store")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--load-only", action="store_true",
                        help="sample and load only, into bench/results/scale-load.json "
                             "(BENCHMARKS.md untouched)")
    args = parser.parse_args()
    if args.load_only:
        sizes = tuple(int(x.replace("_", "")) for x in (args.sizes or "100000,300000").split(","))
        scratch = Path(args.dir) if args.dir else _scratch()
        load_only(sizes, args.budget or BUDGET_S, scratch, args.keep)
        return
    for flag, env in ((args.sizes, "SIZES"), (args.budget, "BUDGET"), (args.dir, "DIR")):
        if flag is not None:
            os.environ[f"XRM_BENCH_SCALE_{env}"] = str(flag)
    if args.keep:
        os.environ["XRM_BENCH_SCALE_KEEP"] = "1"
    from bench.__main__ import main as bench_main

    sys.argv = ["python -m bench", "--only", "scale", *(["--quick"] if args.quick else [])]
    bench_main()


if __name__ == "__main__":
    main()
