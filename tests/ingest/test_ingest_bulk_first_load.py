"""A manifest loaded into an empty store goes through the bulk path (xrm.ingest._bulk): events staged
without their key, keyed and indexed once at the end. Same rows and counts as row by row, the same
key and indexes after, and a load killed half-way keeps its committed batches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xrm.config import Settings
from xrm.ingest import load_file, load_manifest
from xrm.ingest._bulk import STAGE
from xrm.ingest._load import ROW_GROUP_ROWS
from xrm.store import Store


def _events(path: Path, ids: list[str], kind: str) -> None:
    n = len(ids)
    pq.write_table(pa.table({
        "message_id": pa.array(ids),
        "type": pa.array([kind] * n),
        "event": pa.array(["Product Viewed" if kind == "track" else None] * n, pa.string()),
        "user_id": pa.array([f"u{i % 97}" for i in range(n)]),
        "anonymous_id": pa.array([f"a{i % 89}" for i in range(n)]),
        "timestamp": pa.array(["2024-05-01T12:00:00Z"] * n),
    }), path)


def _manifest(folder: Path, files: list[str]) -> Path:
    path = folder / "manifest.json"
    path.write_text(json.dumps({"files": [{"path": f, "kind": "events"} for f in files]}))
    return path


def _keys(store: Store) -> tuple[list[str], list[str]]:
    constraints = [r[0] for r in store.sql(
        "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'events' "
        "AND constraint_type <> 'NOT NULL'").fetchall()]
    indexes = [r[0] for r in store.sql(
        "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'events' ORDER BY 1").fetchall()]
    return constraints, indexes


@pytest.mark.parametrize("empty", [True, False], ids=["bulk", "row-by-row"])
def test_first_load_same_counts_key_and_indexes_as_row_by_row(tmp_path: Path, empty: bool) -> None:
    # b.parquet repeats half of a.parquet's ids, and one of its own ids twice.
    _events(tmp_path / "a.parquet", [f"m{i}" for i in range(1000)], "page")
    _events(tmp_path / "b.parquet", [f"m{i}" for i in range(500, 1500)] + ["m1400"], "track")
    _events(tmp_path / "first.parquet", ["x0"], "page")
    manifest = _manifest(tmp_path, ["a.parquet", "b.parquet"])
    with Store.open(Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1)) as store:
        wanted = _keys(store)
        assert wanted == (["PRIMARY KEY"], ["events_anonymous_id", "events_previous_id", "events_user_id"])
        if not empty:
            load_file(store, tmp_path / "first.parquet", show_progress=False)
        a, b = load_manifest(store, manifest, show_progress=False)
        assert (a.rows_read, a.rows_loaded, a.rows_duplicate) == (1000, 1000, 0)
        assert (b.rows_read, b.rows_loaded, b.rows_duplicate) == (1001, 500, 501)
        assert store.sql("SELECT rows_loaded, rows_duplicate, status FROM loads WHERE file LIKE '%b.parquet'"
                         ).fetchall() == [(500, 501, "done")]
        rows, distinct = store.sql("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall()[0]
        assert rows == distinct == 1500 + (0 if empty else 1)
        # The first copy stored wins, as with the key: m500..m999 are a.parquet's page calls.
        assert store.sql(
            "SELECT type, count(*) FROM events WHERE message_id LIKE 'm%' GROUP BY ALL ORDER BY 1"
        ).fetchall() == [("page", 1000), ("track", 500)]
        assert _keys(store) == wanted
        assert not store.sql(f"SELECT 1 FROM duckdb_tables() WHERE table_name = '{STAGE}'").fetchall()
        # The key works after the swap: a second delivery of the same events adds nothing.
        again = load_file(store, tmp_path / "a.parquet", force=True, show_progress=False)
        assert (again.rows_loaded, again.rows_duplicate) == (0, 1000)


_CHILD = """
import os, signal, sys
from pathlib import Path
from xrm.config import Settings
from xrm.ingest import load_manifest
from xrm.store import Store

store = Store.open(Settings(store_path=Path(sys.argv[1]), memory_limit="1GB", threads=1))

def progress(p):
    if p.rows and not p.done:  # the first batch is committed (to the staging table): die
        os.kill(os.getpid(), signal.SIGKILL)

load_manifest(store, sys.argv[2], show_progress=False, progress=progress)
"""


def test_a_bulk_load_killed_after_a_batch_keeps_it_and_a_reload_completes(tmp_path: Path) -> None:
    rows = ROW_GROUP_ROWS + 1000  # two batches: a whole row group, then the rest
    _events(tmp_path / "events.parquet", [f"m{i:07d}" for i in range(rows)], "page")
    manifest = _manifest(tmp_path, ["events.parquet"])
    path = tmp_path / "xrm.duckdb"
    Store.open(Settings(store_path=path)).close()
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(path), str(manifest)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with Store.open(Settings(store_path=path, memory_limit="1GB", threads=1)) as store:
        assert store.count("events") == 0 and store.count(STAGE) == ROW_GROUP_ROWS
        (report,) = load_manifest(store, manifest, show_progress=False)
        # The next load swapped the committed batch in first; the file's rest is loaded after it.
        assert (report.rows_loaded, report.rows_duplicate, report.rows_rejected) == (
            rows - ROW_GROUP_ROWS, ROW_GROUP_ROWS, 0
        )
        got, distinct = store.sql("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall()[0]
        assert got == distinct == rows
        assert _keys(store)[0] == ["PRIMARY KEY"]
        assert store.sql("SELECT status, count(*) FROM loads GROUP BY ALL ORDER BY 1").fetchall() == [
            ("done", 1), ("running", 1)
        ]
