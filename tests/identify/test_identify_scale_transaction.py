"""Issue 9: the identities graph is built outside the run's transaction (DuckDB keeps every temp
table a transaction created or dropped until its COMMIT), the writes stay all-or-nothing, and the
compiled clustering's key-pair table starts small and grows without changing a decision."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import xrm.identify._resolve as resolve_mod
from xrm.identify import IdentityRules, _probabilistic, load_sample_records, resolve_identities
from xrm.identify import _cluster_kernels as ck
from xrm.identify._resolve import resolve_graph
from xrm.sample import generate_sample

# The graph's inputs the write does not need: freed before the transaction begins.
_BUILD_TABLES = {"occs", "ev_sig", "ev_sig_raw", "raw_ids", "ids_checked", "occ_ids", "occ_nodes",
                 "occ_anchor", "evidence", "edges", "bad_nodes", "prob_pairs", "prob_outcome", "prob_links",
                 "phone_pairs", "phone_fast", "phone_map", "prob_gender", "prob_keys"}


def _outputs(store: Any) -> dict[str, list[Any]]:
    q = {
        "profiles": "SELECT profile_id, status, merged_into, n_records, n_identifiers FROM profiles",
        "identifiers": "SELECT * FROM identifiers",
        "profile_records": "SELECT * FROM profile_records",
        "event_profiles": "SELECT * FROM event_profiles",
        "profile_evidence": "SELECT * FROM profile_evidence",
        "golden_records": "SELECT * FROM golden_records",
        "linkage_pairs": "SELECT * FROM linkage_pairs",
        "review_queue": "SELECT * EXCLUDE (queued_at) FROM review_queue",
        "identity_runs": "SELECT run_id, kind FROM identity_runs",
        "merge_log": "SELECT run_id, action, profile_id, other_profile_id FROM merge_log",
    }
    return {k: store.sql(f"{sql} ORDER BY ALL").fetchall() for k, sql in q.items()}


def _family(seed: Any) -> None:
    seed.record("web:1", first_name="Anna", last_name="Schmidt", email="anna@example.org", user_id="U1")
    seed.record("crm:1", first_name="Anna", last_name="Schmitt", email="anna@example.org",
                birth_date="1980-02-03")
    seed.record("web:2", first_name="Ben", last_name="Schmidt", user_id="U2")
    seed.event("e1", "2024-01-01", "identify", user_id="U1", anonymous_id="tablet")
    seed.event("e2", "2024-01-02", "identify", user_id="U2", anonymous_id="tablet")
    seed.event("e3", "2024-01-03", "track", anonymous_id="phone-1", traits={"email": "anna@example.org"})


def test_the_graph_is_built_before_the_transaction_and_freed(store, seed, monkeypatch):
    _family(seed)
    write_run = resolve_mod._write_run
    seen: list[Any] = []

    def spy(cur: Any, *args: Any, **kwargs: Any) -> Any:
        temp = {r[0] for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
        seen.append(temp)
        out = write_run(cur, *args, **kwargs)
        # the writes are one transaction, not yet committed: another cursor sees no run yet
        other = store.con.cursor()
        assert other.execute("SELECT count(*) FROM identity_runs").fetchall() == [(0,)]
        assert cur.execute("SELECT count(*) FROM identity_runs").fetchall() == [(1,)]
        other.close()
        return out

    monkeypatch.setattr(resolve_mod, "_write_run", spy)
    summary = resolve_identities(store)
    (temp,) = seen
    assert not temp & _BUILD_TABLES, temp & _BUILD_TABLES
    assert {"nodes", "assign", "run_links", "sig_node", "evidence_node"} <= temp
    assert summary["links_dropped"] >= 1  # the rule pass ran (one tablet, two user ids)
    assert seed.event_profile("e1") == seed.profile_of("web:1")


def test_a_run_that_fails_in_its_writes_leaves_no_trace(store, seed, monkeypatch):
    _family(seed)
    resolve_identities(store)
    seed.record("web:3", first_name="Anna", last_name="Schmidt", email="anna@example.org", user_id="U3")
    seed.event("e4", "2024-01-04", "identify", user_id="U3", anonymous_id="phone-2")
    before = _outputs(store)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(resolve_mod, "build_golden_records", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        resolve_identities(store)
    assert _outputs(store) == before
    monkeypatch.undo()
    resolve_identities(store)  # and the next run goes through
    assert seed.profile_of("web:3") == seed.event_profile("e4")


def test_a_small_key_pair_table_grows_to_the_same_decisions(store, tmp_path, monkeypatch):
    generate_sample(tmp_path / "sample", customers=300, seed=7, show_progress=False)
    load_sample_records(store, tmp_path / "sample")
    rules = IdentityRules.for_settings(store.settings)
    resolve_identities(store, rules)
    first = _outputs(store)
    grown: list[int] = []

    def tiny(expected: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # 64 slots at first (whatever the pairs), then twice the size at each growth
        size = 2 * expected if grown else 64
        grown.append(size)
        return (np.full(size, -1, dtype=np.int64), np.full(size, ck.UNKNOWN, dtype=np.int32),
                np.full(size, ck.UNKNOWN, dtype=np.int8))

    monkeypatch.setattr(ck, "new_table", tiny)
    assert _probabilistic.COMPILED
    resolve_graph(store, rules)
    assert len(grown) > 3  # it started small and grew
    second = _outputs(store)
    for name in ("profiles", "identifiers", "profile_records", "linkage_pairs", "review_queue",
                 "golden_records"):
        assert first[name] == second[name], name
