"""Encryption at rest: what it costs to load and run the pipeline on an encrypted store.

The sample business (2,000 customers) is generated once; then, alternately in fresh processes,
``xrm``'s own load (``load_manifest``) and the whole pipeline (``run_pipeline``) run on a new
plain store and on a new store encrypted with ``store_encryption_key`` (DuckDB AES-256-GCM: every
block, the WAL and spill files). Wall and CPU seconds (the process's, all DuckDB threads) per
phase, medians of 3 runs each (1 with --quick), and the store's size.

Which crypto module wrote the encrypted store is reported: DuckDB's OpenSSL (httpfs extension)
where installed, else its built-in mbedtls (``store_encryption_unsafe_crypto``).

A second table isolates the crypto module: one table of personal-looking rows written (CREATE TABLE
AS, CHECKPOINT) and read back (a full scan) by DuckDB alone, plain, with mbedtls and with OpenSSL
(where httpfs can be loaded: installed, or the duckdb-extension-httpfs package, ``xrm[encryption]``).
``python -m bench.bench_encryption`` prints only that table (no pipeline; usable under any DuckDB).

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


_MODULE_CODE = """
import os, resource
from pathlib import Path
import duckdb
from xrm.store._crypto import connect_file

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

path = Path({store!r})
con = connect_file(path, key={key!r} or None, unsafe_crypto={unsafe!r}, config={{"threads": 1}})
module = con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchall()
c0, w0 = cpu(), time.perf_counter()
con.execute("CREATE TABLE people AS SELECT range AS id, 'person' || range || '@example.org' AS email, "
            "'+49 30 ' || (1000000 + range) AS phone, md5(range::VARCHAR) AS name FROM range({rows})")
con.execute("CHECKPOINT")
c1, w1 = cpu(), time.perf_counter()
con.close()
con = connect_file(path, key={key!r} or None, read_only=True, config={{"threads": 1}})
n = con.execute("SELECT count(DISTINCT email), sum(length(name)) FROM people").fetchall()
c2, w2 = cpu(), time.perf_counter()
con.close()
extra = {{"write_cpu": c1 - c0, "read_cpu": c2 - c1, "write_s": w1 - w0, "read_s": w2 - w1,
          "bytes": path.stat().st_size, "openssl": bool(module and module[0][0])}}
"""


def crypto_modules(rows: int = 2_000_000, runs: int = 3) -> str:
    """Plain vs mbedtls vs OpenSSL on the same rows, alternating, fresh processes: a Markdown table."""
    import duckdb

    from xrm.store._crypto import secure_writing_available

    kinds = [("plain", "", False), ("mbedtls", KEY, True)]
    if secure_writing_available():
        kinds.append(("OpenSSL", KEY, False))
    folder = Path(tempfile.mkdtemp(prefix="xrm-bench-crypto-"))
    got: dict[str, list[dict[str, float]]] = {k: [] for k, _, _ in kinds}
    try:
        for i in range(runs):
            for label, key, unsafe in kinds:
                store = folder / f"{label}-{i}.duckdb"
                code = _MODULE_CODE
                if label == "mbedtls":  # forced: with httpfs loadable it would pick OpenSSL
                    code = code.replace("import duckdb\n", "import duckdb\nimport xrm.store._crypto as c\n"
                                        "c._load_httpfs = lambda con: False\n")
                code = code.format(store=str(store), key=key, unsafe=unsafe, rows=rows)
                m = measure_python(label, code, runs=1)
                got[label].append(m.extra)
                for f in folder.glob(f"{label}-{i}.duckdb*"):
                    f.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert all(x["openssl"] for x in got.get("OpenSSL", [])) and not any(x["openssl"] for x in got["mbedtls"])

    def med(label: str, field: str) -> float:
        return statistics.median(float(x[field]) for x in got[label])

    base_w, base_r = med("plain", "write_cpu"), med("plain", "read_cpu")
    lines = ["| module | write CPU s | read CPU s | write / plain | read / plain | file MB |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, _, _ in kinds:
        w, r = med(label, "write_cpu"), med(label, "read_cpu")
        lines.append(f"| {label} | {w:.2f} | {r:.2f} | {w / base_w:.2f} | {r / base_r:.2f} | "
                     f"{med(label, 'bytes') / 1e6:.1f} |")
    if len(kinds) == 2:
        lines.append(f"| OpenSSL | not measured: no httpfs for DuckDB {duckdb.__version__} | | | | |")
    return (f"{rows:,} rows (id, e-mail, phone, name), DuckDB threads = 1, medians of {runs} runs each, "
            f"DuckDB {duckdb.__version__}:\n\n" + "\n".join(lines))


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
        modules = crypto_modules(500_000 if quick else 2_000_000, runs)
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

The crypto module alone (DuckDB only, no pipeline): {modules}
"""
    return Section("Encryption at rest (load + pipeline, plain vs encrypted store)", body)


if __name__ == "__main__":
    import sys

    print(machine_line())
    print(crypto_modules(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000))
