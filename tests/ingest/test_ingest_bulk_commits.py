"""A load killed (SIGKILL, a real process) between batches keeps exactly the batches it committed,
and loading the file again completes it without storing an event twice.

It also pins what makes a batch's commit cheap whatever the table's size (bench/results/profile.md,
session 5): DuckDB 2.0 logs a commit of whole row groups as pointers to the blocks the INSERT wrote,
with no checkpoint (whose cost grows with the key's index)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from xrm.config import Settings
from xrm.ingest import load_file
from xrm.ingest._load import ROW_GROUP_ROWS
from xrm.store import Store

BATCHES = 2
ROWS = ROW_GROUP_ROWS * BATCHES  # whole row groups: the commits DuckDB would checkpoint in


def _events(path: Path) -> None:
    ids = pa.array([f"m{i:07d}" for i in range(ROWS)])
    pq.write_table(pa.table({
        "message_id": ids,
        "type": pa.array(["page"] * ROWS),
        "user_id": pa.array([f"u{i % 5000}" for i in range(ROWS)]),
        "timestamp": pa.array(["2024-05-01T12:00:00Z"] * ROWS),
    }), path)


_CHILD = """
import os, signal, sys
from pathlib import Path
from xrm.config import Settings
from xrm.ingest import load_file
from xrm.store import Store

store = Store.open(Settings(store_path=Path(sys.argv[1]), memory_limit="1GB", threads=1))

def progress(p):
    if p.rows and not p.done:  # the first batch is committed: die before the next
        os.kill(os.getpid(), signal.SIGKILL)

load_file(store, sys.argv[2], show_progress=False, progress=progress)
"""


def test_a_load_killed_after_a_batch_keeps_it_in_the_log_and_a_reload_completes(tmp_path: Path) -> None:
    data, path = tmp_path / "events.parquet", tmp_path / "xrm.duckdb"
    _events(data)
    wal = Path(f"{path}.wal")
    Store.open(Settings(store_path=path)).close()
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(path), str(data)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    # The committed batch is in the log, not checkpointed into the file (a checkpoint empties it).
    assert wal.exists() and wal.stat().st_size > 1_000
    settings = Settings(store_path=path, memory_limit="1GB", threads=1)
    with Store.open(settings) as store:  # replays the log
        assert store.count("events") == ROW_GROUP_ROWS
        assert store.sql("SELECT status FROM loads").fetchall() == [("running",)]
        report = load_file(store, data, show_progress=False)
        assert (report.rows_loaded, report.rows_duplicate, report.rows_rejected) == (
            ROWS - ROW_GROUP_ROWS, ROW_GROUP_ROWS, 0
        )
        rows, distinct = store.sql("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall()[0]
        assert rows == distinct == ROWS
        assert store.sql("SELECT count(*) FROM loads WHERE status = 'done'").fetchall() == [(1,)]
