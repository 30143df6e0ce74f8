"""Analysis into network_traits, network value and Return on Network on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from xrm.exceptions import ConfigError, InputError
from xrm.network import (
    RelationshipEconomics,
    analyse_network,
    build_network,
    derive_relationships,
    return_on_network,
    ron_html,
    ron_markdown,
)


def _traits(store):
    cols = (
        "party_id, own_value, referred_value, influenced_value, network_value, pagerank, community, reach_1"
    )
    rows = store.sql(f"SELECT {cols} FROM network_traits").fetchall()
    names = [c.strip() for c in cols.split(",")]
    return {r[0]: dict(zip(names, r, strict=True)) for r in rows}


def test_network_value_counts_the_customers_a_party_brought_in(business):
    derive_relationships(business)
    summary = analyse_network(business)
    t = _traits(business)
    # u1 spent 100 and referred u2 (50) and u3 (30): attribution 1.0 for referrals
    assert t["u1"]["own_value"] == 100.0
    assert t["u1"]["referred_value"] == pytest.approx(80.0)
    assert t["u1"]["network_value"] == pytest.approx(180.0 + t["u1"]["influenced_value"])
    assert t["u2"]["referred_value"] == 0.0
    # u1 collects the referral credit: highest PageRank
    assert summary["top_pagerank"][0]["party_id"] == "u1"
    assert summary["relationships"]["referred"] == 2
    assert set(summary["seconds"]) == {"graph", "metrics", "values"}
    assert (
        business.sql("SELECT count(*) FROM network_runs WHERE finished_at IS NOT NULL").fetchall()[0][0] == 1
    )


def test_value_table_and_parties_without_relationships(business):
    business.sql("CREATE TABLE clv (customer_id VARCHAR, clv DOUBLE)")
    business.sql("INSERT INTO clv VALUES ('u1', 1000), ('u2', 500), ('u3', 300), ('lonely', 7)")
    derive_relationships(business)
    analyse_network(business, value_table=("clv", "customer_id", "clv"))
    t = _traits(business)
    assert t["u1"]["referred_value"] == pytest.approx(800.0)
    assert (
        t["lonely"]["own_value"] == 7.0 and t["lonely"]["reach_1"] == 0 and t["lonely"]["community"] is None
    )
    with pytest.raises(InputError, match="no column 'ltv'"):
        analyse_network(business, value_table=("clv", "customer_id", "ltv"))


def test_return_on_network_by_type_and_community(business, tmp_path: Path):
    derive_relationships(business)
    analyse_network(business)
    econ = tmp_path / "econ.toml"
    econ.write_text("[types.referred]\ncost = 20.0\n", encoding="utf-8")
    report = return_on_network(business, economics=RelationshipEconomics.load(econ))
    ref = next(r for r in report["by_type"] if r["rel_type"] == "referred")
    assert (
        ref["relationships"] == 2
        and ref["value"] == pytest.approx(80.0)
        and ref["cost"] == pytest.approx(40.0)
    )
    assert ref["return"] == pytest.approx(2.0) and ref["net"] == pytest.approx(40.0)
    hh = next(r for r in report["by_type"] if r["rel_type"] == "household")
    assert hh["relationships"] == 1 and hh["cost"] == pytest.approx(0.5)  # shipped default, counted once
    assert sum(c["value"] for c in report["by_community"]) == pytest.approx(report["total"]["value"])
    md = ron_markdown(report)
    assert "| referred | 2 | 80.00 | 40.00 | 40.00 | 2.00 |" in md
    assert "<td>referred</td>" in ron_html(report)


def test_return_on_network_needs_an_analysis(store):
    with pytest.raises(InputError, match="analyse"):
        return_on_network(store)


def test_bad_economics_file_names_each_problem(tmp_path: Path):
    f = tmp_path / "econ.toml"
    f.write_text("[types.referred]\ncost = -1\n[types.friends]\ncost = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        RelationshipEconomics.load(f)
    assert "types.referred.cost = -1" in str(err.value) and "[types.friends]" in str(err.value)


def test_build_network_for_the_pipeline(business):
    out = build_network(business)
    assert out["derived"]["referred"] == 2 and out["parties"] >= 5
    assert out["value_through_network"] == pytest.approx(80.0, abs=1.0)
