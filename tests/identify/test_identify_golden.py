"""Golden records: survivorship per attribute, with lineage to the record each value came from."""

from __future__ import annotations

import datetime as dt

import pytest

from xrm.exceptions import ConfigError, NotFound
from xrm.identify import IdentityRules, golden_record, resolve_identities

BIRTH = dt.date(1961, 4, 3)


def _maria(seed):
    """Maria married and moved: the loyalty card still has her maiden name and old address."""
    seed.record("loyalty:1", first_name="Ria", last_name="Groß", birth_date=BIRTH, street="Altweg 1",
                postcode="10115", city="Berlin", phone="030 1234567", updated_at=dt.datetime(2015, 1, 1))
    seed.record("webshop:1", first_name="Maria", last_name="Günther", birth_date=BIRTH,
                street="Neustraße", house_number="7", postcode="20095", city="Hamburg",
                email="maria.g@web.de", phone="030 1234567", updated_at=dt.datetime(2024, 5, 1))
    seed.record("crm:1", first_name="Maria", last_name="Günther", birth_date=BIRTH,
                email="maria.g@web.de", updated_at=dt.datetime(2020, 1, 1))


def test_golden_record_with_lineage(store, seed):
    _maria(seed)
    resolve_identities(store)
    pid = seed.profile_of("webshop:1")
    assert seed.profile_of("loyalty:1") == pid == seed.profile_of("crm:1")
    g = golden_record(store, pid)["attributes"]
    assert g["last_name"]["value"] == "Günther" and g["last_name"]["record_id"] == "webshop:1"
    assert g["address"]["value"] == "Neustraße 7, 20095 Hamburg" and g["address"]["rule"] == "most_recent"
    assert g["address"]["n_candidates"] == 2
    # most frequent by nickname-folded key: Ria and Maria count together, the newest spelling wins
    assert g["first_name"]["value"] == "Maria" and g["first_name"]["n_records"] == 3
    assert g["birth_date"]["value"] == "1961-04-03"
    assert g["phone"]["value"] == "+49301234567"
    assert g["email"]["record_updated_at"] == dt.datetime(2024, 5, 1)


def test_most_trusted_source_rule(store, seed):
    _maria(seed)
    rules = IdentityRules.from_mapping({"golden": {"rules": {"last_name": "most_trusted"},
                                                   "source_trust": ["loyalty", "crm"]}})
    resolve_identities(store, rules)
    g = golden_record(store, seed.profile_of("webshop:1"))["attributes"]
    assert g["last_name"]["value"] == "Groß" and g["last_name"]["source"] == "loyalty"


def test_golden_rules_and_ids_are_checked(store):
    with pytest.raises(ConfigError, match="most_recent"):
        IdentityRules.from_mapping({"golden": {"rules": {"email": "newest"}}})
    with pytest.raises(NotFound, match="profile 99"):
        golden_record(store, 99)
