"""The store's memory under a long-running writer (issue 10), on the real DuckDB.

The server's event dedup keys are primary-key (ART) indexes that grow with every event. DuckDB 1.x
kept ART nodes in memory whatever ``memory_limit`` said (session 4: writes failed under a small
limit); since DuckDB 2.0 a checkpoint writes the index out and frees it, and later inserts load only
the nodes they need, so for inserts ``memory_limit`` bounds the store's memory however many events it
holds. Not when a SELECT looks keys up between the inserts (the event writer's retry check): then
the nodes stay after checkpoints and writes fail at the limit (docs/api.md, session 8)."""

from __future__ import annotations

import duckdb
import pytest

from xrm.config import Settings
from xrm.store import Migration, Schema, Store

_KEYS = Schema("memtest", (Migration(1, "keys", "CREATE TABLE keys (k VARCHAR PRIMARY KEY, v VARCHAR)"),))


def _duckdb_mb(store: Store) -> float:
    row = store.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0]
    return float(row[0] or 0) / 2**20


def test_a_primary_key_index_larger_than_memory_limit_is_written_and_evicted(tmp_path) -> None:
    path = tmp_path / "keys.duckdb"
    with Store.open(Settings(store_path=path, memory_limit="1GB", threads=1), schemas=(_KEYS,)) as s:
        s.sql("INSERT INTO keys SELECT 'key-' || i, 'v' FROM range(1000000) t(i)")
        s.sql("CHECKPOINT")
    assert path.stat().st_size > 32 * 2**20  # the keys and their index: twice the limit below
    with Store.open(Settings(store_path=path, memory_limit="16MB", threads=1), schemas=(_KEYS,)) as s:
        for n in range(200):  # the server's pattern: small commits, a checkpoint now and then
            with s.transaction() as tx:
                tx.execute(f"INSERT INTO keys SELECT 'new-{n}-' || i, 'v' FROM range(50) t(i)")
            if n % 50 == 49:
                s.sql("CHECKPOINT")
                assert _duckdb_mb(s) <= 16
        assert s.count("keys") == 1_000_000 + 200 * 50
        with pytest.raises(duckdb.ConstraintException):  # still enforced against evicted keys
            s.sql("INSERT INTO keys VALUES ('key-5', 'again')")
