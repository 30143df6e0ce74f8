"""SIGKILL of a batch job (`xrm identify resolve`, the pipeline's identity step) mid-run: the store
opens afterwards, shows no half-written step (every sub-step commits whole), and a rerun gives the
same results as a run that was never interrupted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from xrm.config import Settings
from xrm.ingest import load_manifest
from xrm.pipeline import run_pipeline
from xrm.sample import generate_sample
from xrm.store import Store


def _results(store: Store) -> dict[str, Any]:
    """What the identity step produces, without run ids and times."""
    q = {
        "profiles": "SELECT profile_id, status, merged_into, n_records, n_identifiers FROM profiles",
        "identifiers": "SELECT id_type, id_value, profile_id FROM identifiers",
        "profile_records": "SELECT record_id, profile_id FROM profile_records",
        "event_profiles": "SELECT message_id, profile_id FROM event_profiles",
        "golden": "SELECT profile_id, attribute, value, rule, record_id FROM golden_records",
        "pairs": "SELECT record_a, record_b, round(match_weight, 6), status FROM linkage_pairs",
    }
    return {k: sorted(store.sql(v).fetchall(), key=repr) for k, v in q.items()}


def _inconsistencies(store: Store) -> list[str]:
    """Rows pointing at rows that do not exist: what a half-written step would leave."""
    checks = {
        "identifiers without profile": "SELECT count(*) FROM identifiers WHERE profile_id NOT IN "
        "(SELECT profile_id FROM profiles)",
        "records without profile": "SELECT count(*) FROM profile_records WHERE profile_id NOT IN "
        "(SELECT profile_id FROM profiles)",
        "events without profile": "SELECT count(*) FROM event_profiles WHERE profile_id NOT IN "
        "(SELECT profile_id FROM profiles)",
        "golden without profile": "SELECT count(*) FROM golden_records WHERE profile_id NOT IN "
        "(SELECT profile_id FROM profiles)",
        "profiles without run": "SELECT count(*) FROM profiles WHERE created_run NOT IN "
        "(SELECT run_id FROM identity_runs)",
        "part-normalised records": "SELECT count(*) FROM (SELECT (SELECT count(*) FROM normalized_records) "
        "AS n) WHERE n NOT IN (0, (SELECT count(*) FROM records))",
    }
    bad = []
    for name, sql in checks.items():
        n = store.sql(sql).fetchall()[0][0]
        if n:
            bad.append(f"{name}: {n}")
    return bad


def test_sigkill_identity_job_then_rerun(tmp_path: Path, record_figures) -> None:
    generate_sample(tmp_path / "sample", customers=80, seed=7, years=1.0, show_progress=False)
    killed = Settings(store_path=tmp_path / "killed.duckdb", memory_limit="1GB", threads=1)
    with Store.open(killed) as s:
        load_manifest(s, tmp_path / "sample" / "manifest.json", show_progress=False)
        loaded = s.count("records"), s.count("events")
    reference = killed.model_copy(update={"store_path": tmp_path / "reference.duckdb"})
    shutil.copyfile(killed.store_path, reference.store_path)
    with Store.open(reference) as s:  # the uninterrupted run
        took = time.perf_counter()
        run_pipeline(s, steps=("identities",))
        took = time.perf_counter() - took
        want = _results(s)

    wal = Path(str(killed.store_path) + ".wal")
    assert not wal.exists()
    xrm_exe = Path(sys.executable).with_name("xrm")
    env = {**os.environ, "XRM_MEMORY_LIMIT": "1GB", "XRM_THREADS": "1"}
    proc = subprocess.Popen([str(xrm_exe), "--store", str(killed.store_path), "identify", "resolve"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not wal.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)  # the job has begun writing
    time.sleep(took / 2)  # about half-way through the step (its sub-steps commit one by one)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "job ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    with Store.open(killed) as s:  # opens: DuckDB replays the WAL's whole transactions
        bad = _inconsistencies(s)
        runs_after_kill = s.count("identity_runs")
        normalised_after_kill = s.count("normalized_records")
        assert (s.count("records"), s.count("events")) == loaded
        run_pipeline(s, steps=("identities",))  # the rerun
        got = _results(s)
        bad_after = _inconsistencies(s)
    record_figures(records=loaded[0], events=loaded[1], killed_after_s=round(took / 2, 2),
                   identity_runs_after_kill=runs_after_kill,
                   normalised_after_kill=normalised_after_kill, inconsistencies=len(bad),
                   profiles=len(want["profiles"]), rerun_equal=got == want)
    assert not bad and not bad_after, bad + bad_after
    for table in want:
        assert got[table] == want[table], f"{table} differs after the rerun"
