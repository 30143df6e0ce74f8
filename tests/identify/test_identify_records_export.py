"""`export_records`: every source record with its profile id, read back from real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from xrm.exceptions import InputError, NotFound
from xrm.identify import IdentityRules, accept_review, export_records, resolve_identities

DOB = dt.date(1961, 4, 3)


def _seed(seed: Any) -> None:
    # One man under two names (nickname), same birthday and house: a probabilistic pair.
    seed.record("crm:1", first_name="Johannes", last_name="Müller", birth_date=DOB, street="Hauptstr. 12",
                postcode="10115")
    seed.record("loyalty:1", first_name="Hans", last_name="MÜLLER", birth_date=DOB, street="Hauptstraße",
                house_number="12", postcode="10115", loyalty_card="L1")
    # The same loyalty card typed in the web shop: glue.
    seed.record("webshop:7", first_name="Hans", loyalty_card="L1", email=" Hans.Mueller@Web.DE ")
    # Somebody else entirely.
    seed.record("crm:2", first_name="Eva", last_name="Roth", birth_date=dt.date(1990, 5, 6),
                street="Am Markt 1", postcode="80331")


def _rows(path: Path) -> dict[str, dict[str, object]]:
    return {r["record_id"]: r for r in pq.read_table(path).to_pylist()}


def test_parquet_export_says_how_each_record_joined(store, seed, tmp_path):
    _seed(seed)
    resolve_identities(store)
    out = export_records(store, tmp_path / "records.parquet")
    assert out["format"] == "parquet" and out["records"] == 4 and out["profiles"] == 2
    rows = _rows(tmp_path / "records.parquet")
    assert list(rows) == sorted(rows, key=lambda r: (rows[r]["profile_id"], r))  # a profile's rows together

    pid = seed.profile_of("crm:1")
    assert {rows[r]["profile_id"] for r in ("crm:1", "loyalty:1", "webshop:7")} == {pid}
    assert rows["crm:1"]["profile_records"] == 3
    # The web-shop record shares the loyalty card with loyalty:1: glue, named as normalised.
    assert rows["webshop:7"]["joined_by"] == "identifier"
    assert rows["webshop:7"]["joined_via"] == "loyalty_card:L1"
    assert rows["webshop:7"]["email"] == "hans.mueller@web.de"
    # crm:1 has no glue of its own: it came in by the scored pair, with its weight.
    crm = rows["crm:1"]
    assert crm["joined_by"] == "probabilistic" and crm["joined_via"] == "loyalty:1"
    assert crm["match_probability"] >= 0.7 and crm["match_weight"] > 0
    assert str(crm["join_reason"]).startswith("probabilistic: match weight")
    assert crm["first_name_canon"] == "johannes" and crm["last_name_key"] == "mueller"
    assert crm["street_key"] == "hauptstr" and crm["house_number"] == "12"
    assert crm["birth_date"] == DOB
    # Eva is alone: her own profile, no join to explain.
    eva = rows["crm:2"]
    assert eva["profile_id"] == seed.profile_of("crm:2") != pid
    assert (eva["joined_by"], eva["joined_via"], eva["match_weight"], eva["profile_records"]) == (
        "alone", None, None, 1)
    assert out["joined_by"] == {"alone": 1, "identifier": 2, "probabilistic": 1}


def test_csv_export_review_decision_and_unresolved_record(store, seed, tmp_path):
    seed.record("webshop:1", first_name="Eva", last_name="Roth", email="eva.roth@gmx.de", account_id="E1")
    seed.record("newsletter:1", email="Eva.Roth@gmx.de ")
    strict = IdentityRules.from_mapping({"linkage": {"link_probability": 1.0, "review_probability": 0.1}})
    resolve_identities(store, strict)
    accept_review(store, "webshop:1", "newsletter:1", reason="same e-mail, checked by phone", decided_by="qa")
    seed.record("crm:9", first_name="Late", last_name="Comer")  # after the last run: no profile yet

    out = export_records(store, tmp_path / "audit.csv")
    assert out["format"] == "csv" and out["records"] == 3
    con = duckdb.connect()
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT record_id, profile_id, joined_by, joined_via, join_reason FROM read_csv(?, header = true)",
        [str(tmp_path / "audit.csv")]).fetchall()}
    assert rows["newsletter:1"][1:3] == ("review", "webshop:1")
    assert "accepted in review by qa: same e-mail, checked by phone" in rows["newsletter:1"][3]
    assert rows["newsletter:1"][0] == rows["webshop:1"][0] == seed.profile_of("webshop:1")
    assert rows["crm:9"][:2] == (None, "unresolved")
    assert out["joined_by"] == {"review": 2, "unresolved": 1}


def test_gzip_csv_and_explicit_format(store, seed, tmp_path):
    _seed(seed)
    resolve_identities(store)
    out = export_records(store, tmp_path / "records.csv.gz")
    assert out["format"] == "csv"
    (n,), = duckdb.connect().execute("SELECT count(*) FROM read_csv(?)", [str(tmp_path / "records.csv.gz")]
                                     ).fetchall()
    assert n == 4
    out = export_records(store, tmp_path / "records.dat", format="parquet")
    assert pq.read_table(tmp_path / "records.dat").num_rows == 4
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def test_clear_errors(store, seed, tmp_path):
    with pytest.raises(InputError, match=r"records\.xlsx.*\.csv, \.csv\.gz, \.parquet"):
        export_records(store, tmp_path / "records.xlsx")
    with pytest.raises(InputError, match="'json' is not known"):
        export_records(store, tmp_path / "records.csv", format="json")
    seed.record("crm:1", first_name="Eva")
    with pytest.raises(NotFound, match=r"no resolved identities.*xrm identify resolve"):
        export_records(store, tmp_path / "records.csv")
    resolve_identities(store)
    with pytest.raises(InputError, match="does not exist"):
        export_records(store, tmp_path / "nope" / "records.csv")
    assert not (tmp_path / "records.csv").exists()
