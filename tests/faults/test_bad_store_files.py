"""Damaged and foreign files are refused clearly, by the store and by `xrm restore`: random bytes,
another program's DuckDB file, a store cut short (a torn copy) or overwritten in place (bit rot),
and a backup damaged after it was made."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

import xrm
from xrm.ingest import load_file
from xrm.store import Store, backup_store, open_for_backup, restore_store

from .conftest import xrm as run_xrm

BLOCK, HEADER = 262_144, 3 * 4096  # DuckDB's block size and file header


def _rot(path: Path) -> None:
    """Overwrite a few bytes in every data block after the first (as a failing disk would)."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        for off in range(HEADER + BLOCK, size - 64, BLOCK):
            fh.seek(off + 40)
            fh.write(b"\xde\xad\xbe\xef" * 4)


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store with a few MB of events (so that it spans many blocks)."""
    d = tmp_path_factory.mktemp("real")
    data = d / "events.jsonl"
    with data.open("w") as fh:
        for i in range(20_000):
            fh.write(json.dumps({"type": "track", "event": "X", "messageId": f"m{i}", "userId": f"u{i}",
                                 "timestamp": "2024-05-01T12:00:00Z", "properties": {"n": "y" * 40}}) + "\n")
    with Store.open(d / "xrm.duckdb") as s:
        load_file(s, data, show_progress=False)
    return d / "xrm.duckdb"


def _random(path: Path, real: Path) -> None:
    path.write_bytes(os.urandom(100_000))


def _foreign(path: Path, real: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices AS SELECT range AS id FROM range(1000)")
    con.close()


def _truncated(path: Path, real: Path) -> None:
    shutil.copyfile(real, path)
    os.truncate(path, path.stat().st_size // 2)


def _rotten(path: Path, real: Path) -> None:
    shutil.copyfile(real, path)
    _rot(path)


@pytest.mark.parametrize(
    ("make", "says"),
    [(_random, "not an xrm store"), (_foreign, "not an xrm store"), (_truncated, "is damaged"),
     (_rotten, "is damaged")],
    ids=["random-bytes", "foreign-duckdb", "truncated", "bit-rot"],
)
def test_bad_store_file_is_refused(tmp_path: Path, real_store: Path, make, says: str) -> None:
    path = tmp_path / "bad.duckdb"
    make(path, real_store)
    before = path.read_bytes()
    with pytest.raises(xrm.StoreVersionError, match=says) as err:
        Store.open(path)
    assert str(path) in str(err.value) and ("backup" in str(err.value) or "new file" in str(err.value))
    assert path.read_bytes() == before  # refused, not "repaired" or overwritten


def test_cli_refuses_damaged_store_without_traceback(tmp_path: Path, real_store: Path) -> None:
    path = tmp_path / "bad.duckdb"
    _rotten(path, real_store)
    out = run_xrm("--store", str(path), "info", env={"XRM_MEMORY_LIMIT": "1GB"})
    text = " ".join(out.stderr.split())
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "is damaged" in text and "xrm restore" in text


def test_damaged_or_foreign_backup_is_not_restored(tmp_path: Path, real_store: Path, record_figures) -> None:
    con = open_for_backup(real_store)
    try:
        backup_store(con, tmp_path / "good.duckdb")
    finally:
        con.close()
    damaged = tmp_path / "damaged.duckdb"
    shutil.copyfile(tmp_path / "good.duckdb", damaged)
    _rot(damaged)
    target = tmp_path / "restored" / "xrm.duckdb"
    refusals = {}
    for name, src, says in [
        ("damaged", damaged, "cannot be read as an xrm backup"),
        ("store-not-backup", real_store, "not a backup made by `xrm backup`"),
        ("random", tmp_path / "random.bin", "is not an xrm backup"),
    ]:
        if name == "random":
            src.write_bytes(os.urandom(50_000))
        with pytest.raises(xrm.StoreVersionError, match=says) as err:
            restore_store(src, target)
        assert str(src) in str(err.value)
        refusals[name] = True
    assert not target.exists() and not any(target.parent.iterdir())  # nothing left behind
    edited = tmp_path / "edited.duckdb"  # a readable backup whose rows were changed afterwards
    shutil.copyfile(tmp_path / "good.duckdb", edited)
    con = duckdb.connect(str(edited))
    con.execute("DELETE FROM events WHERE message_id = 'm7'")
    con.close()
    with pytest.raises(xrm.StoreVersionError, match=r"does not match its manifest.*events: 19999 rows"):
        restore_store(edited, target)
    info = restore_store(tmp_path / "good.duckdb", target)  # the good one goes in
    with Store.open(target) as s:
        assert s.count("events") == info.tables["events"] == 20_000
    record_figures(backups_refused=len(refusals) + 1, backups_restored=1)
