"""The linkage at scale: Splink runs inside the store's own DuckDB instance, under its one
memory_limit, and leaves nothing behind (no attached scratch database, no Splink table in the
store file, the memory limit as it was), also when it fails."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from tests.identify.test_identify_linkage import _hans

from xrm.config import Settings
from xrm.identify import IdentityRules, link_records, resolve_identities
from xrm.store import Store


def _databases(store: Store) -> set[str]:
    rows = store.sql("SELECT database_name FROM duckdb_databases() WHERE NOT internal").fetchall()
    return {r[0] for r in rows}


def _limit(store: Store) -> str:
    return str(store.sql("SELECT current_setting('memory_limit')").fetchall()[0][0])


def test_linkage_leaves_no_scratch_behind(store: Store, seed: Any) -> None:
    _hans(seed)
    before, limit = _databases(store), _limit(store)
    rules = IdentityRules.from_mapping({"linkage": {"memory_limit": "512MB"}})
    summary = resolve_identities(store, rules)
    assert summary["probabilistic_links"] == 1 and summary["linkage"]["pairs"] == 1
    assert seed.profile_of("crm:1") == seed.profile_of("loyalty:1")
    assert _databases(store) == before and _limit(store) == limit
    tables = {r[0] for r in store.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not [t for t in tables if "splink" in t or t == "input_records"]
    (weights,), = store.sql("SELECT CAST(weights AS VARCHAR) FROM linkage_pairs").fetchall()
    assert '"first_name":' in weights and '"address":' in weights


def test_a_failed_linkage_restores_the_store(store: Store, seed: Any) -> None:
    """A memory limit Splink cannot work in: DuckDB's own error, and the store as it was."""
    _hans(seed)
    resolve_identities(store, IdentityRules.from_mapping({"linkage": {"enabled": False}}))
    before, limit = _databases(store), _limit(store)
    with pytest.raises(duckdb.OutOfMemoryException):
        link_records(store, IdentityRules.from_mapping({"linkage": {"memory_limit": "1KB"}}))
    assert _databases(store) == before and _limit(store) == limit
    assert store.count("linkage_pairs") == 0
    assert link_records(store)["pairs"] == 1  # and the next run works


def test_linkage_on_an_encrypted_store(settings: Settings) -> None:
    enc = settings.model_copy(update={"store_encryption_key": "k" * 24,
                                      "store_encryption_unsafe_crypto": True})
    with Store.open(enc) as store:
        from tests.identify.conftest import Seed

        seed = Seed(store)
        _hans(seed)
        before = _databases(store)
        summary = resolve_identities(store)
        assert summary["probabilistic_links"] == 1
        assert seed.profile_of("crm:1") == seed.profile_of("loyalty:1")
        assert _databases(store) == before


def test_score_clusters_counts_pairs_and_exact_clusters() -> None:
    """Persons A={1,2,3}, B={4,5}, C={6}; profiles X={1,2}, Y={3,4,5}, Z={6}: by hand, 2 of 4
    predicted pairs are true (X's 1-2, Y's 4-5) and 2 of 4 true pairs found; only Z is exact."""
    from xrm.identify import score_clusters

    con = duckdb.connect()
    con.execute("CREATE TABLE truth AS SELECT * FROM (VALUES ('r1', 'A'), ('r2', 'A'), ('r3', 'A'), "
                "('r4', 'B'), ('r5', 'B'), ('r6', 'C')) v(record_id, person_id)")
    con.execute("CREATE TABLE pred AS SELECT * FROM (VALUES ('r1', 1), ('r2', 1), ('r3', 2), ('r4', 2), "
                "('r5', 2), ('r6', 3), ('r7', 3)) v(record_id, cluster)")  # r7: not in the truth
    s = score_clusters(con, "pred", "truth")
    assert (s["records"], s["persons"], s["profiles"]) == (6, 3, 3)
    assert (s["true_pairs"], s["predicted_pairs"]) == (4, 4)
    assert s["pairwise_precision"] == s["pairwise_recall"] == 0.5
    assert s["cluster_precision"] == s["cluster_recall"] == round(1 / 3, 4)
    assert (s["over_merged_profiles"], s["under_merged_persons"]) == (1, 1)
    assert [r for r in con.execute("SHOW ALL TABLES").fetchall() if "score" in r[2]] == []


def test_score_clusters_is_fast_at_100k_records() -> None:
    """One statement of CTEs took minutes here and filled the disk with spill files (DuckDB 2.0)."""
    import time

    from xrm.identify import score_clusters

    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
    con.execute("CREATE TABLE t AS SELECT 'r' || i AS record_id, i // 2 AS person_id FROM range(100000) r(i)")
    con.execute("CREATE TABLE p AS SELECT 'r' || i AS record_id, (i // 2) * 7 % 60000 AS cluster "
                "FROM range(100000) r(i)")
    start = time.perf_counter()
    s = score_clusters(con, "p", "t")
    assert s["cluster_f1"] == s["pairwise_f1"] == 1.0 and s["profiles"] == 50_000
    assert time.perf_counter() - start < 30
