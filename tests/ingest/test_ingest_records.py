from __future__ import annotations

import datetime as dt
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xrm.exceptions import InputError, MappingError
from xrm.ingest import LoadProgress, load_file

GERMAN_MAPPING = """
kind = "records"
source = "kasse"
decimal = ","
date_formats = ["%d.%m.%Y"]
[columns]
source_key = "kunden_nr"
first_name = "vorname"
last_name = "nachname"
birth_date = "geburtsdatum"
city = "ort"
[constants]
country = "DE"
"""


def _mapping(tmp_path, text=GERMAN_MAPPING, name="kasse.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _records(store):
    return {
        r[0]: r[1:]
        for r in store.sql(
            "SELECT source_key, first_name, last_name, birth_date, city, country, extra FROM records "
            "ORDER BY 1"
        ).fetchall()
    }


def _rejects(store):
    return store.sql("SELECT line, field, value, reason, raw FROM rejected_rows ORDER BY line").fetchall()


def test_latin1_semicolon_decimal_comma_german_dates(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    # A German Windows export: cp1252 bytes (ü = 0xfc, € = 0x80), ';', '12,50', dd.mm.yyyy.
    csv.write_bytes(
        "kunden_nr;vorname;nachname;geburtsdatum;ort;umsatz\n"
        "1001;Jürgen;Müller;31.12.1970;Köln;12,50 €\n"
        "1002;Anna;Schmidt;31.02.1980;Berlin;1.234,50\n"
        "1003;Zoë;Weiß;01.03.1985;München;0\n".encode("cp1252")
    )
    report = load_file(store, csv, _mapping(tmp_path), show_progress=False)
    assert (report.encoding, report.delimiter) == ("cp1252", ";")
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    rows = _records(store)
    assert rows["1001"][:5] == ("Jürgen", "Müller", dt.date(1970, 12, 31), "Köln", "DE")
    assert json.loads(rows["1001"][5]) == {"umsatz": "12,50 €"}  # unmapped column kept, € intact
    assert rows["1003"][:2] == ("Zoë", "Weiß")
    [(line, field, value, reason, raw)] = _rejects(store)
    assert (line, field, value) == (3, "birth_date", "31.02.1980")
    assert "is not a date (expected %d.%m.%Y)" in reason and "date_formats" in reason
    assert raw == "1002;Anna;Schmidt;31.02.1980;Berlin;1.234,50"
    assert store.sql("SELECT record_id FROM records WHERE source_key = '1001'").fetchall() == [
        ("kasse:1001",)
    ]


def test_utf8_bom_and_comma_delimiter(store, tmp_path):
    csv = tmp_path / "shop.csv"
    csv.write_bytes(b"\xef\xbb\xbfkunden_nr,vorname,nachname,geburtsdatum,ort\n7,\xc3\x89lodie,Ng,1990-01-02,Paris\n")
    mapping = _mapping(tmp_path, GERMAN_MAPPING.replace('["%d.%m.%Y"]', '["%Y-%m-%d"]'))
    report = load_file(store, csv, mapping, show_progress=False)
    assert (report.encoding, report.delimiter, report.rows_loaded) == ("utf-8", ",", 1)
    assert _records(store)["7"][:3] == ("Élodie", "Ng", dt.date(1990, 1, 2))


def test_bad_rows_are_kept_with_their_physical_line_and_good_rows_load(store, tmp_path):
    csv = tmp_path / "crm.csv"
    csv.write_text(
        "kunden_nr;vorname;nachname;geburtsdatum;ort\n"  # line 1
        "1;A;One;01.01.1980;X\n"  # 2
        ";No;Key;01.01.1980;X\n"  # 3: no source_key
        '2;"Two\nLines";B;01.01.1980;X\n'  # 4-5: a quoted value spanning lines
        "3;too;many;fields;here;x\n"  # 6: wrong number of fields
        "\n"  # 7: blank
        "4;D;Four;99.99.1999;X\n"  # 8: bad date
        "1;A;Again;01.01.1980;X\n",  # 9: duplicate key in the file
        encoding="utf-8",
    )
    report = load_file(store, csv, _mapping(tmp_path), show_progress=False)
    assert (report.rows_read, report.rows_loaded, report.rows_duplicate, report.rows_rejected) == (6, 2, 1, 3)
    rejects = _rejects(store)
    assert [(r[0], r[1]) for r in rejects] == [(3, "source_key"), (6, "(row)"), (8, "birth_date")]
    assert "source_key (column 'kunden_nr') is empty" in rejects[0][3]
    assert "the row has 6 field(s), the header 5" in rejects[1][3]
    assert rejects[1][4] == "3;too;many;fields;here;x"
    assert rejects[2][2] == "99.99.1999"
    assert set(_records(store)) == {"1", "2"}
    assert _records(store)["2"][0] == "Two\nLines"
    assert [r.line for r in report.rejects] == [3, 6, 8]


def test_same_file_twice_adds_nothing_and_force_counts_duplicates(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    csv.write_text("kunden_nr;vorname;nachname;geburtsdatum;ort\n1;A;B;01.01.1980;X\n;x;y;01.01.1980;z\n")
    mapping = _mapping(tmp_path)
    first = load_file(store, csv, mapping, show_progress=False)
    again = load_file(store, csv, mapping, show_progress=False)
    assert again.status == "already loaded" and again.load_id == first.load_id
    assert again.rows_loaded == 0 and store.count("records") == 1 and store.count("rejected_rows") == 1
    forced = load_file(store, csv, mapping, force=True, show_progress=False)
    assert (forced.status, forced.rows_loaded, forced.rows_duplicate) == ("loaded", 0, 1)
    assert store.count("records") == 1
    assert store.sql("SELECT count(*) FROM loads WHERE status = 'done'").fetchall() == [(2,)]


def test_missing_mapped_column_is_refused_naming_file_columns_and_fix(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    csv.write_text("kunden_nr;vorname;name;geburtsdatum;ort\n1;A;B;01.01.1980;X\n")
    with pytest.raises(MappingError) as err:
        load_file(store, csv, _mapping(tmp_path), show_progress=False)
    text = str(err.value)
    assert "kasse.toml does not fit" in text and str(csv) in text
    assert "columns.last_name = 'nachname': no such column" in text
    assert "kunden_nr, vorname, name, geburtsdatum, ort" in text
    assert store.count("records") == 0 and store.count("loads") == 0


def test_wrong_delimiter_hint(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    csv.write_text("kunden_nr|vorname\n1|A\n")
    mapping = _mapping(tmp_path, GERMAN_MAPPING.replace('decimal = ","', 'delimiter = ";"'))
    with pytest.raises(MappingError, match="one column only: is the delimiter right"):
        load_file(store, csv, mapping, show_progress=False)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty (0 bytes)"),
        ("blank.csv", b"\n\n  \n", "holds only blank lines"),
        ("binary.csv", b"\x00\x01\x02garbage\x00" * 50, "is not a CSV text file; it holds binary data"),
        ("sheet.csv", b"PK\x03\x04" + b"x" * 100, "ZIP archive (an Excel .xlsx?"),
        ("fake.parquet", b"kunden_nr;vorname\n1;A\n", "is not a Parquet file"),
        ("data.xlsx", b"whatever", "cannot tell the format from the extension '.xlsx'"),
        ("data.csv.gz", b"\x1f\x8b\x08", "is compressed; decompress it first"),
    ],
)
def test_files_that_are_not_what_they_claim_are_refused(store, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load_file(store, path, _mapping(tmp_path), show_progress=False)
    assert store.count("records") == 0


def test_explicit_utf8_refuses_latin1_bytes_with_the_fix(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    csv.write_bytes("kunden_nr;vorname;nachname;geburtsdatum;ort\n1;Jürgen;B;01.01.1980;X\n".encode("latin-1"))
    mapping = _mapping(tmp_path, GERMAN_MAPPING.replace('decimal = ","', 'encoding = "utf-8"'))
    with pytest.raises(InputError, match=r'is not valid UTF-8 .*near line 2.*set encoding = "cp1252"'):
        load_file(store, csv, mapping, show_progress=False)


def test_records_need_a_mapping(store, tmp_path):
    csv = tmp_path / "kasse.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(MappingError, match="a records file needs a mapping"):
        load_file(store, csv, kind="records", show_progress=False)


def test_parquet_records_with_typed_columns_and_progress(store, tmp_path):
    path = tmp_path / "crm.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([10, 11, 12]),
                "first": ["Eva", "Tom", "Ida"],
                "born": pa.array([dt.date(1980, 1, 2), None, dt.date(2999, 1, 1)]),
                "changed": pa.array(["2024-05-01 10:00", "2024-05-01T10:00:00+02:00", None]),
                "score": [1.5, 2.5, 3.5],
            }
        ),
        path,
    )
    mapping = _mapping(
        tmp_path,
        'kind = "records"\nsource = "crm"\ntimestamp_column_timezone = "Europe/Berlin"\n[columns]\n'
        'source_key = "id"\nfirst_name = "first"\nbirth_date = "born"\nupdated_at = "changed"\n',
        name="crm.toml",
    )
    seen: list[LoadProgress] = []
    report = load_file(store, path, mapping, progress=seen.append)
    assert (report.format, report.rows_loaded, report.rows_rejected) == ("parquet", 2, 1)
    rows = store.sql("SELECT source_key, birth_date, updated_at, extra FROM records ORDER BY 1").fetchall()
    # Both times are 08:00 UTC: a naive time is read in Europe/Berlin (summer: UTC+2).
    assert rows == [
        ("10", dt.date(1980, 1, 2), dt.datetime(2024, 5, 1, 8, 0), '{"score":1.5}'),
        ("11", None, dt.datetime(2024, 5, 1, 8, 0), '{"score":2.5}'),
    ]
    [(line, field, _, reason, raw)] = _rejects(store)
    assert (line, field) == (3, "birth_date") and "is in the future" in reason
    assert json.loads(raw)["id"] == 12
    assert seen[-1].done and seen[-1].rows == 3 and seen[-1].fraction == 1.0
