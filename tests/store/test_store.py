from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import xrm
from xrm.store import Migration, Schema, Store, all_schemas
from xrm.store._migrate import META_TABLE


def test_open_creates_file_and_tables(settings):
    with Store.open(settings) as store:
        assert Path(settings.store_path).exists()
        assert {"events", "records", "rejected_rows", "loads", META_TABLE} <= set(store.tables())
        ingest = next(s for s in all_schemas() if s.capability == "ingest")
        assert store.schema_versions()["ingest"][0] == ingest.latest


def test_reopen_is_idempotent(settings):
    Store.open(settings).close()
    with Store.open(settings) as store:
        assert store.count(META_TABLE) == len(all_schemas())


def test_older_store_is_upgraded(tmp_path):
    path = tmp_path / "old.duckdb"
    v1 = Schema("demo", (Migration(1, "t", "CREATE TABLE t (a INTEGER)"),))
    with Store.open(path, schemas=(v1,)) as store:
        store.sql("INSERT INTO t VALUES (7)")
    v2 = Schema("demo", (*v1.migrations, Migration(2, "t.b", "ALTER TABLE t ADD COLUMN b VARCHAR")))
    with Store.open(path, schemas=(v2,)) as store:
        assert store.schema_versions()["demo"][0] == 2
        assert store.sql("SELECT a, b FROM t").fetchall() == [(7, None)]


def test_newer_store_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    v2 = Schema("demo", (Migration(1, "t", "CREATE TABLE t (a INT)"), Migration(2, "u", "SELECT 1")))
    Store.open(path, schemas=(v2,)).close()
    v1 = Schema("demo", v2.migrations[:1])
    with pytest.raises(xrm.StoreVersionError, match=r"newer xrm .*'demo' schema is v2, .* knows v1"):
        Store.open(path, schemas=(v1,))


def test_failed_migration_leaves_last_whole_version(tmp_path):
    path = tmp_path / "half.duckdb"
    good = Migration(1, "t", "CREATE TABLE t (a INT)")
    bad = Migration(2, "broken", "CREATE TABLE u (a INT); SELECT * FROM no_such_table")
    with pytest.raises(duckdb.Error):
        Store.open(path, schemas=(Schema("demo", (good, bad)),))
    with Store.open(path, schemas=(Schema("demo", (good,)),)) as store:
        assert store.schema_versions()["demo"][0] == 1
        assert "u" not in store.tables()


def test_foreign_duckdb_file_is_refused(tmp_path):
    path = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INT)")
    con.close()
    with pytest.raises(xrm.StoreVersionError, match="not an xrm store"):
        Store.open(path)


def test_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "corrupt.duckdb"
    path.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(xrm.StoreVersionError, match="not an xrm store"):
        Store.open(path)


def test_second_writer_gets_store_busy(settings, tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb; con = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(30)",
            str(settings.store_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(xrm.StoreBusy, match="one writing process"):
            Store.open(settings)
    finally:
        holder.kill()
        holder.wait()


def test_transaction_rolls_back(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO loads VALUES ('l1','f','x','events',NULL,now(),NULL,0,0,0,0,'done')")
        raise RuntimeError("boom")
    assert store.count("loads") == 0


def test_schema_versions_must_be_consecutive():
    with pytest.raises(ValueError, match="must be 1, 2, 3"):
        Schema("bad", (Migration(2, "x", "SELECT 1"),))
