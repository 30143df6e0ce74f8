"""The server runs due scheduled campaigns by itself, once per occurrence."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

from xrm.config import Settings
from xrm.interact import schedule_campaign
from xrm.store import Store

from .live import serve_in_thread

NEWS = {
    "id": "news", "channel": "email", "control_share": 0.0,
    "audience": "SELECT user_id AS customer FROM records",
    "template": {"subject": "News", "text": "Hallo {{ customer.first_name }}"},
}


def test_server_runs_a_due_schedule_once(tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        secret_key="s" * 32, schedule_poll_seconds=0.2)
    with Store.open(settings) as store:
        store.sql(
            "INSERT INTO records (record_id, source, source_key, first_name, email, user_id, updated_at) "
            "VALUES ('shop:u1', 'shop', 'u1', 'Ann', 'ann@example.com', 'u1', TIMESTAMP '2026-01-01')"
        ).fetchall()
        store.sql(
            "INSERT INTO consents (customer, channel, purpose, status, source, given_at) "
            "VALUES ('u1', 'email', 'marketing', 'granted', 'test', TIMESTAMP '2026-01-01')"
        ).fetchall()
        schedule_campaign(store, NEWS, every=timedelta(days=1), start=datetime(2026, 1, 2))
    for live in serve_in_thread(settings):  # a real uvicorn server on this store
        store = live.app.state.store
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = store.sql("SELECT count(*) FROM campaign_schedule_runs WHERE status = 'done'").fetchall()
            if done[0][0]:
                break
            time.sleep(0.1)
        time.sleep(0.6)  # a few more polls: the occurrence must not run again
        runs = store.sql("SELECT count(*) FROM campaign_runs WHERE campaign_id = 'news'").fetchall()[0][0]
        messages = store.sql("SELECT count(*) FROM messages").fetchall()[0][0]
    assert done[0][0] == 1 and runs == 1 and messages == 1
