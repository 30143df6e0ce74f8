"""bench/_grow.py: a store's customers copied N times over make a valid larger store, in which a copied
customer's Customer 360 and GDPR export show their own copied rows and nobody else's (the 1M-customer
store of issue 8 is built this way)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb

from xrm.config import Settings
from xrm.store import Store

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._grow import GROWN_TABLES, grow_store  # noqa: E402

TIMES = 3


def _catalog(path: Path) -> tuple[dict[str, int], set[str], set[tuple[str, str]], set[str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {t: int(n) for t, n in con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables()").fetchall()}
        counts = {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]) for t in tables}
        indexes = {str(n) for (n,) in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
        keys = {(str(t), str(k)) for t, k in con.execute(
            "SELECT table_name, constraint_text FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')").fetchall()}
        views = {str(v) for (v,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    finally:
        con.close()
    return counts, indexes, keys, views


def test_grown_store_is_valid_and_each_copy_is_its_own_person(sample_store_file: Path,
                                                              tmp_path: Path) -> None:
    from xrm.interact import export_profile
    from xrm.web._customers import _keys, customer_data

    src = tmp_path / "small.duckdb"
    shutil.copy(sample_store_file, src)  # the fixture's file is shared
    with Store.open(Settings(store_path=src, memory_limit="1GB", threads=2)) as store:
        (offset,), = store.sql("SELECT max(profile_id) + 1 FROM profiles").fetchall()
        (pid,), = store.sql(
            "SELECT min(profile_id) FROM identifiers WHERE id_type = 'user_id' AND "
            "profile_id IN (SELECT profile_id FROM profiles WHERE status = 'active')").fetchall()
        (key,), = store.sql("SELECT min(id_value) FROM identifiers WHERE profile_id = ? "
                            "AND id_type = 'user_id'", [pid]).fetchall()
        store.sql("INSERT INTO consents (customer, channel, purpose, status, source, given_at) "
                  "VALUES (?, 'email', 'marketing', 'granted', 'test', TIMESTAMP '2026-01-01')",
                  [key]).fetchall()
        (seq,), = store.sql("SELECT max(seq) FROM consents").fetchall()
    big = tmp_path / "big.duckdb"
    line = grow_store(src, big, TIMES, memory_limit="1GB")
    assert f"×{TIMES}" in line

    small_counts, small_idx, small_keys, small_views = _catalog(src)
    counts, idx, keys, views = _catalog(big)
    assert (idx, keys, views) == (small_idx, small_keys, small_views)  # indexes, keys, views kept
    for table, n in small_counts.items():  # every customer table ×TIMES, the rest as it was
        assert counts[table] == n * (TIMES if table in GROWN_TABLES else 1), table

    with Store.open(Settings(store_path=big, memory_limit="1GB", threads=2)) as store:
        original = customer_data(store, pid)
        copy = customer_data(store, pid + 2 * offset)
        assert copy["pid"] == pid + 2 * offset

        def moved(value: str) -> str:  # copy 2 of an id: a profile id moves, any other gets "~2"
            return str(int(value) + 2 * offset) if value.isdigit() and int(value) < offset else value + "~2"

        ids = {i["id_value"] for i in original["identifiers"]}
        copied = {i["id_value"] for i in copy["identifiers"]}
        assert copied and copied.isdisjoint(ids)
        assert copied == {moved(v) for v in ids}
        assert len(copy["timeline"]) == len(original["timeline"]) > 0
        assert [i["name"] for i in copy["timeline"]] == [i["name"] for i in original["timeline"]]
        assert [{**v, "customer_id": moved(v["customer_id"])} for v in original["value"]] == copy["value"]
        assert original["value"]
        assert copy["consents"]
        assert [c["customer"] for c in copy["consents"]] == [moved(c["customer"])
                                                             for c in original["consents"]]
        assert _keys(store, pid + 2 * offset) == [moved(k) for k in _keys(store, pid)]
        exported = export_profile(store, _keys(store, pid + 2 * offset)[0])
        before = export_profile(store, _keys(store, pid)[0])
        was = before["identifiers"]
        assert exported["identifiers"] == {
            **{k: sorted(moved(v) for v in values) for k, values in was.items()
               if k not in ("customer", "profile_ids")},
            "customer": moved(was["customer"]), "profile_ids": [p + 2 * offset for p in was["profile_ids"]]}
        assert {t: len(rows) for t, rows in exported["tables"].items()} == \
            {t: len(rows) for t, rows in before["tables"].items()}
        # a new consent gets a number past the copied ones (the sequence was moved on)
        (nxt,), = store.sql("SELECT nextval('consent_seq')").fetchall()
        assert nxt > seq * TIMES
