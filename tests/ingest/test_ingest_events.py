from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xrm.exceptions import MappingError
from xrm.ingest import load_file

ORDER = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u1",
    "messageId": "m-order",
    "timestamp": "2024-05-01T12:05:00+02:00",
    "context": {"ip": "10.0.0.1"},
    "properties": {
        "order_id": "o1",
        "total": 27.5,
        "currency": "eur",
        "products": [
            {"product_id": "p1", "sku": "S1", "name": "Cat food", "category": "food", "price": 12.75,
             "quantity": 2},
            {"product_id": 7, "price": "2.00"},
        ],
    },
}
IDENTIFY = {
    "type": "identify",
    "userId": "u1",
    "messageId": "m-id",
    "timestamp": "2024-05-01T10:00:00Z",
    "traits": {"email": "a@example.de"},
}


def _jsonl(path, *events):
    path.write_text(
        "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events), encoding="utf-8"
    )
    return path


def test_segment_jsonl_with_order_completed_and_products(store, tmp_path):
    path = _jsonl(tmp_path / "events.jsonl", IDENTIFY, ORDER, {**IDENTIFY, "messageId": None, "type": "page",
                                                                "name": "Home", "traits": None})
    report = load_file(store, path, show_progress=False)
    assert (report.kind, report.rows_read, report.rows_loaded, report.rows_rejected) == ("events", 3, 3, 0)
    assert report.order_lines == 2
    row = store.sql(
        "SELECT type, event, user_id, ts, order_id, revenue, currency, source, context->>'ip' "
        "FROM events WHERE message_id = 'm-order'"
    ).fetchall()
    # +02:00 becomes UTC; 'total' stands in for revenue; currency upper-cased; source = file name.
    assert row == [("track", "Order Completed", "u1", dt.datetime(2024, 5, 1, 10, 5), "o1", 27.5, "EUR",
                    "events.jsonl", "10.0.0.1")]
    lines = store.sql(
        "SELECT line_no, order_id, product_id, sku, name, category, price, quantity FROM order_lines "
        "ORDER BY line_no"
    ).fetchall()
    assert lines == [
        (1, "o1", "p1", "S1", "Cat food", "food", 12.75, 2.0),
        (2, "o1", "7", None, None, None, 2.0, 1.0),  # quantity defaults to 1
    ]
    assert store.sql("SELECT traits->>'email' FROM events WHERE message_id = 'm-id'").fetchall() == [
        ("a@example.de",)
    ]
    derived = store.sql("SELECT message_id FROM events WHERE type = 'page'").fetchall()[0][0]
    assert derived.startswith("xrm-") and any("derived" in n for n in report.notes)


BAD_EVENTS = [
    ("not json at all", "(line)", "is not valid JSON"),
    ('["an", "array"]', "(line)", "is JSON but not an object"),
    ({**IDENTIFY, "type": None}, "type", "type is missing"),
    ({**IDENTIFY, "type": "purchase"}, "type", "type 'purchase' is not a Segment call type"),
    ({**IDENTIFY, "timestamp": None}, "timestamp", "timestamp is missing"),
    ({**IDENTIFY, "timestamp": "last tuesday"}, "timestamp", "timestamp 'last tuesday' is not a time"),
    ({"type": "track", "userId": "u", "messageId": "t", "timestamp": "2024-01-01"}, "event",
     "a track call needs event"),
    ({**IDENTIFY, "userId": None}, "userId", "a identify call needs userId or anonymousId"),
    ({"type": "group", "userId": "u", "timestamp": "2024-01-01"}, "groupId", "a group call needs groupId"),
    ({"type": "alias", "userId": "u", "timestamp": "2024-01-01"}, "previousId", "needs previousId"),
    ({**IDENTIFY, "traits": "vip"}, "traits", "traits is not a JSON object"),
    ({**ORDER, "properties": {**ORDER["properties"], "total": "12,50"}}, "properties.revenue",
     "revenue '12,50' is not a number"),
    ({**ORDER, "properties": {"revenue": 1}}, "properties.order_id", "needs properties.order_id"),
    ({**ORDER, "properties": {"order_id": "o", "currency": "Euro"}}, "properties.currency",
     "currency 'Euro' is not a 3-letter ISO 4217 code"),
    ({**ORDER, "properties": {"order_id": "o", "products": {"p": 1}}}, "properties.products",
     "products must be a list"),
    ({**ORDER, "properties": {"order_id": "o", "products": [{"price": 1}, {"price": "free"}]}},
     "properties.products", "products[1] is not an object with numeric price and quantity"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), BAD_EVENTS, ids=[b[2][:30] for b in BAD_EVENTS])
def test_each_rule_rejects_the_row_and_keeps_the_valid_ones(store, tmp_path, bad, field, reason):
    path = _jsonl(tmp_path / "mixed.jsonl", IDENTIFY, bad, ORDER)
    report = load_file(store, path, show_progress=False)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    assert {r[0] for r in store.sql("SELECT message_id FROM events").fetchall()} == {"m-id", "m-order"}
    [(line, got_field, got_reason, raw)] = store.sql(
        "SELECT line, field, reason, raw FROM rejected_rows"
    ).fetchall()
    assert (line, got_field) == (2, field)
    assert reason in got_reason
    assert raw == (bad if isinstance(bad, str) else json.dumps(bad))
    assert report.rejects[0].line == 2


def test_same_events_in_two_files_are_loaded_once(store, tmp_path):
    no_id = {"type": "page", "anonymousId": "a9", "name": "Home", "timestamp": "2024-05-01T12:00:00Z"}
    first = load_file(store, _jsonl(tmp_path / "a.jsonl", IDENTIFY, ORDER, no_id), show_progress=False)
    # The same events (one without messageId, ids derived from content), in another file.
    second = load_file(
        store,
        _jsonl(tmp_path / "b.jsonl", ORDER, no_id, {**IDENTIFY, "messageId": "m-new"}),
        show_progress=False,
    )
    assert (first.rows_loaded, second.rows_loaded, second.rows_duplicate) == (3, 1, 2)
    assert store.count("events") == 4 and store.count("order_lines") == 2
    again = load_file(store, tmp_path / "b.jsonl", show_progress=False)
    assert again.status == "already loaded" and store.count("events") == 4


def test_blank_lines_keep_line_numbers_and_bom_is_ignored(store, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(IDENTIFY).encode() + b"\n\n   \n{broken\n")
    report = load_file(store, path, show_progress=False)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (2, 1, 1)
    assert store.sql("SELECT line FROM rejected_rows").fetchall() == [(4,)]


def test_parquet_events_with_typed_timestamp_and_struct_properties(store, tmp_path):
    path = tmp_path / "orders.parquet"
    ts = pa.array(
        [dt.datetime(2024, 5, 1, 12, 0), dt.datetime(2024, 5, 2, 9, 30), None], pa.timestamp("ms", "UTC")
    )
    props = pa.array(
        [
            {"order_id": "o1", "revenue": 10.0, "currency": "EUR"},
            {"order_id": "o2", "revenue": 20.0, "currency": "EUR"},
            {"order_id": "o3", "revenue": 30.0, "currency": "EUR"},
        ]
    )
    pq.write_table(
        pa.table({"messageId": ["p1", "p2", "p3"], "type": ["track"] * 3, "event": ["Order Completed"] * 3,
                  "userId": ["u1", "u2", "u3"], "timestamp": ts, "properties": props}),
        path,
    )
    report = load_file(store, path, kind="events", show_progress=False)
    assert (report.format, report.rows_loaded, report.rows_rejected) == ("parquet", 2, 1)
    assert store.sql("SELECT message_id, ts, order_id, revenue FROM events ORDER BY 1").fetchall() == [
        ("p1", dt.datetime(2024, 5, 1, 12, 0), "o1", 10.0),
        ("p2", dt.datetime(2024, 5, 2, 9, 30), "o2", 20.0),
    ]
    [(line, field, raw)] = store.sql("SELECT line, field, raw FROM rejected_rows").fetchall()
    assert (line, field) == (3, "timestamp") and json.loads(raw)["messageId"] == "p3"


def test_csv_events_with_mapping_decimal_comma_and_local_time(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    csv.write_text(
        "beleg;art;ereignis;kunde;zeit;bon;betrag;waehrung;filiale\n"
        "b1;track;Order Completed;k1;01.05.2024 14:00;B-1;12,50;EUR;Köln\n"
        "b2;track;Order Completed;k2;02.05.2024 09:00;B-2;zwölf;EUR;Köln\n"
        "b3;identify;;k3;2024-05-03T08:00:00Z;;;;Bonn\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "kasse.toml"
    mapping.write_text(
        'kind = "events"\nsource = "kasse"\ndecimal = ","\ntimestamp_column_timezone = "Europe/Berlin"\n'
        'date_formats = ["%d.%m.%Y"]\n[columns]\nmessage_id = "beleg"\ntype = "art"\nevent = "ereignis"\n'
        'user_id = "kunde"\ntimestamp = "zeit"\norder_id = "bon"\nrevenue = "betrag"\n'
        'currency = "waehrung"\n',
        encoding="utf-8",
    )
    report = load_file(store, csv, mapping, show_progress=False)
    assert (report.rows_loaded, report.rows_rejected) == (2, 1)
    rows = store.sql(
        "SELECT message_id, ts, order_id, revenue, source, properties->>'filiale', traits->>'filiale' "
        "FROM events ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("b1", dt.datetime(2024, 5, 1, 12, 0), "B-1", 12.5, "kasse", "Köln", None),
        ("b3", dt.datetime(2024, 5, 3, 8, 0), None, None, "kasse", None, "Bonn"),
    ]
    [(line, field, value)] = store.sql("SELECT line, field, value FROM rejected_rows").fetchall()
    assert (line, field, value) == (3, "properties.revenue", "zwölf")


def test_flat_event_file_without_type_column_is_refused(store, tmp_path):
    csv = tmp_path / "clicks.csv"
    csv.write_text("user_id,when\nu1,2024-01-01\n")
    with pytest.raises(MappingError, match="has no column for type and timestamp"):
        load_file(store, csv, show_progress=False)
