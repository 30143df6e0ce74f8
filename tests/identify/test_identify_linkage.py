"""Probabilistic record linkage (Splink) in the identity graph: fuzzy duplicates, households,
the review queue, unmerge, explain, and the cannot-link rules."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from xrm.exceptions import ConfigError, InputError, NotFound
from xrm.identify import (
    IdentityRules,
    accept_review,
    explain_profile,
    reject_review,
    resolve_identities,
    review_items,
    unmerge_profile,
)
from xrm.identify._conflicts import conflict, damerau_levenshtein, jaro_winkler
from xrm.identify._linkage_model import (
    bound_weights,
    comparison_specs,
    packaged_parameters,
    splink_settings,
    weights_look_right,
)

BIRTH = dt.date(1961, 4, 3)


def _hans(seed):
    """One man in two systems: no shared glue, a nickname, an umlaut spelled out, 'Str.'."""
    seed.record("crm:1", first_name="Johannes", last_name="Müller", birth_date=BIRTH,
                street="Hauptstraße", house_number="12", postcode="10115", city="Berlin",
                phone="030 1234567", updated_at=dt.datetime(2022, 1, 1))
    seed.record("loyalty:1", first_name="Hans", last_name="Mueller", birth_date=BIRTH,
                street="Hauptstr. 12", postcode="10115", city="Berlin", loyalty_card="L1",
                updated_at=dt.datetime(2023, 1, 1))


def _schmidts(seed):
    """A household: one address, phone, surname and family e-mail; two people."""
    common = {"last_name": "Schmidt", "street": "Lindenweg", "house_number": "3", "postcode": "50667",
              "city": "Köln", "phone": "0221 555123", "email": "familie.schmidt@web.de"}
    seed.record("webshop:A", first_name="Anna", birth_date=dt.date(1975, 5, 1), account_id="A", **common)
    seed.record("webshop:B", first_name="Ben", birth_date=dt.date(2004, 9, 9), account_id="B", **common)


def test_fuzzy_duplicate_becomes_one_profile_and_explain_shows_why(store, seed):
    _hans(seed)
    summary = resolve_identities(store)
    assert summary["linkage"]["model"] == "packaged" and summary["probabilistic_links"] == 1
    pid = seed.profile_of("crm:1")
    assert seed.profile_of("loyalty:1") == pid
    step = next(s for s in explain_profile(store, pid).chain if s.occurrence.startswith("linkage:"))
    assert step.rule.startswith("probabilistic: match weight")
    for field in ("first_name +", "last_name +", "birth_date +", "address +"):
        assert field in step.rule
    (weight, weights, status), = store.sql(
        "SELECT match_weight, weights, status FROM linkage_pairs"
    ).fetchall()
    assert status == "linked" and weight > 10 and json.loads(weights)["birth_date"] > 5


def test_linkage_off_keeps_them_apart(store, seed):
    _hans(seed)
    resolve_identities(store, IdentityRules.from_mapping({"linkage": {"enabled": False}}))
    assert seed.profile_of("crm:1") != seed.profile_of("loyalty:1")


def test_household_is_not_merged(store, seed):
    _schmidts(seed)
    resolve_identities(store)
    assert seed.profile_of("webshop:A") != seed.profile_of("webshop:B")
    (prob, status, reason), = store.sql(
        "SELECT match_probability, status, reason FROM linkage_pairs"
    ).fetchall()
    # Splink alone calls them one person; the cannot-link rule refuses it.
    assert prob > 0.8 and status == "refused"
    assert "cannot-link" in reason and "birth dates 1975-05-01 and 2004-09-09 differ" in reason
    assert review_items(store) == []


def test_cannot_link_holds_across_a_cluster(store, seed):
    """Anna's old loyalty record matches both Annas; no chain may pull Ben in through them."""
    _schmidts(seed)
    seed.record("loyalty:A", first_name="Anna", last_name="Schmidt", birth_date=dt.date(1975, 5, 1),
                street="Lindenweg 3", postcode="50667", city="Koeln")
    resolve_identities(store)
    assert seed.profile_of("loyalty:A") == seed.profile_of("webshop:A") != seed.profile_of("webshop:B")


def _grey(seed):
    """Same e-mail, nothing else known of the newsletter record: a grey-zone pair at a strict bar."""
    seed.record("webshop:1", first_name="Eva", last_name="Roth", email="eva.roth@gmx.de", account_id="E1")
    seed.record("newsletter:1", email="Eva.Roth@gmx.de ")


STRICT = {"linkage": {"link_probability": 1.0, "review_probability": 0.1}}  # nothing links by itself


def test_review_accept_is_obeyed_by_later_runs(store, seed):
    _grey(seed)
    rules = IdentityRules.from_mapping(STRICT)
    resolve_identities(store, rules)
    assert seed.profile_of("webshop:1") != seed.profile_of("newsletter:1")
    (item,) = review_items(store)
    assert (item["record_a"], item["record_b"]) == ("newsletter:1", "webshop:1")
    assert item["weights"]["email"] > 5 and item["b"]["first_name"] == "Eva"
    accept_review(store, "webshop:1", "newsletter:1", reason="same address book entry", decided_by="eva")
    assert seed.profile_of("webshop:1") == seed.profile_of("newsletter:1")  # applied at once
    resolve_identities(store, rules)  # and remembered
    assert seed.profile_of("webshop:1") == seed.profile_of("newsletter:1")
    assert review_items(store) == []
    (decided,) = review_items(store, "accepted")
    assert decided["decided_by"] == "eva" and decided["reason"] == "same address book entry"
    step = next(s for s in explain_profile(store, seed.profile_of("webshop:1")).chain
                if s.occurrence.startswith("linkage:"))
    assert "accepted in review by eva" in step.rule


def test_review_reject_is_a_cannot_link_for_later_runs(store, seed):
    _hans(seed)
    resolve_identities(store)
    reject_review(store, "crm:1", "loyalty:1", reason="different men, checked by phone")
    assert seed.profile_of("crm:1") != seed.profile_of("loyalty:1")
    # A third record matching both may join one of them, never both.
    seed.record("webshop:9", first_name="Hans", last_name="Müller", birth_date=BIRTH,
                street="Hauptstr.", house_number="12", postcode="10115", city="Berlin", account_id="K9")
    resolve_identities(store)
    assert seed.profile_of("crm:1") != seed.profile_of("loyalty:1")
    reasons = [r[0] for r in store.sql("SELECT reason FROM linkage_pairs").fetchall()]
    assert any("rejected" in (r or "") for r in reasons)


def test_review_decisions_check_their_input(store, seed):
    _hans(seed)
    resolve_identities(store)
    with pytest.raises(NotFound, match="webshop:nope"):
        accept_review(store, "crm:1", "webshop:nope", reason="x")
    with pytest.raises(InputError, match="needs a reason"):
        accept_review(store, "crm:1", "loyalty:1", reason=" ")
    with pytest.raises(InputError, match="twice"):
        reject_review(store, "crm:1", "crm:1", reason="x")
    with pytest.raises(InputError, match="not known"):
        review_items(store, "maybe")


def test_unmerge_of_a_fuzzy_merge_survives_reruns(store, seed):
    _hans(seed)
    resolve_identities(store)
    pid = seed.profile_of("crm:1")
    unmerge_profile(store, pid, [("record", "loyalty:1")], "two men of the same name and birthday")
    assert seed.profile_of("crm:1") != seed.profile_of("loyalty:1")
    resolve_identities(store)
    assert seed.profile_of("crm:1") != seed.profile_of("loyalty:1")
    (status, reason), = store.sql("SELECT status, reason FROM linkage_pairs").fetchall()
    assert status == "refused" and "override" in reason


def test_messy_records_do_not_crash(store, seed):
    seed.record("crm:empty")
    seed.record("crm:only-name", first_name="  ")
    seed.record("newsletter:x", email="not-an-email")
    summary = resolve_identities(store)
    assert summary["records"] == 3 and summary["linkage"]["pairs"] == 0


def test_empty_store_resolves(store):
    summary = resolve_identities(store)
    assert summary["records"] == 0 and summary["linkage"]["records"] == 0


def test_linkage_settings_are_checked():
    with pytest.raises(ConfigError, match="review_probability"):
        IdentityRules.from_mapping({"linkage": {"link_probability": 0.5, "review_probability": 0.9}})
    with pytest.raises(ConfigError, match=r"identify\.linkage\.threshold"):
        IdentityRules.from_mapping({"linkage": {"threshold": 0.5}})


def test_packaged_parameters_fit_the_comparisons():
    params = packaged_parameters()
    assert list(params["comparisons"]) == [name for name, _ in comparison_specs()]
    assert weights_look_right(params) == []
    splink_settings(params, 1e-4)  # raises if a comparison's levels do not fit


def test_bound_weights_tames_em_extremes():
    """EM's m ~ 0 for a one-typo postcode level (-78 bits in the sample) would veto true matches;
    a partial level must not outweigh exact agreement, nor count when no pair agreed exactly."""
    def lv(m, u, seen=True):
        import math
        return {"m": m, "u": u, "seen": seen, "weight": round(math.log2(m / u), 3)}

    params = {"comparisons": {
        "postcode": [lv(0.9, 0.001), lv(1e-26, 0.003), lv(0.1, 0.996)],
        "account_id": [lv(0.005, 0.005, seen=False), lv(0.02, 0.003), lv(0.975, 0.992)],
    }}
    out = bound_weights(params)["comparisons"]
    assert out["postcode"][1]["weight"] == -12.0 and out["postcode"][1]["m_trained"] == 1e-26
    assert out["postcode"][1]["m"] == pytest.approx(0.003 * 2**-12)
    assert out["postcode"][0]["weight"] == pytest.approx(9.814, abs=1e-3)  # untouched
    assert out["account_id"][1]["weight"] == 0.0  # capped: nobody agreed exactly
    assert out["account_id"][2]["weight"] < 0


def test_jaro_winkler_agrees_with_duckdb():
    pairs = [("martha", "marhta"), ("monika", "monia"), ("anna", "ben"), ("dixon", "dicksonx"),
             ("johannes", "jo"), ("mueller", "muller"), ("a", "a"), ("ab", "ba")]
    con = duckdb.connect()
    for a, b in pairs:
        (expected,), = con.execute("SELECT jaro_winkler_similarity(?, ?)", [a, b]).fetchall()
        assert jaro_winkler(a, b) == pytest.approx(expected, abs=1e-9), (a, b)


def test_conflict_rules():
    assert damerau_levenshtein("1980-01-02", "1980-01-20") == 1  # swapped digits: one typo
    assert conflict(("uwe", "uwe", None), ("ue", "ue", None), 0.8, 1) is None  # dropped letter
    assert conflict(("hans peter", "johannes peter", None), ("peter", "peter", None), 0.8, 1) is None
    assert conflict(("anna", "anna", "1980-01-02"), ("anna", "anna", "1980-01-20"), 0.8, 1) is None
    assert "birth dates" in conflict(("anna", "anna", "1980-01-02"), ("anna", "anna", "2008-01-02"), 0.8, 1)
    assert "first names" in conflict(("anna", "anna", None), ("ben", "benjamin", None), 0.8, 1)
    # A first name alone is not enough while the birth dates agree (a replaced or mistyped name)
    assert conflict(("anna", "anna", "1980-01-02"), ("ben", "benjamin", "1980-01-02"), 0.8, 1) is None
    assert "first names" in conflict(("anna", "anna", "1980-01-02"), ("ben", "benjamin", None), 0.8, 1)
    anna, ben = ("anna", "anna"), ("ben", "benjamin")
    assert "first names" in conflict((*anna, "1980-01-02"), (*ben, "1980-01-03"), 0.8, 1)
    # 1 January stands for a birth year alone: siblings share it
    assert "first names" in conflict((*anna, "2005-01-01"), (*ben, "2005-01-01"), 0.8, 1)
    # day and month swapped is an entry error, not another person
    assert conflict(("anna", "anna", "1980-03-12"), ("anna", "anna", "1980-12-03"), 0.8, 1) is None
    assert "birth dates" in conflict(("anna", "anna", "1980-03-12"), ("anna", "anna", "1981-12-03"), 0.8, 1)
    assert conflict((None, None, None), ("ben", "benjamin", "2000-01-01"), 0.8, 1) is None
