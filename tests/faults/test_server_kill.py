"""SIGKILL of `xrm serve` during ingestion: clients retry what was not acknowledged; afterwards every
acknowledged event is stored, and none twice (counted by message_id)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.api.live import ServerProcess, free_port

from xrm.store import Store

from .conftest import ENV, Senders


def test_sigkill_server_during_ingestion(tmp_path: Path, record_figures) -> None:
    store = tmp_path / "xrm.duckdb"
    port = free_port()
    server = ServerProcess(store, port, ENV).start()
    senders = Senders(server.url, n=3, batches=20, per_batch=40).start()
    kills = 0
    try:
        senders.wait_acked(600)  # a few batches in: the load is running
        server.kill()  # SIGKILL: no shutdown, no flush
        kills += 1
        with senders.lock:
            acked_at_kill = set(senders.acked)
        time.sleep(0.3)  # the clients keep retrying against a dead port
        server = ServerProcess(store, port, ENV).start()
        senders.join()
    finally:
        server.stop()
    with Store.open(store) as s:
        rows, distinct = s.sql("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall()[0]
        ids = {r[0] for r in s.sql("SELECT message_id FROM events").fetchall()}
    lost = senders.acked - ids
    figures = record_figures(
        kills=kills, events_acknowledged_at_kill=len(acked_at_kill), events_offered=len(senders.offered),
        events_acknowledged=len(senders.acked), events_stored=distinct, events_lost=len(lost),
        events_duplicated=rows - distinct,
    )
    assert figures["events_lost"] == 0 and acked_at_kill <= ids, sorted(lost)[:5]
    assert figures["events_duplicated"] == 0
    assert senders.acked == senders.offered == ids  # the retries delivered every offered event
