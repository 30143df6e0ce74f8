"""The loader's fast paths: batches and transactions, plain INSERT with its fallback, skipped trims."""

from __future__ import annotations

import json
import threading

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import xrm.ingest._load as load_module
from xrm.config import Settings
from xrm.exceptions import InputError
from xrm.ingest import load_file
from xrm.ingest._load import exact_batches, prefetch
from xrm.ingest._padding import padded_columns
from xrm.ingest._readers import Batch
from xrm.store import Store

ROWS = 2_500


def _events(n: int = ROWS) -> pa.Table:
    """Flat events: every 7th an order with two products; row 1700 has no type (rejected); row
    2200 repeats the message_id of row 100 (a duplicate in a later batch)."""
    ids = [f"m{i:05d}" for i in range(1, n + 1)]
    ids[2199] = ids[99]
    kinds = ["track" if i % 7 == 0 else "page" for i in range(1, n + 1)]
    kinds[1699] = None
    products = [{"product_id": "p1", "price": 2.5, "quantity": 2}, {"product_id": "p2", "price": 1}]
    props = [
        json.dumps({"order_id": f"o{i}", "revenue": 6.0, "currency": "EUR", "products": products})
        if i % 7 == 0 else json.dumps({"path": f"/p/{i}"})
        for i in range(1, n + 1)
    ]
    return pa.table({
        "message_id": ids,
        "type": kinds,
        "event": ["Order Completed" if k == "track" else None for k in kinds],
        "user_id": [f"u{i % 50}" for i in range(1, n + 1)],
        "timestamp": [f"2024-05-{1 + i % 28:02d}T12:00:00Z" for i in range(1, n + 1)],
        "properties": props,
    })


@pytest.fixture
def small_batches(monkeypatch, tmp_path):
    """A store whose loads run in batches (and transactions) of 1,000 rows."""
    monkeypatch.setattr(load_module, "ROW_GROUP_ROWS", 1_000)
    settings = Settings(store_path=tmp_path / "b.duckdb", memory_limit="2GB", threads=2, batch_rows=1_000)
    with Store.open(settings) as store:
        yield store


def test_batches_with_a_later_duplicate_and_a_reject_match_a_careful_load(small_batches, tmp_path):
    store = small_batches
    path = tmp_path / "events.csv"
    pcsv.write_csv(_events(), path)
    seen: list[int] = []
    report = load_file(store, path, show_progress=False, progress=lambda p: seen.append(p.rows))
    # Batch 3 holds the duplicate: its plain INSERT fails, it is written again with OR IGNORE.
    assert (report.rows_read, report.rows_loaded, report.rows_duplicate, report.rows_rejected) == (
        ROWS, ROWS - 2, 1, 1
    )
    assert seen[:3] == [1_000, 2_000, 2_500] and seen[-1] == ROWS
    orders = sum(1 for i in range(1, ROWS + 1) if i % 7 == 0 and i not in (1700, 2200))
    assert report.order_lines == 2 * orders
    assert store.count("events") == ROWS - 2 and store.count("order_lines") == 2 * orders
    # The first of the two rows with one id wins, as with INSERT OR IGNORE.
    assert store.sql("SELECT properties->>'path' FROM events WHERE message_id = 'm00100'").fetchall() == [
        ("/p/100",)
    ]
    [(line, field)] = store.sql("SELECT line, field FROM rejected_rows").fetchall()
    assert (line, field) == (1701, "type")  # header is line 1

    # The same events in a Parquet file: every batch conflicts, nothing is added twice.
    again = tmp_path / "events.parquet"
    pq.write_table(_events(), again)
    second = load_file(store, again, show_progress=False)
    assert (second.rows_loaded, second.rows_duplicate, second.rows_rejected) == (0, ROWS - 1, 1)
    assert second.order_lines == 0
    assert store.count("events") == ROWS - 2 and store.count("order_lines") == 2 * orders


def test_records_fall_back_to_insert_or_ignore_on_a_repeated_key(small_batches, tmp_path):
    store = small_batches
    keys = [f"k{i}" for i in range(ROWS)]
    keys[-1] = "k5"
    path = tmp_path / "crm.csv"
    pcsv.write_csv(pa.table({"nr": keys, "name": [f"N{i}" for i in range(ROWS)]}), path)
    mapping = tmp_path / "crm.toml"
    mapping.write_text('kind = "records"\nsource = "crm"\n[columns]\nsource_key = "nr"\nlast_name = "name"\n')
    report = load_file(store, path, mapping, show_progress=False)
    assert (report.rows_loaded, report.rows_duplicate) == (ROWS - 1, 1)
    assert store.sql("SELECT last_name FROM records WHERE record_id = 'crm:k5'").fetchall() == [("N5",)]


def test_padded_values_are_trimmed_like_before(store, tmp_path):
    path = tmp_path / "padded.csv"
    # NBSP, ideographic space and plain spaces around values; the other columns have none.
    path.write_text(
        "message_id,type,user_id,timestamp\n"
        "a1,page,\u00a0u1 ,2024-05-01T12:00:00Z\n"
        "a2, page,\u3000u2,2024-05-01T12:00:00Z\n"
        "a3,page,u3,2024-05-01T12:00:00Z\n",
        encoding="utf-8",
    )
    report = load_file(store, path, show_progress=False)
    assert report.rows_loaded == 3
    assert store.sql("SELECT message_id, type, user_id FROM events ORDER BY 1").fetchall() == [
        ("a1", "page", "u1"), ("a2", "page", "u2"), ("a3", "page", "u3"),
    ]


def test_padded_columns_finds_every_space_separator_at_either_end():
    spaces = [" ", "\u00a0", "\u1680", "\u2000", "\u200a", "\u202f", "\u205f", "\u3000"]
    for sp in spaces:
        table = pa.table({"lead": [sp + "x", None], "trail": ["y" + sp, ""], "clean": ["ä€", None]})
        assert padded_columns(table) == {"lead", "trail"}, repr(sp)
    sliced = pa.table({"t": pa.array(["a ", "b", "c"], pa.large_string())}).slice(1)
    assert padded_columns(sliced) == set()
    assert padded_columns(pa.table({"n": [1, 2], "none": pa.nulls(2)})) == {"n"}


def test_exact_batches_cut_rows_into_equal_slices():
    tables = [pa.table({"__line": list(range(s, s + n))}) for s, n in ((1, 700), (701, 700), (1401, 50))]
    out = list(exact_batches((Batch(t, 0.5) for t in tables), 500))
    assert [b.table.num_rows for b in out] == [500, 500, 450]
    assert [v for b in out for v in b.table["__line"].to_pylist()] == list(range(1, 1451))
    assert out[-1].fraction == 1.0


def test_prefetch_hands_on_a_readers_error_and_stops_a_reader_left_early():
    def failing():
        yield Batch(pa.table({"a": [1]}), 0.5)
        raise InputError("damaged after row 1")

    with pytest.raises(InputError, match="damaged"):
        list(prefetch(failing()))

    closed = threading.Event()

    def endless():
        try:
            while True:
                yield Batch(pa.table({"a": [1]}), 0.0)
        finally:
            closed.set()

    for _ in prefetch(endless()):
        break
    assert closed.wait(5)
