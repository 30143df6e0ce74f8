"""What a DuckDB error means for the store's owner (xrm.store._faults), on real DuckDB errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from xrm.store import Store
from xrm.store._faults import memory_advice, store_fault


def _raised(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Error:
    with pytest.raises(duckdb.Error) as caught:
        con.execute(sql).fetchall()
    return caught.value


def test_out_of_memory_and_other_errors(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "f.duckdb"), config={"memory_limit": "8MB", "threads": "1"})
    con.execute("CREATE TABLE t (k VARCHAR PRIMARY KEY)")
    con.execute("SET preserve_insertion_order = false")
    oom = _raised(con, "SELECT k, count(*) FROM (SELECT md5(range::VARCHAR) AS k FROM range(3000000)) "
                       "GROUP BY k")
    assert store_fault(oom) == "memory"
    con.execute("INSERT INTO t VALUES ('a')")
    assert store_fault(_raised(con, "INSERT INTO t VALUES ('a')")) is None  # the caller's own error
    try:  # DuckDB's words inside another error (a failed commit quotes the buffer manager)
        raise RuntimeError("commit failed") from oom
    except RuntimeError as wrapped:
        assert store_fault(wrapped) == "memory"
    assert "raise memory_limit" in memory_advice("8MB") and "8MB" in memory_advice("8MB")


def test_a_fatal_error_loses_the_store_once_and_tells_its_listeners(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "xrm.duckdb")
    heard: list[str] = []
    store.when_lost(heard.append)
    store.sql("CREATE TABLE t AS SELECT 1 AS i").fetchall()
    store.sql("SET debug_checkpoint_abort = 'before_header'").fetchall()
    fatal = _raised(store.con, "CHECKPOINT")
    assert isinstance(fatal, duckdb.FatalException)
    assert store.note_fault(fatal) == "lost" and store.lost and heard == [store.lost]
    after = _raised(store.con, "SELECT * FROM t")  # every statement fails now ("invalidated")
    assert store.note_fault(after) == "lost" and len(heard) == 1
    store.close()  # closing a lost store is quiet (the server's shutdown relies on it)
