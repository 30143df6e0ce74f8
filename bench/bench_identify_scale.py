"""Identity resolution at scale on records only: xrm and Splink alone, 100k and 1M records.

Issue 3: the sample business at 100k and 1M records against its ground truth, xrm and Splink
run alone with its documented settings on the same records; time, peak memory, pairwise and
cluster precision / recall / F1. Target: xrm cluster F1 >= 0.90 at 1M records in under
2 minutes and 6 GiB.

Per size (customers of the sample business, about two source records each):

1. the sample is generated once (``generate_sample(customers=N, seed=2026)``) into a scratch
   folder and its record files loaded once (``load_sample_records``, no events) into
   ``base.duckdb``; both are reused by later runs;
2. **xrm**: a copy of ``base.duckdb``, then ``resolve_identities`` with the default rules
   (normalise, Splink trained on the data, constrained clustering, stable ids, golden records)
   and ``score_profiles``, in a fresh process;
3. **Splink alone**: the same records (read from ``base.duckdb``: first name, surname, date of
   birth, city, e-mail, lower-cased and trimmed) through the comparisons and training calls of
   Splink 5's README example (``JaroWinklerAtThresholds`` first name, ``JaroAtThresholds``
   surname, ``DateOfBirthComparison``, ``ExactMatch`` city with term frequencies,
   ``EmailComparison``; λ from ``first_name + surname`` at recall 0.7, u from 1e6 random pairs,
   EM on ``first_name + surname`` and ``dob``), predictions clustered at 0.95. The README
   blocks predictions on ``first_name`` alone and ``surname`` alone: at these sizes that is
   hundreds of millions to billions of pairs (counted exactly in SQL, Σ k(k-1)/2 per value, and
   shown), so predictions block on the pairs
   ``first_name + surname``, ``first_name + dob``, ``surname + dob`` and ``email``, as Splink's
   blocking guide recommends for large data. Same DuckDB ``memory_limit`` as xrm.

Each run is a fresh process: wall s, CPU s (user + system, all threads) and peak resident memory
(``VmHWM``; imports and opening the store are untimed but count towards the peak) up to the end
of the resolution; scoring against the truth comes after and is not counted. Results are
kept per size in ``bench/results/identify_scale.json`` so a 1M run adds to an earlier 100k one.

    python -m bench --only identify_scale [--quick]
    XRM_BENCH_IDSCALE_SIZES=500000 python -m bench --only identify_scale
    XRM_BENCH_IDSCALE_ENGINES=xrm python -m bench --only identify_scale   # xrm rows only

Environment: ``XRM_BENCH_IDSCALE_SIZES`` (customers, comma-separated; ``none`` redraws the table
from the results kept), ``XRM_BENCH_IDSCALE_DIR`` (scratch folder, default
``$TMPDIR/xrm-bench-idscale``), ``XRM_BENCH_IDSCALE_MEMORY`` (DuckDB memory_limit, default 3GB),
``XRM_BENCH_IDSCALE_ENGINES`` (``xrm,splink``), ``XRM_BENCH_IDSCALE_TIMEOUT`` (s per run, 3600).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from bench._harness import CHILD_CLOCKS, ROOT, Section, machine_line, run_child

__all__ = ["run"]

SIZES = (50_000, 500_000)  # customers: about 100k and 1M records
QUICK_SIZES = (2_000,)
SEED = 2026
RESULTS = ROOT / "bench" / "results" / "identify_scale.json"
# Issue 3: cluster F1 >= 0.90 at 1M records in under 2 minutes and 6 GiB.
TARGET_F1, TARGET_S, TARGET_MB = 0.90, 120.0, 6 * 1024

_CHILD = CHILD_CLOCKS + """{setup}
_t0, _c0 = time.perf_counter(), _cpu()
_timed = {{}}
def stop_clock():
    _timed.update(seconds=time.perf_counter() - _t0, cpu_s=_cpu() - _c0, peak_mb=_hwm())
{code}
if not _timed:
    stop_clock()
_result = {{**_timed, "score_s": time.perf_counter() - _t0 - _timed["seconds"],
           "extra": globals().get("extra", {{}})}}
print("@@IDSCALE@@" + json.dumps(_result, default=str))
"""

_PREPARE = """
from xrm.config import Settings
from xrm.identify import load_sample_records
from xrm.sample import generate_sample
from xrm.store import Store
"""
_PREPARE_RUN = """
from pathlib import Path
sample, base = Path({sample!r}), Path({base!r})
if not (sample / "manifest.json").exists():
    generate_sample(sample, customers={n}, seed={seed}, show_progress=False)
tmp = base.with_suffix(".loading.duckdb")
tmp.unlink(missing_ok=True)
store = Store.open(Settings(store_path=tmp, memory_limit={memory!r}))
load_sample_records(store, sample)
extra = {{"records": store.count("records")}}
store.close()
tmp.rename(base)
"""

_XRM_SETUP = """
from xrm.config import Settings
from xrm.identify import resolve_identities, score_profiles
from xrm.store import Store
store = Store.open(Settings(store_path={db!r}, memory_limit={memory!r}))
"""
_XRM = """
summary = resolve_identities(store)
stop_clock()
extra = score_profiles(store, {truth!r})
lk = summary.get("linkage") or {{}}
extra["stages"] = {{"normalise": summary.get("normalize_seconds"), "train": lk.get("train_seconds"),
                   "predict": lk.get("predict_seconds"), "linkage": lk.get("seconds"),
                   "graph": summary.get("seconds"), "occurrences": summary.get("occurrence_seconds"),
                   "clustering": summary.get("clustering_seconds"), "golden": summary.get("golden_seconds"),
                   "commit": summary.get("commit_seconds")}}
extra["email_name_links"] = summary.get("email_name_links")
extra["model"] = lk.get("model")
extra["scored_pairs"] = lk.get("pairs")
extra["review_pending"] = summary.get("review_pending", 0)
store.close()
"""

_SPLINK_SETUP = """
import duckdb, logging
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from xrm.identify import score_clusters
logging.getLogger("splink").setLevel(logging.ERROR)
src = duckdb.connect({db!r}, read_only=True)
records = src.sql(
    "SELECT record_id AS unique_id, nullif(lower(trim(first_name)), '') AS first_name, "
    "nullif(lower(trim(last_name)), '') AS surname, birth_date AS dob, "
    "nullif(lower(trim(city)), '') AS city, nullif(lower(trim(email)), '') AS email FROM records"
).to_arrow_table()
src.close()
con = duckdb.connect(":memory:", config={{"memory_limit": {memory!r}, "temp_directory": {tmp!r}}})
"""
_SPLINK = """
db_api = DuckDBAPI(con)
df = db_api.register(records)
settings = SettingsCreator(
    link_type="dedupe_only",
    comparisons=[
        cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7]),
        cl.JaroAtThresholds("surname", [0.9, 0.7]),
        cl.DateOfBirthComparison("dob", input_is_string=False, datetime_metrics=["year", "month"],
                                 datetime_thresholds=[1, 1]),
        cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        cl.EmailComparison("email"),
    ],
    blocking_rules_to_generate_predictions=[
        block_on("first_name", "surname"), block_on("first_name", "dob"),
        block_on("surname", "dob"), block_on("email"),
    ],
)
linker = Linker(df, settings)
linker.training.estimate_probability_two_random_records_match(
    [block_on("first_name", "surname")], recall=0.7)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
pairwise = linker.inference.predict(threshold_match_weight=-10)
clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairwise, 0.95)
stop_clock()
con.register("records_arrow", records)
def _pairs(cols):
    nonnull = " AND ".join(c + " IS NOT NULL" for c in cols)
    return con.sql("SELECT coalesce(sum(k * (k - 1) // 2), 0) FROM (SELECT count(*) AS k FROM "
                   "records_arrow WHERE " + nonnull + " GROUP BY " + ", ".join(cols) + ")").fetchall()[0][0]
readme_pairs = _pairs(["first_name"]) + _pairs(["surname"]) - _pairs(["first_name", "surname"])
con.register("cl_rel", clusters.as_duckdbpyrelation())
con.execute("CREATE TABLE pred AS SELECT unique_id AS record_id, cluster_id AS cluster FROM cl_rel")
con.execute("CREATE TABLE truth AS SELECT record_id, person_id FROM read_parquet({truth!r})")
extra = score_clusters(con, "pred", "truth")
extra["readme_block_pairs"] = int(readme_pairs)
extra["scored_pairs"] = int(con.sql("SELECT count(*) FROM " + pairwise.physical_name).fetchall()[0][0])
con.close()
"""


def _run_child(setup: str, code: str, timeout: float) -> dict[str, Any]:
    """One run in a fresh process: its figures, or why it did not finish."""
    script = _CHILD.format(setup=textwrap.dedent(setup), code=textwrap.dedent(code))
    return run_child(script, timeout, "@@IDSCALE@@")


def _scratch() -> Path:
    base = Path(os.environ.get("XRM_BENCH_IDSCALE_DIR") or Path(tempfile.gettempdir()) / "xrm-bench-idscale")
    if base.resolve().is_relative_to(ROOT.resolve()):
        raise SystemExit(f"XRM_BENCH_IDSCALE_DIR={base} is inside the repository; give a scratch folder")
    return base


def _sizes(quick: bool) -> tuple[int, ...]:
    wanted = os.environ.get("XRM_BENCH_IDSCALE_SIZES")
    if wanted == "none":
        return ()
    if wanted:
        return tuple(int(x.replace("_", "")) for x in wanted.split(",") if x.strip())
    return QUICK_SIZES if quick else SIZES


def measure_size(n: int, scratch: Path, *, memory: str, engines: tuple[str, ...],
                 timeout: float) -> dict[str, Any]:
    """Prepare (once) and run each engine at ``n`` customers."""
    folder = scratch / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    sample, base = folder / "sample", folder / "base.duckdb"
    truth = str(sample / "truth" / "record_person.parquet")
    out: dict[str, Any] = {"customers": n, "memory_limit": memory, "machine": machine_line(), "runs": {}}
    if not base.exists():
        prep = _run_child(_PREPARE, _PREPARE_RUN.format(sample=str(sample), base=str(base), n=n, seed=SEED,
                                                        memory=memory), timeout)
        print(f"   {n:,} prepare: {_brief(prep)}", flush=True)
        if prep["status"] != "done":
            out["runs"]["prepare"] = prep
            return out
    for engine in engines:
        db = folder / f"{engine}.duckdb"
        tmp = folder / f"{engine}.tmp"
        db.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if engine == "xrm":
            shutil.copyfile(base, db)
            setup, code = _XRM_SETUP.format(db=str(db), memory=memory), _XRM.format(truth=truth)
        else:
            setup = _SPLINK_SETUP.format(db=str(base), memory=memory, tmp=str(tmp))
            code = _SPLINK.format(truth=truth)
        result = _run_child(setup, code, timeout)
        result["load_1min"] = round(os.getloadavg()[0], 1)
        out["runs"][engine] = result
        print(f"   {n:,} {engine}: {_brief(result)}", flush=True)
        db.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _brief(r: dict[str, Any]) -> str:
    if r["status"] != "done":
        return f"{r['status']}: {r.get('why', '')}"
    e = r.get("extra", {})
    return (f"{r['seconds']:.1f} s, CPU {r['cpu_s']:.1f} s, peak {r['peak_mb']:,.0f} MB, "
            f"cluster F1 {e.get('cluster_f1')}, pairwise F1 {e.get('pairwise_f1')}")


def _read() -> dict[int, Any]:
    if not RESULTS.exists():
        return {}
    return {int(k): v for k, v in json.loads(RESULTS.read_text(encoding="utf-8")).items()}


_COLS = ("pairwise_precision", "pairwise_recall", "pairwise_f1", "cluster_precision", "cluster_recall",
         "cluster_f1", "over_merged_profiles", "under_merged_persons")


def _table(results: dict[int, Any]) -> str:
    head = ("| customers | records | engine | wall s | CPU s | peak MB | " + " | ".join(_COLS)
            + " | 1-min load |\n|" + "---:|" * 2 + "---|" + "---:|" * (len(_COLS) + 4))
    rows = []
    for n, size in sorted(results.items()):
        for engine, r in size["runs"].items():
            label = {"xrm": "xrm (default rules)", "splink": "Splink alone"}.get(engine, engine)
            if r["status"] != "done":
                rows.append(f"| {n:,} | | {label} | {r['status']}: {r.get('why', '')} |")
                continue
            e = r["extra"]
            cells = " | ".join(str(e.get(c, "")) for c in _COLS)
            rows.append(f"| {n:,} | {e.get('records', 0):,} | {label} | {r['seconds']:.1f} "
                        f"| {r['cpu_s']:.1f} | {r['peak_mb']:,.0f} | {cells} | {r.get('load_1min', '')} |")
    return head + "\n" + "\n".join(rows)


def _verdict(results: dict[int, Any]) -> str:
    done = [(n, s["runs"]["xrm"]) for n, s in sorted(results.items())
            if s["runs"].get("xrm", {}).get("status") == "done"]
    big = [(n, r) for n, r in done if r["extra"].get("records", 0) >= 900_000]
    if not big:
        largest = f" (largest measured: {done[-1][1]['extra']['records']:,} records)" if done else ""
        return f"**1M-record target: not measured**{largest}."
    r = big[-1][1]
    e = r["extra"]
    gaps = []
    if e["cluster_f1"] < TARGET_F1:
        gaps.append(f"cluster F1 {e['cluster_f1']} < {TARGET_F1}")
    if r["seconds"] >= TARGET_S:
        gaps.append(f"{r['seconds']:.0f} s >= {TARGET_S:.0f} s ({r['seconds'] / TARGET_S:.1f}x)")
    if r["peak_mb"] >= TARGET_MB:
        gaps.append(f"peak {r['peak_mb']:,.0f} MB >= {TARGET_MB:,} MB")
    met = "**1M-record target met**" if not gaps else f"**1M-record target not met**: {'; '.join(gaps)}"
    return (f"{met} (target: xrm cluster F1 >= {TARGET_F1} in under 2 minutes and 6 GiB; "
            f"measured at {e['records']:,} records).")


def _stages(results: dict[int, Any]) -> str:
    lines = []
    for n, size in sorted(results.items()):
        r = size["runs"].get("xrm", {})
        if r.get("status") == "done":
            st = ", ".join(f"{k} {v:.1f} s" for k, v in r["extra"].get("stages", {}).items() if v is not None)
            lines.append(f"- {n:,} customers: {st}; model {r['extra'].get('model')}, "
                         f"{r['extra'].get('scored_pairs', 0):,} scored pairs, "
                         f"{r['extra'].get('email_name_links') or 0:,} e-mail-name links; memory_limit "
                         f"{size['memory_limit']}; {size['machine']}")
        s = size["runs"].get("splink", {})
        if s.get("status") == "done":
            lines.append(f"- {n:,} customers, Splink alone: {s['extra'].get('scored_pairs', 0):,} "
                         f"scored pairs; the README's blocks (first_name, surname alone) would score "
                         f"{s['extra'].get('readme_block_pairs', 0):,}")
    return "\n".join(lines)


def run(quick: bool) -> Section:
    scratch = _scratch()
    memory = os.environ.get("XRM_BENCH_IDSCALE_MEMORY", "3GB")
    engines = tuple(os.environ.get("XRM_BENCH_IDSCALE_ENGINES", "xrm,splink").split(","))
    timeout = float(os.environ.get("XRM_BENCH_IDSCALE_TIMEOUT", 3600))
    results = _read()
    for n in _sizes(quick):
        fresh = measure_size(n, scratch, memory=memory, engines=engines, timeout=timeout)
        results = _read()  # again: another size may have been measured meanwhile (hours at 1M)
        results[n] = {**fresh, "runs": {**results.get(n, {}).get("runs", {}), **fresh["runs"]}}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({str(k): v for k, v in sorted(results.items())}, indent=1) + "\n",
                           encoding="utf-8")
    body = f"""
Records only (no events), the sample business at about 100k and 1M records (`generate_sample(customers=N,
seed={SEED})`, record files loaded with `load_sample_records`), against its ground truth. xrm: the
whole `resolve_identities` with default rules; Splink alone: the comparisons and training of Splink 5's
README example on the same records, predictions blocked on column pairs (the README's single-column
blocks are counted below), clustered at 0.95. One run each in a fresh process on a shared 2-core
machine (load in the table); wall and CPU s of the timed part, peak = VmHWM of the process. Method:
bench/bench_identify_scale.py; before/after figures: docs/identify.md, "At scale".

{_table(results)}

{_verdict(results)}

xrm stages and Splink's blocks:

{_stages(results)}
"""
    return Section("Identify at scale: records only, xrm and Splink alone", body)


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
