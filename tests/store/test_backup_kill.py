"""A server killed (SIGKILL) while it writes a backup leaves its temporary files next to the store;
the next process that opens the store for writing removes them, and the store is whole."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
from tests.api.live import ServerProcess, bearer, free_port, wait_until_up

from xrm.api._keys import create_key
from xrm.config import Settings
from xrm.store import Store

ROWS = 2_000_000


def _leftovers(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith((f".{name}.backup-", f"..{name}.backup-")))


def test_kill_during_backup_leaves_files_removed_at_next_open(settings: Settings, tmp_path: Path) -> None:
    with Store.open(settings) as store:  # big enough that the copy takes a while
        store.sql(f"CREATE TABLE bulk AS SELECT range AS n, md5(range::VARCHAR) AS h FROM range({ROWS})")
        _, admin = create_key(store, "ops", "admin")
    name = settings.store_path.name
    server = ServerProcess(settings.store_path, free_port(), {"XRM_MEMORY_LIMIT": "1GB"})
    try:
        server.start_process()
        wait_until_up(server.url, server.proc, timeout=240)  # the machine may be loaded

        def ask() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                httpx.post(f"{server.url}/v1/admin/backup", headers=bearer(admin), timeout=120)

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        deadline = time.monotonic() + 120
        while not _leftovers(tmp_path, name) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _leftovers(tmp_path, name), "the backup never started"
        server.kill()  # SIGKILL while the copy is being written
        asker.join(timeout=30)
    finally:
        server.stop()
    assert _leftovers(tmp_path, name)  # what a killed backup leaves
    with Store.open(settings) as store:
        assert store.count("bulk") == ROWS
    assert _leftovers(tmp_path, name) == []
