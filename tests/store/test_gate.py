"""The store's gate (xrm.store._gate): who may use the store while its index memory is released,
and the release itself on a real DuckDB file (Store.open(..., attached=True)). Real threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from xrm.config import Settings
from xrm.exceptions import StoreError
from xrm.store import Store
from xrm.store._gate import StoreGate


def _in_thread(job: object) -> threading.Thread:
    t = threading.Thread(target=job)  # type: ignore[arg-type]
    t.start()
    return t


def test_a_release_waits_for_the_holders_and_new_requests_wait_for_it() -> None:
    gate = StoreGate()
    assert gate.try_enter()  # a request inside
    got: list[bool] = []
    inside = threading.Event()
    finish = threading.Event()

    def release() -> None:
        with gate.alone(timeout=10) as ok:
            got.append(ok)
            inside.set()
            finish.wait(10)

    t = _in_thread(release)
    time.sleep(0.2)
    assert not inside.is_set()  # the request is still inside
    assert not gate.try_enter()  # a new request waits for the release that waits ...
    woken = threading.Event()
    gate.when_open(woken.set)
    urgent_in = threading.Event()

    def urgent() -> None:
        with gate.shared(urgent=True):  # ... an urgent holder does not (a request may wait for it)
            urgent_in.set()

    _in_thread(urgent).join(5)
    assert urgent_in.is_set() and not inside.is_set()
    gate.leave()
    assert inside.wait(5) and got == [True]
    assert not gate.try_enter() and not woken.is_set()  # while it runs, nobody enters
    late = threading.Event()

    def late_urgent() -> None:
        with gate.shared(urgent=True):
            late.set()

    u = _in_thread(late_urgent)
    time.sleep(0.1)
    assert not late.is_set()  # urgent holders wait while a release runs
    finish.set()
    t.join(5)
    u.join(5)
    assert late.is_set() and woken.is_set() and gate.try_enter()
    gate.leave()


def test_a_release_gives_up_when_holders_stay_and_lets_the_waiting_in() -> None:
    gate = StoreGate()
    assert gate.try_enter()
    woken = threading.Event()
    results: list[bool] = []

    def release() -> None:
        with gate.alone(timeout=0.3) as ok:
            results.append(ok)

    t = _in_thread(release)
    time.sleep(0.1)
    gate.when_open(woken.set)
    t.join(5)
    assert results == [False] and woken.is_set()
    assert gate.try_enter()  # the requests go on
    gate.leave()
    gate.leave()


def test_a_thread_holds_the_gate_again_without_waiting_and_never_releases_from_inside() -> None:
    gate = StoreGate()
    with gate.shared(), gate.shared(), gate.alone(timeout=0.05) as ok:
        assert not ok  # a holder cannot release (it would wait for itself)
    with gate.alone(timeout=0.05) as ok:
        assert ok


@pytest.fixture()
def attached(tmp_path: Path) -> Store:
    settings = Settings(store_path=tmp_path / "x.duckdb", memory_limit="1GB", threads=1)
    store = Store.open(settings, attached=True)
    cur = store.con.cursor()
    cur.execute("CREATE TABLE t (k VARCHAR PRIMARY KEY, who VARCHAR)")
    cur.execute("CREATE INDEX t_who ON t (who)")
    cur.execute("INSERT INTO t SELECT 'k-' || range, 'w-' || (range % 20000) FROM range(200000)")
    cur.execute("CHECKPOINT")
    cur.close()
    return store


def test_a_release_frees_the_index_memory_look_ups_kept_and_nothing_else_changes(attached: Store) -> None:
    store = attached
    try:
        reader = store.con.cursor()
        for i in range(300):
            reader.execute("SELECT count(*) FROM t WHERE who = ?", [f"w-{i * 61 % 20000}"]).fetchall()
        reader.execute("INSERT INTO t VALUES ('new', 'w-1')")  # in the log, not checkpointed yet
        assert store.index_memory_mb() > 1
        with store.gate.alone(timeout=1) as ok:
            assert ok
            store.release_index_memory()
        assert store.index_memory_mb() < 0.5
        # the idle cursor, a new one, Ibis and the store's own helpers all work on
        assert reader.execute("SELECT count(*) FROM t WHERE who = 'w-1'").fetchall() == [(11,)]
        assert store.count("t") == 200_001 and "t" in store.tables()
        assert store.table("t").count().to_pyarrow().as_py() == 200_001
        with pytest.raises(Exception, match="Duplicate key"):  # the key index is whole
            store.sql("INSERT INTO t VALUES ('k-7', 'x')")
    finally:
        store.close()
    with Store.open(store.path) as again:  # the row written before the release is in the file
        assert again.count("t") == 200_001


def test_only_an_attached_store_can_release(tmp_path: Path) -> None:
    with Store.open(tmp_path / "plain.duckdb") as store:
        assert not store.releasable
        with pytest.raises(StoreError, match="attached"):
            store.release_index_memory()


def test_a_release_beside_an_open_transaction_fails_clearly_and_never_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the gate prevents: someone inside a transaction who did not take it. The ATTACH is tried
    again while the deferred DETACH waits for that transaction, then the error says what to do."""
    from xrm.store._crypto import CatalogConnection

    monkeypatch.setattr(CatalogConnection, "ATTACH_WAITS", (0.0, 0.01))
    key = "a key of the test 42"
    settings = Settings(store_path=tmp_path / "enc.duckdb", memory_limit="1GB", threads=1,
                        store_encryption_key=key, store_encryption_unsafe_crypto=True)
    store = Store.open(settings)
    try:
        inside = store.con.cursor()
        inside.execute("BEGIN TRANSACTION")
        inside.execute("SELECT count(*) FROM xrm_meta").fetchall()
        with pytest.raises(StoreError, match="could not be attached again") as caught:
            store.release_index_memory()
        assert key not in str(caught.value) and "restart the server" in str(caught.value)
        assert store.lost and key not in store.lost  # the server stops on it (api/_store_loss.py)
        inside.execute("COMMIT")
    finally:
        store.close()
