"""E-mail names: a record with an e-mail and no surname (a newsletter sign-up) joins the one profile
its user part names with the birth year, and nothing when that is ambiguous or contradicted."""

from __future__ import annotations

import datetime as dt

from xrm.identify import IdentityRules, explain_profile, resolve_identities
from xrm.identify._email_names import NAME_AND_YEAR, SURNAME_AND_YEAR, email_user_key, pick_email_names

DETLEF = {"first_name": "Detlef", "last_name": "Schneider", "birth_date": dt.date(1964, 5, 4)}


def _detlef(seed, rid="webshop:D", **over):
    cols = {**DETLEF, "email": "d.schneider.privat@gmx.de", "street": "Am Markt", "house_number": "4",
            "postcode": "04109", "city": "Leipzig", "account_id": "KD1", **over}
    seed.record(rid, **cols)


def _others(seed):
    """Unrelated people, so the store is not only the pair under test."""
    seed.record("webshop:O1", first_name="Anna", last_name="Wagner", birth_date=dt.date(1980, 2, 2),
                email="anna.wagner80@web.de", account_id="KD9")
    seed.record("loyalty:O2", first_name="Peter", last_name="Roth", birth_date=dt.date(1959, 7, 7),
                loyalty_card="2400111")


def test_name_and_year_join_the_named_profile_and_weak_evidence_does_not(store, seed):
    _detlef(seed)
    _others(seed)
    seed.record("newsletter:N1", email=" Detlef.Schneider64@Yahoo.de ")  # name and 2-digit year
    seed.record("newsletter:N2", email="schneider_detlef1964@web.de")     # reversed, 4-digit year
    seed.record("newsletter:N3", email="detlef.schneider@yahoo.de")       # a full name alone: namesakes
    seed.record("newsletter:N4", email="detlef.schneider641@yahoo.de")    # 641: a number, not 1964
    seed.record("newsletter:N5", email="familie.schneider64@web.de")      # a household, not a person
    seed.record("newsletter:N6", email="schneider64@gmx.de")              # surname and year, no first name
    seed.record("newsletter:N7", email="schneider64@web.de", first_name="Detlef")     # ... that agrees
    seed.record("newsletter:N8", email="schneider64@posteo.de", first_name="Ursula")  # a wife's sign-up
    summary = resolve_identities(store)
    pid = seed.profile_of("webshop:D")
    assert {i for i in range(1, 9) if seed.profile_of(f"newsletter:N{i}") == pid} == {1, 2, 7}
    assert summary["email_name_links"] == 3 and summary["email_name_refused"] == 1
    assert seed.profile_of("webshop:O1") != pid
    step = next(s for s in explain_profile(store, pid).chain
                if s.occurrence.startswith("linkage:newsletter:N1|"))
    assert step.rule.startswith("email-name: the e-mail of newsletter:N1 ('detlef.schneider64') spells the "
                                "first and last name of webshop:D")
    assert "birth year 1964" in step.rule
    (reason,), = store.sql(
        "SELECT reason FROM identity_links WHERE occurrence LIKE 'linkage:newsletter:N7|%'").fetchall()
    assert "spells the surname of webshop:D" in reason
    resolve_identities(store)  # a rerun keeps the links and the ids
    assert {i for i in range(1, 9) if seed.profile_of(f"newsletter:N{i}") == pid} == {1, 2, 7}
    assert seed.profile_of("webshop:D") == pid


def test_namesakes_born_the_same_year_leave_it_alone(store, seed):
    _detlef(seed)
    _detlef(seed, "loyalty:D2", birth_date=dt.date(1964, 11, 30), street="Ringstraße", house_number="80",
            postcode="80331", city="München", email=None, account_id=None, loyalty_card="2400777")
    seed.record("newsletter:N1", email="detlef.schneider64@yahoo.de")
    _meiers(seed)
    summary = resolve_identities(store)
    assert seed.profile_of("webshop:D") != seed.profile_of("loyalty:D2")
    assert seed.profile_of("webshop:H") != seed.profile_of("loyalty:H2")
    assert summary["email_name_links"] == 0
    hans = {seed.profile_of("webshop:H"), seed.profile_of("loyalty:H2")}
    assert seed.profile_of("newsletter:N2") not in hans
    named = {seed.profile_of("webshop:D"), seed.profile_of("loyalty:D2")}
    assert seed.profile_of("newsletter:N1") not in named


def _meiers(seed):
    """Hans Meier born 1970, and a Hans Meier elsewhere without a birth date (he may be the one
    who signed up as hans.meier70)."""
    seed.record("webshop:H", first_name="Hans", last_name="Meier", birth_date=dt.date(1970, 3, 3),
                street="Bahnhofstraße", house_number="1", postcode="01067", city="Dresden", account_id="KD5")
    seed.record("loyalty:H2", first_name="Hans", last_name="Meier", street="Seeweg", house_number="9",
                postcode="24103", city="Kiel", loyalty_card="2400555")
    seed.record("newsletter:N2", email="hans.meier70@gmx.de")


def test_undated_namesakes_may_be_allowed(store, seed):
    _meiers(seed)
    rules = IdentityRules.from_mapping({"linkage": {"email_names_undated_namesakes": True}})
    assert resolve_identities(store, rules)["email_name_links"] == 1
    assert seed.profile_of("newsletter:N2") == seed.profile_of("webshop:H") != seed.profile_of("loyalty:H2")


def test_setting_turns_it_off(store, seed):
    _detlef(seed)
    seed.record("newsletter:N1", email="detlef.schneider64@yahoo.de")
    summary = resolve_identities(store, IdentityRules.from_mapping({"linkage": {"email_names": False}}))
    assert summary["email_name_links"] == 0
    assert seed.profile_of("newsletter:N1") != seed.profile_of("webshop:D")


def test_user_key_and_pick():
    assert email_user_key("Detlef.Schneider64@yahoo.de") == ("detlefschneider", "64")
    assert email_user_key("familie.weber@web.de") == ("familieweber", "")
    assert email_user_key(None) is None
    root = {1: 10, 2: 20, 3: 30, 4: 40, 5: 50, 6: 60}.__getitem__
    pairs = [
        (1, 2, NAME_AND_YEAR, "a", "1964"),      # the only strong candidate of 1: picked
        (1, 3, SURNAME_AND_YEAR, "a", "1964"),   # weaker level: ignored
        (4, 2, NAME_AND_YEAR, "b", "1970"),      # two profiles at the best level: ambiguous
        (4, 3, NAME_AND_YEAR, "b", "1970"),
        (5, 6, NAME_AND_YEAR, "c", "1980"),      # 5's profile already holds a surname: skipped
    ]
    assert pick_email_names(pairs, root, lambda r: r == 50) == [(1, 2, NAME_AND_YEAR, "a", "1964")]
