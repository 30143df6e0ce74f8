"""`xrm backup` / `xrm restore` without a server: the store copied directly, verified, put back;
what a restore refuses (an existing store without --force, a backup from a newer xrm)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import xrm
from xrm.cli import app
from xrm.store import Store, backup_store, restore_store, verify_backup
from xrm.store._backup import MANIFEST_TABLE

runner = CliRunner()


def _cli(store: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--store", str(store), *args])
    return result.exit_code, result.output


def test_direct_backup_and_restore_round_trip(settings, tmp_path: Path) -> None:
    with Store.open(settings) as s:
        s.sql("INSERT INTO loads VALUES ('l1','f','x','events',NULL,now(),NULL,0,0,0,0,'done')").fetchall()
        s.sql("INSERT INTO merge_log (run_id, logged_at, action, profile_id, reason) "
              "VALUES (1, now(), 'merge', 1, 't')").fetchall()
        versions = s.schema_versions()
    code, out = _cli(settings.store_path, "backup", str(tmp_path / "b.duckdb"), "--json")
    assert code == 0, out
    made = json.loads(out)
    assert made["via"] == "direct" and made["tables"]["loads"] == 1
    assert made["schemas"] == {k: v[0] for k, v in versions.items()}
    code, out = _cli(settings.store_path, "backup", str(tmp_path / "b.duckdb"))
    assert code == 1 and "exists" in out  # never overwritten without --force

    target = tmp_path / "r" / "xrm.duckdb"
    code, out = _cli(target, "restore", str(tmp_path / "b.duckdb"), "--json")
    assert code == 0, out
    with Store.open(target) as s:
        assert s.count("loads") == 1 and MANIFEST_TABLE not in s.tables()
        assert s.schema_versions() == versions
        # The sequence carried on: a new row does not collide with the restored one.
        s.sql("INSERT INTO merge_log (run_id, logged_at, action, profile_id, reason) "
              "VALUES (2, now(), 'merge', 2, 't')").fetchall()
        assert s.count("merge_log") == 2
    code, out = _cli(target, "restore", str(tmp_path / "b.duckdb"))
    assert code == 1 and "--force" in out
    code, out = _cli(target, "restore", str(tmp_path / "b.duckdb"), "--force")
    assert code == 0, out


def test_backup_from_newer_xrm_is_refused(store, tmp_path: Path) -> None:
    backup_store(store.con, tmp_path / "b.duckdb")  # on a live connection, as the server does
    edit = duckdb.connect(str(tmp_path / "b.duckdb"))
    edit.execute("UPDATE xrm_meta SET version = 99 WHERE capability = 'ingest'")
    edit.execute(f"UPDATE {MANIFEST_TABLE} SET schemas = json_merge_patch(schemas, '{{\"ingest\": 99}}')")
    edit.close()
    with pytest.raises(xrm.StoreVersionError, match=r"newer xrm .*'ingest' schema is v99"):
        verify_backup(tmp_path / "b.duckdb")
    with pytest.raises(xrm.StoreVersionError, match="newer xrm"):
        restore_store(tmp_path / "b.duckdb", tmp_path / "new.duckdb")
    assert not (tmp_path / "new.duckdb").exists()
