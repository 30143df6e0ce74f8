"""`xrm identify export PATH`: the record export from the command line, on a real store file."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from xrm.cli import app
from xrm.identify import resolve_identities
from xrm.store import Store


def _invoke(settings, *args: str):
    return CliRunner().invoke(app, ["--store", str(settings.store_path), "identify", "export", *args])


def _seed(settings) -> None:
    with Store.open(settings) as store:
        people = (("crm:1", "Johannes", None), ("loyalty:1", "Hans", "L1"), ("webshop:1", "Hans", "L1"))
        for rid, first, card in people:
            store.sql(
                "INSERT INTO records (record_id, source, source_key, first_name, last_name, birth_date, "
                "street, house_number, postcode, loyalty_card, updated_at) VALUES (?, ?, ?, ?, 'Müller', "
                "?, 'Hauptstr.', '12', '10115', ?, ?)",
                [rid, *rid.split(":"), first, dt.date(1961, 4, 3), card, dt.datetime(2023, 1, 1)],
            )
        store.sql("INSERT INTO records (record_id, source, source_key, first_name, updated_at) VALUES "
                  "('crm:2', 'crm', '2', 'Eva', TIMESTAMP '2023-01-01')")


def test_export_before_and_after_resolve(settings, tmp_path):
    _seed(settings)
    out = _invoke(settings, str(tmp_path / "records.csv"))
    assert out.exit_code == 1 and "no resolved identities" in out.output
    assert "xrm identify resolve" in " ".join(out.output.split())
    with Store.open(settings) as store:
        resolve_identities(store)

    out = _invoke(settings, str(tmp_path / "records.csv"))
    assert out.exit_code == 0, out.output
    assert "4 records of 2 profiles" in out.output and "alone 1" in out.output
    lines = (tmp_path / "records.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("source,record_id,source_key,profile_id,profile_records,joined_by,joined_via")
    assert len(lines) == 5

    out = _invoke(settings, str(tmp_path / "records.bin"), "--format", "parquet", "--json")
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["format"] == "parquet" and summary["joined_by"] == {
        "alone": 1, "identifier": 2, "probabilistic": 1}
    rows = {r["record_id"]: r for r in pq.read_table(tmp_path / "records.bin").to_pylist()}
    assert rows["webshop:1"]["joined_via"] == "loyalty_card:L1"
    assert rows["crm:1"]["joined_by"] == "probabilistic" and rows["crm:1"]["match_weight"] > 0


def test_unknown_suffix_is_refused_before_anything_is_written(settings, tmp_path):
    out = _invoke(settings, str(tmp_path / "records.xlsx"), "--json")
    assert out.exit_code == 1
    err = json.loads(out.output)
    assert err["error"] == "InputError" and "--format csv|parquet" in err["message"]
    out = _invoke(settings, str(tmp_path / "records.csv"), "--format", "xml")
    assert out.exit_code == 1 and "'xml' is not known" in out.output
    assert list(tmp_path.glob("records*")) == []
