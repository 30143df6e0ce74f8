"""The sample generator's speed: ``xrm.sample.generate_sample`` at 20,000 and 200,000 customers.

Each run is a fresh process writing the whole sample business (records, events, social posts,
ground truth) into a new temporary folder; the time covers generating and writing every file.
"""

from __future__ import annotations

import os
import tempfile

from bench._harness import Section, machine_line, measure_python

__all__ = ["run"]

SIZES = (20_000, 200_000)
QUICK_SIZES = (20_000,)

_SETUP = """
import shutil, tempfile
from pathlib import Path
from xrm.sample import generate_sample
out = Path(tempfile.mkdtemp(dir={tmp!r}))
"""
_CODE = """
manifest = generate_sample(out, customers={n}, seed=42, show_progress=False)
size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
shutil.rmtree(out)
extra = {{"events": manifest["events"], "files": len(manifest["files"]), "mb": size / 1e6}}
"""


def run(quick: bool) -> Section:
    runs = 1 if quick else int(os.environ.get("XRM_BENCH_RUNS", "3"))
    lines = [
        "| customers | events | median s | customers/s | events/s | peak MB | output MB | runs (spread) |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="xrm-bench-sample-") as tmp:
        for n in QUICK_SIZES if quick else SIZES:
            m = measure_python(
                f"sample {n}", _CODE.format(n=n), setup=_SETUP.format(tmp=tmp), runs=runs
            )
            events = int(m.extra["events"])
            spread = f"{len(m.seconds)} ({m.spread()})" if len(m.seconds) > 1 else "1"
            lines.append(
                f"| {n:,} | {events:,} | {m.median_s:.1f} | {n / m.median_s:,.0f} | "
                f"{events / m.median_s:,.0f} | {m.median_peak_mb:,.0f} | {m.extra['mb']:,.0f} | {spread} |"
            )
    body = [
        *lines,
        "",
        "`generate_sample(out, customers=N, seed=42)` in a fresh process per run: people, four "
        "record sources, web / order / e-mail / consent / subscription / referral events, social "
        "posts and the ground truth, written as CSV, Parquet and JSONL. Events = the manifest's "
        "event count. Peak MB = the process's maximum resident memory (the generator works in "
        "chunks of 100,000 customers, so it should stay flat as the size grows).",
        "",
        f"Machine: {machine_line()}.",
    ]
    return Section("Sample generator", "\n".join(body))
