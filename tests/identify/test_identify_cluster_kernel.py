"""The compiled clustering (``_cluster_kernels``) makes the Python loop's decisions: same links,
refusals with the same reasons, same review queue, same profiles, on a sample with households,
glued records and e-mail-name picks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xrm.identify import IdentityRules, _probabilistic, load_sample_records, resolve_identities
from xrm.identify import _cluster_kernels as ck
from xrm.identify._resolve import resolve_graph
from xrm.sample import generate_sample


def _decisions(store: Any) -> tuple[list[Any], ...]:
    pairs = store.sql("SELECT record_a, record_b, status, reason FROM linkage_pairs ORDER BY ALL").fetchall()
    review = store.sql("SELECT record_a, record_b, status FROM review_queue ORDER BY ALL").fetchall()
    profiles = store.sql(
        "SELECT record_id, min(record_id) OVER (PARTITION BY profile_id) FROM profile_records ORDER BY 1"
    ).fetchall()
    links = store.sql(
        "SELECT value_a, value_b, status, occurrence, reason FROM identity_links "
        "WHERE occurrence LIKE 'linkage:%' AND run_id = (SELECT max(run_id) FROM identity_runs) ORDER BY ALL"
    ).fetchall()
    return pairs, review, profiles, links


def test_compiled_clustering_decides_as_the_python_loop(store, tmp_path, monkeypatch):
    generate_sample(tmp_path / "sample", customers=600, seed=5, show_progress=False)
    load_sample_records(store, tmp_path / "sample")
    rules = IdentityRules.for_settings(store.settings)
    compiled = resolve_identities(store, rules)
    fast = _decisions(store)
    monkeypatch.setattr(_probabilistic, "COMPILED", False)
    python = resolve_graph(store, rules)
    slow = _decisions(store)
    statuses = {p[2] for p in fast[0]}
    assert {"linked", "refused"} <= statuses  # the sample exercises joins and refusals
    assert any("cannot-link" in (p[3] or "") for p in fast[0])
    for name, a, b in zip(("pairs", "review", "profiles", "links"), fast, slow, strict=True):
        assert a == b, name
    for key in ("probabilistic_links", "probabilistic_refused", "review_pending", "email_name_links",
                "email_name_refused", "profiles"):
        assert compiled[key] == python[key], key


def test_the_key_pair_table_keeps_its_answers_when_it_grows():
    table = ck.new_table(4)
    codes = np.arange(0, 3000, 3, dtype=np.int64) * 1_000_003
    for i, c in enumerate(codes.tolist()):  # what _ask does: claim a slot, then fill it
        s = ck._slot(table[0], np.int64(c))
        table[0][s] = c
        if i * 2 > len(table[0]) // 2:
            table = ck.grow(table)
    ck.fill(table[0], table[1], codes, (np.arange(len(codes)) % 7 - 1).astype(np.int32))
    table = ck.grow(table)
    got = np.array([table[1][ck._slot(table[0], np.int64(c))] for c in codes.tolist()])
    assert (got == np.arange(len(codes)) % 7 - 1).all()
    assert (table[0] != -1).sum() == len(codes)


@pytest.mark.parametrize("mode", [ck.JOIN, ck.CHECKED])
def test_a_union_keeps_the_bigger_sides_keys_first(mode):
    """Labels 0 (two records, keys 5 and 6) and 1 (one record, keys 6 and 7 after glue): the
    union's root is 0 and its keys run 5, 6, 7, each with its first record, as the dicts did."""
    parent = np.arange(2, dtype=np.int64)
    nrec, nnamed = np.array([2, 1], dtype=np.int64), np.zeros(2, dtype=np.int64)
    ekey = np.array([5, 6, 6, 7], dtype=np.int64)
    enode = np.array([10, 11, 12, 13], dtype=np.int64)
    enext = np.array([1, -1, 3, -1], dtype=np.int64)
    head, tail = np.array([0, 2], dtype=np.int64), np.array([1, 3], dtype=np.int64)
    table = ck.new_table(16)
    table[1][:] = -1  # no conflicts anywhere: every slot answered "none"
    for i, c in enumerate((5 * 8 + 6, 5 * 8 + 7, 6 * 8 + 6, 6 * 8 + 7)):
        table[0][ck._slot(table[0], np.int64(c))] = c
        del i
    req, state = np.empty((2, 16), dtype=np.int64), np.zeros(4, dtype=np.int64)
    code, why = np.zeros(1, dtype=np.int8), np.full((1, 3), -1, dtype=np.int64)
    done = ck.run_pairs(mode, np.array([0]), np.array([1]), 0, 10, 8, code, why, parent, nrec, nnamed, head,
                        tail, enext, ekey, enode, *table, req, state)
    assert done == 1 and code[0] == 0 and parent.tolist() == [0, 0] and nrec[0] == 3
    keys, e = [], head[0]
    while e != -1:
        keys.append((int(ekey[e]), int(enode[e])))
        e = enext[e]
    assert keys == [(5, 10), (6, 11), (7, 13)]
