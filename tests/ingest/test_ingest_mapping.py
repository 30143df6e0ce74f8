from __future__ import annotations

import pytest

from xrm.exceptions import MappingError
from xrm.ingest import DEFAULT_DATE_FORMATS, Mapping, read_mapping

GOOD = """
kind = "records"
source = "webshop"
format = "csv"
encoding = "latin-1"
delimiter = ";"
decimal = ","
date_formats = ["%d.%m.%Y"]
timestamp_column_timezone = "Europe/Berlin"
[columns]
source_key = "kunden_nr"
first_name = "vorname"
birth_date = "geburtsdatum"
[constants]
country = "DE"
"""


def test_a_full_mapping_is_parsed_into_a_typed_object(tmp_path):
    path = tmp_path / "webshop.toml"
    path.write_text(GOOD, encoding="utf-8")
    m = read_mapping(path)
    assert (m.kind, m.source, m.format, m.encoding, m.delimiter, m.decimal) == (
        "records", "webshop", "csv", "latin-1", ";", ",",
    )
    assert m.date_formats == ("%d.%m.%Y",)
    assert m.timestamp_column_timezone == "Europe/Berlin"
    assert m.columns == {"source_key": "kunden_nr", "first_name": "vorname", "birth_date": "geburtsdatum"}
    assert m.constants == {"country": "DE"}
    assert m.origin == str(path)


def test_defaults_for_a_minimal_mapping():
    m = Mapping.from_dict({"kind": "events"})
    assert m.format is None and m.encoding == "auto" and m.delimiter == "auto" and m.decimal == "."
    assert m.date_formats == DEFAULT_DATE_FORMATS and m.timestamp_column_timezone == "UTC"


def test_every_problem_is_reported_at_once_with_file_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        """
kind = "record"
delimeter = ";"
decimal = "·"
encoding = "utf-16"
date_formats = ["%d.%m.%Q", "plain"]
timestamp_column_timezone = "Mars/Olympus"
[columns]
frist_name = "vorname"
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as err:
        read_mapping(path)
    text = str(err.value)
    assert str(path) in text
    for expected in [
        "kind = 'record'",
        "delimeter: unknown key (did you mean 'delimiter'?)",
        "decimal",
        "encoding = 'utf-16'",
        "date_formats[0]",
        "%Q",
        "date_formats[1]",
        "timestamp_column_timezone = 'Mars/Olympus'",
    ]:
        assert expected in text, expected


def test_records_need_source_and_source_key():
    with pytest.raises(MappingError) as err:
        Mapping.from_dict({"kind": "records", "columns": {"frist_name": "x"}}, origin="m.toml")
    text = str(err.value)
    assert "source: missing" in text
    assert "columns.source_key: missing" in text
    assert "columns.frist_name: is not a field (did you mean 'first_name'?)" in text


def test_a_field_cannot_be_both_column_and_constant():
    with pytest.raises(MappingError, match=r"columns\.country: is also set in"):
        Mapping.from_dict(
            {
                "kind": "records",
                "source": "s",
                "columns": {"source_key": "id", "country": "land"},
                "constants": {"country": "DE"},
            }
        )


def test_invalid_toml_and_missing_file_name_the_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('kind = "records\n', encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken\.toml is not valid TOML"):
        read_mapping(broken)
    with pytest.raises(MappingError, match=r"nope\.toml does not exist"):
        read_mapping(tmp_path / "nope.toml")
