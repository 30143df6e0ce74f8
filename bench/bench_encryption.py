"""Encryption at rest: what it costs to load and run the pipeline on an encrypted store.

The sample business (2,000 customers) is generated once; then, alternately in fresh processes,
``xrm``'s own load (``load_manifest``) and the whole pipeline (``run_pipeline``) run on a new
plain store and on a new store encrypted with ``store_encryption_key`` (DuckDB AES-256-GCM: every
block, the WAL and spill files). Wall and CPU seconds (the process's, all DuckDB threads) per
phase, medians of 3 runs each (1 with --quick), and the store's size.

Which crypto module wrote the encrypted store is reported: DuckDB's OpenSSL (httpfs extension)
where installed, else its built-in mbedtls (``store_encryption_unsafe_crypto``).

    python -m bench --only encryption [--quick]
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench._harness import Measurement, Section, machine_line, measure_python

__all__ = ["run"]

CUSTOMERS = 2_000
KEY = "bench-encryption-key-0123456789abcdef"

_CODE = """
import resource
from pathlib import Path
from xrm.config import Settings
from xrm.ingest import load_manifest
from xrm.pipeline import run_pipeline
from xrm.store import Store

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

store = Path({store!r})
key = {key!r}
settings = Settings(store_path=store, memory_limit="2GB", threads=2,
                    store_encryption_key=key or None, store_encryption_unsafe_crypto=True)
c0, w0 = cpu(), time.perf_counter()
with Store.open(settings) as s:
    load_manifest(s, Path({manifest!r}), show_progress=False)
    c1, w1 = cpu(), time.perf_counter()
    run_pipeline(s)
    c2, w2 = cpu(), time.perf_counter()
    crypto = s.sql("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchall()
extra = {{"load_s": w1 - w0, "load_cpu": c1 - c0, "pipe_s": w2 - w1, "pipe_cpu": c2 - c1,
          "bytes": store.stat().st_size, "openssl": bool(crypto and crypto[0][0])}}
"""


def run(quick: bool) -> Section:
    from xrm.sample import generate_sample

    runs = 1 if quick else 3
    folder = Path(tempfile.mkdtemp(prefix="xrm-bench-enc-"))
    try:
        generate_sample(folder / "sample", customers=CUSTOMERS, seed=5, show_progress=False)
        manifest = str(folder / "sample" / "manifest.json")
        before = os.getloadavg()
        got: dict[str, list[dict[str, float]]] = {"plain": [], "encrypted": []}
        for i in range(runs):  # alternate, so drift in the machine's load hits both alike
            for label, key in (("plain", ""), ("encrypted", KEY)):
                store = folder / f"{label}-{i}.duckdb"
                m: Measurement = measure_python(
                    f"{label}-{i}", _CODE.format(store=str(store), key=key, manifest=manifest), runs=1,
                    timeout=3600,
                )
                got[label].append(m.extra)
                for f in folder.glob(f"{label}-{i}.duckdb*"):
                    f.unlink()
        after = os.getloadavg()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def med(label: str, field: str) -> float:
        return statistics.median(float(x[field]) for x in got[label])

    rows = []
    for field, name in (("load_s", "load, wall s"), ("load_cpu", "load, CPU s"),
                        ("pipe_s", "pipeline, wall s"), ("pipe_cpu", "pipeline, CPU s")):
        p, e = med("plain", field), med("encrypted", field)
        rows.append(f"| {name} | {p:.1f} | {e:.1f} | {e / p:.2f} |")
    p, e = med("plain", "bytes"), med("encrypted", "bytes")
    rows.append(f"| store size, MB | {p / 1e6:.1f} | {e / 1e6:.1f} | {e / p:.2f} |")
    module = "OpenSSL (httpfs)" if all(x["openssl"] for x in got["encrypted"]) else (
        "DuckDB's built-in mbedtls (httpfs not installed here; `store_encryption_unsafe_crypto`)")
    body = f"""
Machine: {machine_line()}; 1-min load average {before[0]:.1f} before, {after[0]:.1f} after (shared
machine: compare the ratios). Sample business, {CUSTOMERS:,} customers; `load_manifest` then
`run_pipeline` on a new store, plain and encrypted alternately, each run a fresh process, DuckDB
threads = 2, memory_limit 2 GB. Medians of {runs} run(s) each. Encrypted store written with {module}.

| phase | plain | encrypted | encrypted / plain |
|---|---:|---:|---:|
{chr(10).join(rows)}

On a loaded machine wall seconds mostly measure the wait for a core: the CPU seconds are the cost.
mbedtls is DuckDB's fallback; OpenSSL (httpfs), the module it writes with in production, could not
be installed here to measure.
"""
    return Section("Encryption at rest (load + pipeline, plain vs encrypted store)", body)
