"""A full disk during `xrm load` (RLIMIT_FSIZE in the child: writes past it fail with EFBIG, as
on a full disk): a clear error naming the problem and the fix, nothing half-written."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from xrm.ingest import load_file
from xrm.store import Store


def _events(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "type": "track", "event": "Product Viewed", "messageId": f"m{i}", "userId": f"u{i % 3000}",
                "timestamp": "2024-05-01T12:00:00Z", "properties": {"sku": f"p{i % 997}", "note": "x" * 60},
            }) + "\n")


def test_full_disk_during_load(tmp_path: Path, record_figures) -> None:
    store = tmp_path / "xrm.duckdb"
    env = {"XRM_MEMORY_LIMIT": "1GB", "XRM_THREADS": "1"}
    xrm_exe = Path(sys.executable).with_name("xrm")
    with Store.open(store) as s:
        before = {t: s.count(t) for t in ("events", "loads", "rejected_rows")}
    data = tmp_path / "events.jsonl"
    _events(data, 15_000)  # one batch (a DuckDB row group), a few MB in the store
    room = store.stat().st_size + 256 * 1024  # no file may grow past this: the "disk" is full

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    full = subprocess.run(
        [str(xrm_exe), "--store", str(store), "load", str(data)], preexec_fn=limit,
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )
    message = " ".join(full.stderr.split())
    assert full.returncode == 1, full.stdout + full.stderr
    assert "Traceback" not in full.stderr
    assert "the disk is full" in message and "Free space" in message and "run the same `xrm load`" in message
    with Store.open(store) as s:  # the store opens, and holds nothing of the failed load
        after = {t: s.count(t) for t in ("events", "loads", "rejected_rows")}
        running = s.sql("SELECT count(*) FROM loads WHERE status = 'running'").fetchall()[0][0]
    assert after["events"] == before["events"] and after["rejected_rows"] == before["rejected_rows"]
    assert running == 0  # the failed load is marked failed (or was never recorded)

    with Store.open(store) as s:  # room again: the same load completes
        assert load_file(s, data, show_progress=False).rows_loaded == 15_000
        rows, distinct = s.sql("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall()[0]
    record_figures(events_offered=15_000, events_stored_after_full_disk=after["events"] - before["events"],
                   events_stored_after_rerun=distinct, events_duplicated=rows - distinct,
                   limit_bytes=room)
    assert rows == distinct == before["events"] + 15_000
