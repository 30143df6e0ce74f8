"""Loading throughput: xrm's loader against two loaders that check nothing, on the same files.

The events are the sample business's own (``xrm.sample.generate_sample``, 20,000 customers, all
its Parquet event files: web, orders, e-mail, consent), drawn with replacement up to the size
wanted, each with a fresh UUID ``message_id``; every 1,000th has no ``type`` (0.1 % to reject).
They are written once to ``bench/data/load/`` (git-ignored) as Parquet and as CSV.

Loaders, each in a fresh process, into a fresh DuckDB file with the same threads and
``memory_limit``, the timed part ending with the file closed:

* **xrm** ``load_file``: reads, checks every rule, keeps rejects, derives nothing, inserts with the
  ``message_id`` key (idempotent), extracts order lines.
* **DuckDB CTAS**: ``CREATE TABLE AS SELECT * FROM read_parquet / read_csv``, no checks, no key:
  the floor for putting these bytes into a DuckDB file.
* **pyarrow + DuckDB**: the file streamed by pyarrow in batches, each inserted with
  ``INSERT INTO ... SELECT * FROM batch``: what a hand-written loader does, with no checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Measurement, Section, machine_line, measure_python

__all__ = ["make_events", "run"]

DATA = ROOT / "bench" / "data" / "load"
TARGET = 300_000  # events/s from Parquet on 2 cores (issue 2)
SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (200_000,)
THREADS = os.cpu_count() or 2
MEMORY_LIMIT = "4GB"
_CHUNK = 1_000_000
_TEMPLATE_CUSTOMERS = 20_000


def _template() -> Any:
    """The sample business's flat event rows (one table, ~1M rows at 20,000 customers)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xrm.sample import generate_sample
    from xrm.sample._generate import EVENT_FILES

    folder = DATA / "template"
    if not (folder / "manifest.json").exists():
        generate_sample(folder, customers=_TEMPLATE_CUSTOMERS, seed=7, show_progress=False)
    tables = [pq.read_table(folder / rel) for rel in EVENT_FILES if rel.endswith(".parquet")]
    return pa.concat_tables(tables, promote_options="permissive")


def _uuids(rng: Any, size: int) -> Any:
    """``size`` random ids shaped like UUIDs (8-4-4-4-12 hex digits), from ``rng``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hexed = pa.array(np.frombuffer(rng.bytes(16 * size).hex().encode(), dtype="S32")).cast(pa.string())
    cuts = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    return pc.binary_join_element_wise(*(pc.utf8_slice_codeunits(hexed, a, b) for a, b in cuts), "-")


def make_events(n: int) -> tuple[Path, Path]:
    """``events-N.parquet`` and ``events-N.csv`` under bench/data/load (made once, then reused)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    parquet, csv = DATA / f"events-{n}.parquet", DATA / f"events-{n}.csv"
    done = DATA / f"events-{n}.done"
    if done.exists() and parquet.exists() and csv.exists():
        return parquet, csv
    base = _template()
    rng = np.random.default_rng(n)
    pq_writer = csv_writer = None
    try:
        for start in range(0, n, _CHUNK):
            size = min(_CHUNK, n - start)
            table = base.take(pa.array(rng.integers(0, base.num_rows, size)))
            table = table.set_column(
                table.schema.get_field_index("message_id"), "message_id", _uuids(rng, size)
            )
            rejected = (np.arange(start, start + size) % 1000) == 999
            types = pc.if_else(pa.array(rejected), pa.scalar(None, pa.string()), table["type"])
            table = table.set_column(table.schema.get_field_index("type"), "type", types)
            if pq_writer is None:
                DATA.mkdir(parents=True, exist_ok=True)
                pq_writer = pq.ParquetWriter(parquet, table.schema)
            pq_writer.write_table(table)
            ts = table.schema.get_field_index("timestamp")
            flat = table.set_column(ts, "timestamp", pc.strftime(table["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            if csv_writer is None:
                csv_writer = pcsv.CSVWriter(csv, flat.schema)
            csv_writer.write_table(flat)
    finally:
        for writer in (pq_writer, csv_writer):
            if writer is not None:
                writer.close()
    done.write_text("ok\n")
    return parquet, csv


_SETUP = """
import os, resource
from pathlib import Path
store_path = Path({store!r})
for p in (store_path, Path(str(store_path) + ".wal")):
    p.unlink(missing_ok=True)
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
"""

_XRM_SETUP = _SETUP + """
from xrm.config import Settings
from xrm.store import Store
from xrm.ingest import load_file
store = Store.open(Settings(store_path=store_path, threads={threads}, memory_limit={memory!r}))
cpu0 = cpu()
"""
_XRM = """
report = load_file(store, {path!r}, show_progress=False)
store.close()
extra = {{"read": report.rows_read, "loaded": report.rows_loaded, "rejected": report.rows_rejected,
          "order_lines": report.order_lines, "cpu_s": cpu() - cpu0}}
"""

_DUCKDB_SETUP = _SETUP + """
import duckdb
cpu0 = cpu()
"""
_CTAS = """
con = duckdb.connect(str(store_path), config={{"threads": {threads}, "memory_limit": {memory!r}}})
con.execute("CREATE TABLE events AS SELECT * FROM {reader}({path!r})")
rows = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
con.close()
extra = {{"read": rows, "cpu_s": cpu() - cpu0}}
"""
_ARROW = """
import pyarrow as pa
con = duckdb.connect(str(store_path), config={{"threads": {threads}, "memory_limit": {memory!r}}})
if {fmt!r} == "parquet":
    import pyarrow.parquet as pq
    batches = pq.ParquetFile({path!r}).iter_batches(batch_size=122_880)
else:
    import csv
    import pyarrow.csv as pcsv
    with open({path!r}, newline="", encoding="utf-8") as fh:
        names = next(csv.reader(fh))
    batches = pcsv.open_csv(
        {path!r}, read_options=pcsv.ReadOptions(block_size=16 << 20),
        convert_options=pcsv.ConvertOptions(column_types={{c: pa.string() for c in names}}),
    )
rows = 0
for batch in batches:
    con.register("batch", pa.Table.from_batches([batch]))
    if rows == 0:
        con.execute("CREATE TABLE events AS SELECT * FROM batch")
    else:
        con.execute("INSERT INTO events SELECT * FROM batch")
    con.unregister("batch")
    rows += batch.num_rows
con.close()
extra = {{"read": rows, "cpu_s": cpu() - cpu0}}
"""


def _measure(loader: str, fmt: str, path: Path, runs: int) -> Measurement:
    store = str(DATA / f"store-{loader}.duckdb")
    common = {"threads": THREADS, "memory": MEMORY_LIMIT, "path": str(path), "store": store}
    if loader == "xrm":
        setup, code = _XRM_SETUP.format(**common), _XRM.format(**common)
    elif loader == "duckdb":
        reader = "read_parquet" if fmt == "parquet" else "read_csv"
        setup, code = _DUCKDB_SETUP.format(**common), _CTAS.format(reader=reader, **common)
    else:
        setup, code = _DUCKDB_SETUP.format(**common), _ARROW.format(fmt=fmt, **common)
    try:
        return measure_python(f"{loader} {fmt} {path.name}", code, setup=setup, runs=runs)
    finally:
        for p in (Path(store), Path(store + ".wal")):
            p.unlink(missing_ok=True)


_NAMES = {"xrm": "xrm `load_file` (checked, keyed)", "duckdb": "DuckDB CTAS (no checks)",
          "arrow": "pyarrow + DuckDB insert (no checks)"}


def _row(n: int, fmt: str, loader: str, m: Measurement, floor: Measurement) -> str:
    rate = n / m.median_s
    spread = f"{len(m.seconds)} ({m.spread()})" if len(m.seconds) > 1 else "1"
    cpu = m.extra.get("cpu_s", float("nan"))
    return (
        f"| {n:,} | {fmt} | {_NAMES[loader]} | {m.median_s:.2f} | {rate:,.0f} | {cpu:.1f} | "
        f"{m.median_peak_mb:,.0f} | {spread} | {floor.median_s / m.median_s:.2f} |"
    )


def _runs(quick: bool) -> int:
    # XRM_BENCH_RUNS overrides (e.g. 1 for a first look at the 10M sizes).
    return 1 if quick else int(os.environ.get("XRM_BENCH_RUNS", "3"))


def _sizes(quick: bool) -> tuple[int, ...]:
    # XRM_BENCH_LOAD_SIZES overrides, e.g. "1000000" (the 10M files take minutes per run).
    wanted = os.environ.get("XRM_BENCH_LOAD_SIZES")
    if wanted:
        return tuple(int(x) for x in wanted.split(","))
    return QUICK_SIZES if quick else SIZES


def _made(n: int) -> tuple[Path, Path]:
    """The files for ``n`` events, made in a child process: the harness's peak memory of each
    measured run starts from this process's size (Linux keeps ru_maxrss across fork and exec)."""
    subprocess.run(
        [sys.executable, "-c", f"from bench.bench_load import make_events; make_events({n})"],
        cwd=ROOT, check=True, timeout=3600,
    )
    return DATA / f"events-{n}.parquet", DATA / f"events-{n}.csv"


def run(quick: bool) -> Section:
    runs = _runs(quick)
    sizes = _sizes(quick)
    lines = [
        "| events | format | loader | median s | events/s | CPU s | peak MB | runs (spread) | "
        "speed vs DuckDB CTAS |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|",
    ]
    verdicts, checks = [], []
    for n in sizes:
        parquet, csv = _made(n)
        for fmt, path in (("parquet", parquet), ("csv", csv)):
            got = {loader: _measure(loader, fmt, path, runs) for loader in ("xrm", "duckdb", "arrow")}
            for loader, m in got.items():
                lines.append(_row(n, fmt, loader, m, got["duckdb"]))
            x = got["xrm"].extra
            checks.append(
                f"{n:,} {fmt}: xrm read {x['read']:,}, loaded {x['loaded']:,}, rejected {x['rejected']:,}, "
                f"order lines {x['order_lines']:,}"
            )
            if fmt == "parquet":
                rate = n / got["xrm"].median_s
                verdict = (
                    "met" if rate >= TARGET
                    else f"not met, gap {TARGET - rate:,.0f} events/s ({TARGET / rate:.1f}x to go)"
                )
                verdicts.append(f"{n:,} events from Parquet: {rate:,.0f} events/s: **{verdict}**")
    size_mb = {p.name: p.stat().st_size / 1e6 for p in DATA.glob("events-*.*") if p.suffix != ".done"}
    shown = ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(size_mb.items()))
    body = [
        f"Target: at least {TARGET:,} events/s from Parquet on 2 cores.",
        "",
        *(f"- {v}" for v in verdicts),
        "",
        *lines,
        "",
        "Events: the sample business's web, order, e-mail and consent events (Segment spec, flat: "
        "message_id, type, event, name, user/anonymous/group/previous id, timestamp, properties, "
        "traits, context as JSON text, order_id, revenue, currency), drawn with replacement, each "
        "with a new UUID message_id; 0.1 % lack a type and are rejected. Files: " + shown + ".",
        "",
        "Each loader runs in a fresh process into a fresh DuckDB file (threads = "
        f"{THREADS}, memory_limit = {MEMORY_LIMIT}); the time ends with the file closed. CPU s = "
        "user + system time of the last run (less sensitive than wall time to other work on a "
        "shared machine). Peak MB = the process's maximum resident memory.",
        "",
        "Checks: " + "; ".join(checks) + ".",
        "",
        f"Machine: {machine_line()}.",
    ]
    return Section("Loading events (CSV and Parquet)", "\n".join(body))

