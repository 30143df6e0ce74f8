"""`xrm backup` of a store that a real `xrm serve` is ingesting into, then `xrm restore` elsewhere:
the restored store opens and holds every event acknowledged before the backup began."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.api.live import ServerProcess, free_port

from xrm.api._keys import create_key
from xrm.exceptions import StoreBusy
from xrm.store import Store, restore_store

from .conftest import ENV, Senders, xrm


def test_backup_while_server_ingests_then_restore(tmp_path: Path, record_figures) -> None:
    store = tmp_path / "live" / "xrm.duckdb"
    store.parent.mkdir()
    with Store.open(store) as s:  # the backup endpoint needs the admin scope
        _, admin = create_key(s, "ops", "admin")
    server = ServerProcess(store, free_port(), ENV).start()
    senders = Senders(server.url, n=3, batches=10_000, per_batch=40, pause=0.02).start()
    try:
        before = senders.wait_acked(1200)  # acknowledged before the backup began
        made = xrm("--store", str(store), "backup", str(tmp_path / "b.duckdb"), "--server", server.url,
                   "--key", admin, "--json")
        with senders.lock:
            after = set(senders.acked)  # acknowledged by the time the backup was answered
        assert made.returncode == 0, made.stdout + made.stderr
        senders.wait_acked(len(after) + 240)  # ingestion goes on after the backup
        with pytest.raises(StoreBusy, match="running process"):  # never under a running server
            restore_store(tmp_path / "b.duckdb", store, force=True)
        senders.stop()
        senders.join()
    finally:
        server.stop()
    info = json.loads(made.stdout)
    assert info["via"] == "server"

    restored = tmp_path / "restored" / "xrm.duckdb"

    done = xrm("--store", str(restored), "restore", str(tmp_path / "b.duckdb"), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    with Store.open(restored) as s:
        ids = [r[0] for r in s.sql("SELECT message_id FROM events").fetchall()]
        resolved = s.sql("SELECT count(*) FROM event_profiles").fetchall()[0][0]
        tables = s.tables()
    record_figures(
        events_offered=len(senders.offered), events_acknowledged_before_backup=len(before),
        events_in_backup=len(ids), events_lost=len(before - set(ids)),
        events_duplicated=len(ids) - len(set(ids)), backup_seconds=info["seconds"],
        backup_bytes=info["bytes"],
    )
    assert before <= set(ids), "an event acknowledged before the backup is missing"
    assert set(ids) <= senders.offered  # nothing invented
    assert len(ids) == len(set(ids)) == info["tables"]["events"]
    assert resolved == len(ids)  # events and their resolutions come from the same snapshot
    assert len(ids) < len(senders.offered)  # ingestion really went on during and after the backup
    assert "xrm_backup_manifest" not in tables
