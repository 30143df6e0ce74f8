"""A first identity run fills its empty output tables bare and keys and indexes them after its
COMMIT (issue 9, task `scale`): the same rows, keys, NOT NULLs and indexes as the keyed INSERT of
a later run, the keys hold afterwards, and a run killed before the keys were built is finished
by the next."""

from __future__ import annotations

import duckdb
import pytest
from tests.identify.test_identify_graph import _family

from xrm.identify import resolve_identities
from xrm.identify._bulk_write import PENDING, build_keys, fill_empty
from xrm.store import Store

OUTPUTS = ("event_profiles", "identifiers", "profile_records", "profile_evidence", "identity_links",
           "rejected_identifiers")


def _shape(store: Store) -> list[tuple[object, ...]]:
    """Every constraint (key, NOT NULL) and index of the outputs, and each column's default."""
    names = "(" + ", ".join(f"'{t}'" for t in OUTPUTS) + ")"
    cons = store.sql(
        f"SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
        f"WHERE table_name IN {names} ORDER BY ALL").fetchall()
    idx = store.sql(f"SELECT table_name, index_name, expressions, is_unique FROM duckdb_indexes() "
                    f"WHERE table_name IN {names} ORDER BY ALL").fetchall()
    cols = store.sql(f"SELECT table_name, column_name, data_type, column_default, is_nullable "
                     f"FROM duckdb_columns() WHERE table_name IN {names} ORDER BY ALL").fetchall()
    return [*cons, *idx, *cols]


def _rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    # A probabilistic link's ts is its run's time.
    links = ("SELECT * EXCLUDE (run_id, ts), CASE WHEN occurrence LIKE 'linkage:%' THEN NULL ELSE ts END "
             "FROM identity_links ORDER BY ALL")
    return {t: store.sql(links if t == "identity_links" else f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in OUTPUTS}


def test_first_run_outputs_keep_their_keys_indexes_and_rows(store, seed):
    before = _shape(store)
    seed.event("bad", "2024-01-05", "identify", anonymous_id="c9", traits={"email": "not-an-email"})
    _family(seed)
    resolve_identities(store)  # empty outputs: filled bare, keyed after
    first = _rows(store)
    assert all(first[t] for t in OUTPUTS), {t: len(r) for t, r in first.items()}
    assert _shape(store) == before and PENDING not in store.tables()
    with pytest.raises(duckdb.ConstraintException):
        store.sql("INSERT INTO event_profiles VALUES ('e1', 1)")
    with pytest.raises(duckdb.ConstraintException):
        store.sql("INSERT INTO identifiers (id_type, id_value, profile_id) VALUES ('user_id', 'U1', 1)")
    # A second run takes the keyed, changed-rows-only path: the same rows.
    resolve_identities(store)
    assert _rows(store) == first and _shape(store) == before
    # customer_events (a view over event_profiles) still reads the re-created table.
    (n,), = store.sql("SELECT count(*) FROM customer_events").fetchall()
    assert n == len(first["event_profiles"])


def test_fill_empty_leaves_a_filled_table_to_the_caller(store):
    store.sql("CREATE TABLE src AS SELECT 'm' || i AS message_id, i AS profile_id FROM range(3) r(i)")
    cur = store.con.cursor()
    assert fill_empty(cur, "event_profiles", "message_id, profile_id", "src")
    assert not fill_empty(cur, "event_profiles", "message_id, profile_id", "src")  # has rows now
    assert store.count("event_profiles") == 3


def test_fill_empty_keeps_the_insert_for_a_constraint_it_does_not_rebuild(store):
    store.sql("CREATE TABLE t_unique (k VARCHAR UNIQUE, v INTEGER NOT NULL)")
    store.sql("CREATE TABLE src AS SELECT 'a' AS k, 1 AS v")
    cur = store.con.cursor()
    assert fill_empty(cur, "t_unique", "k, v", "src")
    with pytest.raises(duckdb.ConstraintException):
        store.sql("INSERT INTO t_unique VALUES ('a', 2)")


def test_keys_left_by_a_killed_run_are_built_by_the_next(store, seed):
    before = _shape(store)
    _family(seed)
    store.sql("CREATE TABLE ep_src AS SELECT 'e1' AS message_id, 1 AS profile_id")
    with store.transaction() as cur:  # a run that committed its rows and died before build_keys
        assert fill_empty(cur, "event_profiles", "message_id, profile_id", "ep_src")
    assert _shape(store) != before and PENDING in store.tables()
    resolve_identities(store)  # event_profiles holds a row: the keyed path, after the keys
    assert _shape(store) == before and PENDING not in store.tables()
    assert seed.event_profile("e1") == seed.profile_of("web:1")
    assert build_keys(store) == 0
