"""Relationships from files (bad rows rejected with reasons) and derived from data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xrm.exceptions import InputError
from xrm.network import derive_relationships, load_handles, load_parties, load_relationships


def _rels(store, rel_type=None):
    q = "SELECT src, dst, rel_type, weight FROM relationships"
    if rel_type:
        return store.sql(q + " WHERE rel_type = ? ORDER BY 1, 2", [rel_type]).fetchall()
    return store.sql(q + " ORDER BY 1, 2, 3").fetchall()


def test_bad_relationship_rows_are_rejected_with_reasons_and_good_rows_kept(store, tmp_path: Path):
    f = tmp_path / "rels.csv"
    f.write_text(
        "src,dst,rel_type,weight,ts\n"
        "acme,bolt,supplies,2.5,2024-03-01\n"
        "anna,ben,befriends,1,\n"  # line 3: unknown type
        "anna,anna,colleague,,\n"  # line 4: self loop
        "carl,dora,household,-1,\n"  # line 5: bad weight
        "erik,fritz,works-for,,31.02.2024\n"  # line 6: bad date
        ",gus,follows,,\n"  # line 7: missing src
        "zoe,yan,colleague,,\n",  # symmetric: stored as (yan, zoe)
        encoding="utf-8",
    )
    report = load_relationships(store, f)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (7, 2, 5)
    assert _rels(store) == [("acme", "bolt", "supplies", 2.5), ("yan", "zoe", "colleague", 1.0)]
    rejects = store.sql("SELECT line, field, value, reason FROM network_rejects ORDER BY line").fetchall()
    by_line = {r[0]: r for r in rejects}
    assert by_line[3][1:3] == ("rel_type", "befriends") and "rels.csv line 3" in by_line[3][3]
    assert "not related to itself" in by_line[4][3]
    assert by_line[5][1] == "weight" and "> 0" in by_line[5][3]
    assert by_line[6][1:3] == ("ts", "31.02.2024") and "YYYY-MM-DD" in by_line[6][3]
    assert by_line[7][1] == "src" and "missing" in by_line[7][3]
    assert any("kept in network_rejects" in p for p in report.problems)


def test_jsonl_relationships_and_unreadable_lines(store, tmp_path: Path):
    f = tmp_path / "rels.jsonl"
    f.write_text(
        json.dumps({"src": "p1", "dst": "org", "type": "works-for", "ts": "2024-01-01T10:00:00Z"}) + "\n"
        "{not json\n",
        encoding="utf-8",
    )
    report = load_relationships(store, f)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    ts = store.sql("SELECT ts FROM relationships").fetchall()[0][0]
    assert ts.isoformat() == "2024-01-01T10:00:00"


def test_unknown_file_type_is_refused(store, tmp_path: Path):
    f = tmp_path / "rels.xlsx"
    f.write_bytes(b"x")
    with pytest.raises(InputError, match=r"\.xlsx"):
        load_relationships(store, f)


def test_parties_and_handles_files(store, tmp_path: Path):
    parties = tmp_path / "parties.csv"
    parties.write_text(
        "party_id,kind,roles,name\nacme,organisation,supplier;partner,ACME\nx,robot,customer,\ny,person,guru,\n",
        encoding="utf-8",
    )
    report = load_parties(store, parties)
    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    assert store.sql("SELECT kind, roles FROM parties").fetchall() == [
        ("organisation", ["supplier", "partner"])
    ]
    handles = tmp_path / "handles.csv"
    handles.write_text("handle,party_id,platform\nAnna_K,u1,Instagram\n", encoding="utf-8")
    assert load_handles(store, handles).rows_loaded == 1
    assert store.sql("SELECT platform, handle, party_id FROM handles").fetchall() == [
        ("instagram", "@anna_k", "u1")
    ]


def test_derived_referrals_households_and_co_purchases(business):
    counts = derive_relationships(business)
    assert counts["identity"] == "user_id"
    assert _rels(business, "referred") == [("u1", "u2", "referred", 1.0), ("u1", "u3", "referred", 1.0)]
    # 'Hauptstraße 12a' / 1067 and 'Hauptstr.' + '12 A' / 01067 are one address
    assert _rels(business, "household") == [("u2", "u4", "household", 1.0)]
    co = _rels(business, "co-purchased")
    pairs = {(s, d) for s, d, _, _ in co}
    assert ("u1", "u5") in pairs  # the rare espresso
    assert all(w > 0 for *_, w in co)
    # every buyer and relationship end is a party, buyers with the customer role
    roles = dict(business.sql("SELECT party_id, roles FROM parties").fetchall())
    assert roles["u1"] == ["customer"] and set(roles) >= {"u1", "u2", "u3", "u4", "u5"}
    # identify-call traits link handles to parties
    assert business.sql("SELECT handle, party_id FROM handles").fetchall() == [("@anna_k", "u1")]
    # deriving again replaces, never duplicates
    assert derive_relationships(business)["referred"] == 2


def test_co_purchase_is_bounded_to_top_k(store):
    from tests.network.conftest import add_order

    # 6 customers all share one rare product: 15 pairs, but each keeps at most k = 2 partners
    for i in range(6):
        add_order(store, f"m{i}", f"c{i}", 10.0, ["rare"], "2024-01-01T00:00:00")
    derive_relationships(store, rules=("co-purchased",), co_purchase_top_k=2)
    pairs = store.sql("SELECT src, dst FROM relationships").fetchall()
    assert 0 < len(pairs) < 15
    # a product bought by more than rare_max_buyers is no evidence
    derive_relationships(store, rules=("co-purchased",), rare_max_buyers=5)
    assert store.count("relationships") == 0


def test_unknown_rule_and_identity_are_refused(store):
    with pytest.raises(InputError, match="household"):
        derive_relationships(store, rules=("friends",))
    with pytest.raises(InputError, match="identity"):
        derive_relationships(store, identity="email")
