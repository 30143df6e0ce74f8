"""Customer 360 and the search read one customer's rows by index look-ups, never by reading a table
that grows with the store (issue 8: Customer 360 under 300 ms on a 1M-customer store).

Every SELECT the page runs is run once more under DuckDB's profiler, and the plan's table scans
are checked: a per-person table read as a "Sequential Scan" is a read of the whole table."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from threading import Lock
from typing import Any

import pytest
from tests.plans import table_scans

from xrm.config import Settings
from xrm.store import Store

# Tables with rows per person (they grow with the store); merge_log, needs_segments and the like
# hold a few rows whatever the store's size. DuckDB reads a table of a few hundred rows whole even
# where an index would serve: a scan counts when the table holds at least BIG rows.
PER_PERSON = frozenset({
    "events", "event_profiles", "order_lines", "identifiers", "profile_evidence", "identity_links",
    "consents", "recommendations", "profile_records", "normalized_records", "records", "golden_records",
    "customer_value", "customer_needs", "purchase_summaries", "relationships", "network_traits",
    "parties", "profiles",
})
BIG = 2_000


class _Cursor:
    def __init__(self, cur: Any, spy: _Spy) -> None:
        self._cur, self._spy = cur, spy

    def execute(self, sql: str, params: Any = None) -> Any:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            scans = table_scans(self._cur, sql, params, self._spy.tmp / f"{uuid.uuid4().hex}.json")
            with self._spy.lock:
                self._spy.log.append((" ".join(sql.split())[:120], scans))
        return self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class _Con:
    def __init__(self, spy: _Spy) -> None:
        self._spy = spy

    def cursor(self) -> _Cursor:
        return _Cursor(self._spy.store.con.cursor(), self._spy)


class _Spy:
    """The store as the console uses it, with every query's plan recorded."""

    def __init__(self, store: Store, tmp: Path) -> None:
        self.store, self.tmp, self.settings = store, tmp, store.settings
        self.log: list[tuple[str, list[tuple[str, str]]]] = []
        self.lock = Lock()
        self.con = _Con(self)

    def sql(self, query: str, params: Any = None) -> Any:
        return self.con.cursor().execute(query, params)

    # The store's own block, run on the spying connection (it needs only ``self.con.cursor()``).
    transaction = Store.transaction

    def full_scans(self, allowed: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        big = {t for t in PER_PERSON - allowed if self.store.count(t) >= BIG}
        return [(sql, table) for sql, scans in self.log for table, kind in scans
                if table in big and kind != "Index Scan"]


@pytest.fixture
def spy(sample_store_file: Path, tmp_path: Path) -> Iterator[_Spy]:
    path = tmp_path / "sample.duckdb"
    shutil.copy(sample_store_file, path)
    with Store.open(Settings(store_path=path, memory_limit="1GB", threads=2)) as store:
        # other customers' consents, so that a read of the whole table would show
        store.sql("INSERT INTO consents (customer, channel, purpose, status, source, given_at, "
                  "event_message_id) SELECT 'other' || i, 'email', 'marketing', 'granted', 'test', "
                  "TIMESTAMP '2026-01-01', 'other' || i FROM range(5000) r(i)").fetchall()
        yield _Spy(store, tmp_path)


def _people(store: Store) -> list[int]:
    """Active profiles: with and without recommendations, with consents, with the most identifiers."""
    picks = store.sql("""
        WITH p AS (SELECT profile_id FROM profiles WHERE status = 'active'),
        k AS (SELECT i.profile_id, count(*) AS n, bool_or(c.customer IS NOT NULL) AS consent,
                     bool_or(r.customer IS NOT NULL) AS recs
              FROM identifiers i JOIN p USING (profile_id)
              LEFT JOIN (SELECT DISTINCT customer FROM consents) c ON c.customer = i.id_value
              LEFT JOIN (SELECT DISTINCT customer FROM recommendations) r
                ON r.customer = i.id_value OR r.customer = CAST(i.profile_id AS VARCHAR)
              GROUP BY 1)
        SELECT (SELECT min(profile_id) FROM k WHERE recs), (SELECT min(profile_id) FROM k WHERE NOT recs),
               (SELECT min(profile_id) FROM k WHERE consent), (SELECT arg_max(profile_id, n) FROM k)
    """).fetchall()[0]
    return sorted({int(p) for p in picks if p is not None})


def test_customer_360_reads_one_customer_by_index(spy: _Spy) -> None:
    from xrm.web._customers import _recommendations, customer_data

    people = _people(spy.store)
    assert len(people) >= 3
    _recommendations(spy.store, ["nobody"])  # the popular products: read once a minute at most
    for pid in people:
        data = customer_data(spy, pid)  # type: ignore[arg-type]
        assert data["pid"] == pid and data["identifiers"] and data["timeline"]
    read = {table for _, scans in spy.log for table, _ in scans}
    assert {"events", "identifiers", "identity_links", "consents", "recommendations", "customer_value",
            "golden_records", "profile_records", "normalized_records"} <= read
    assert not spy.full_scans(), "\n".join(f"{t}: {sql}" for sql, t in spy.full_scans())


def test_search_by_identifier_reads_by_index(spy: _Spy) -> None:
    from xrm.web._customers import find_customers

    email, user = spy.store.sql(
        "SELECT n.email, i.id_value FROM normalized_records n JOIN profile_records r USING (record_id) "
        "JOIN identifiers i ON i.profile_id = r.profile_id AND i.id_type = 'user_id' "
        "WHERE n.email IS NOT NULL ORDER BY n.record_id LIMIT 1").fetchall()[0]
    for q in (email, user):
        hits = find_customers(spy, q)  # type: ignore[arg-type]
        assert hits and hits[0]["matched_by"] in ("email", "user_id")
    assert not spy.full_scans(), "\n".join(f"{t}: {sql}" for sql, t in spy.full_scans())
    spy.log.clear()
    last = spy.store.sql("SELECT last_name FROM normalized_records WHERE last_name IS NOT NULL "
                         "ORDER BY record_id LIMIT 1").fetchall()[0][0]
    assert any(h["last_name"] == last for h in find_customers(spy, last[:4]))  # type: ignore[arg-type]
    # a name by prefix: one pass over the name keys (no index serves a prefix), the rest by index
    assert not spy.full_scans(frozenset({"normalized_records"}))


def test_popular_products_are_read_again_when_they_change(spy: _Spy) -> None:
    from xrm.customize import recommend_for
    from xrm.web._customers import _recommendations

    store = spy.store
    nobody = ["no-such-customer"]
    first = _recommendations(store, nobody)
    assert first == recommend_for(store, nobody[0], k=5)
    top = first[0]["product_id"]
    # the most popular product loses its buyers: the cached list is read again (the row count moved)
    store.sql("DELETE FROM purchase_cycles WHERE product_id = ?", [top]).fetchall()
    again = _recommendations(store, nobody)
    assert again == recommend_for(store, nobody[0], k=5)
    assert top not in [r["product_id"] for r in again]
    # a customer with recommendations gets recommend_for's own, in rank order
    (key,), = store.sql("SELECT min(customer) FROM recommendations").fetchall()
    assert _recommendations(store, ["x", key], k=3) == recommend_for(store, key, k=3)


def test_stale_popular_products_are_shown_while_a_worker_reads_them_again(spy: _Spy) -> None:
    """A list older than a minute is shown at once (no page waits a second for the read at 1M
    customers) and read again in the background; the next page gets the new list."""
    import time

    from xrm.web import _customers as c

    store = spy.store
    nobody = ["no-such-customer"]
    fresh = c._recommendations(store, nobody)
    where = (str(store.settings.store_path), 5)
    t, n, _ = c._POPULAR[where]
    c._POPULAR[where] = (t - c._POPULAR_TTL_S - 1, n, [{"product_id": "stale"}])
    assert c._recommendations(store, nobody) == [{"product_id": "stale"}]
    deadline = time.monotonic() + 30
    while where in c._POPULAR_REFRESHING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c._recommendations(store, nobody) == fresh
    assert time.monotonic() - c._POPULAR[where][0] < c._POPULAR_TTL_S


def test_gdpr_export_reads_each_table_once_by_index(spy: _Spy) -> None:
    """The console's export of a profile with two customer keys: every table is read once for both
    (the keys lead to the same identifiers), each by index; the result is each key's own export."""
    from xrm.interact import export_profile, export_profiles

    (pid,), = spy.store.sql("SELECT profile_id FROM identifiers WHERE id_type = 'user_id' "
                            "GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1").fetchall()
    keys = [k for (k,) in spy.store.sql("SELECT id_value FROM identifiers WHERE profile_id = ? "
                                        "AND id_type = 'user_id' ORDER BY 1", [pid]).fetchall()]
    got = export_profiles(spy, keys)  # type: ignore[arg-type]
    reads = [sql.split('"')[1] for sql, _ in spy.log if sql.startswith('SELECT * FROM "')]
    assert {"identifiers", "consents", "customer_value", "purchase_cycles"} <= set(reads)
    # the events: whole rows as the search for the person's ids reads them (by user id, anonymous id)
    assert any(sql.startswith("SELECT * FROM events WHERE user_id IN") for sql, _ in spy.log)
    assert sorted(reads) == sorted(set(reads)), "a table was read once per key"
    # per-person tables, and those the new indexes serve (customize 5, differentiate 6, identify 6)
    # (profiles is read by merged_into too: no index there, a short column of one row per profile)
    tables = PER_PERSON - {"profiles"} | {"purchase_cycles", "customer_value_history", "review_queue"}
    scans = [(sql, t) for sql, found in spy.log for t, kind in found
             if t in tables and kind != "Index Scan" and spy.store.count(t) >= BIG // 4]
    assert not scans, "\n".join(f"{t}: {sql}" for sql, t in scans)
    for key in keys:
        alone = export_profile(spy.store, key)
        assert {**got[key], "exported_at": None} == {**alone, "exported_at": None}


def test_popular_products_are_read_at_server_start_not_in_a_page(spy: _Spy) -> None:
    """``warm_console`` (the server's start) reads the most popular products in a worker; the first
    page of a customer without recommendations then shows them without reading purchase_cycles whole
    (the log keeps the first 120 characters of a statement: the popular read's are its count)."""
    from xrm.customize import recommend_for
    from xrm.web import _customers as c

    where = (str(spy.store.settings.store_path), 5)
    c._POPULAR.pop(where, None)
    c._POPULAR_FIRST.pop(where, None)
    c.warm_console(spy.store).result(timeout=60)
    spy.log.clear()
    shown = c._recommendations(spy, ["no-such-customer"])  # type: ignore[arg-type]
    assert shown == recommend_for(spy.store, "no-such-customer", k=5) and shown
    assert not [sql for sql, _ in spy.log if "count(DISTINCT customer)" in sql], spy.log
    # without the warm-up the page reads them itself (what the test above would catch)
    c._POPULAR.pop(where, None)
    c._POPULAR_FIRST.pop(where, None)
    assert c._recommendations(spy, ["no-such-customer"]) == shown  # type: ignore[arg-type]
    assert [sql for sql, _ in spy.log if "count(DISTINCT customer)" in sql]
