"""Gender as a cannot-link rule (household members of another gender are other people), and the
session-8 first-name exceptions (nicknames the table lacked, short forms that drop the start).

Stefan and Stefanie Huber share surname, house, phone and e-mail, and their first names are a
prefix apart (no first-name conflict); when one record has no birth date nothing else keeps them
apart. The gender is the salutation, else the first name's as the data's own salutations give it.
"""

from __future__ import annotations

import datetime as dt

from xrm.identify import IdentityRules, resolve_identities
from xrm.identify._conflicts import conflict, vouches
from xrm.identify._names import canonical_first_name

STEFAN = ("stefan", "stefan")
STEFANIE = ("stefanie", "stefanie")


def test_other_genders_conflict_unless_a_salutation_is_the_one_difference():
    assert "genders" in conflict((*STEFAN, None, None, "m"), (*STEFANIE, "1980-05-06", None, "f"), 0.8, 1)
    assert conflict((*STEFAN, None, None, "m"), (*STEFANIE, "1980-05-06", None, None), 0.8, 1) is None
    assert conflict((*STEFAN, None, None, "m"), (*STEFAN, "1980-05-06", None, "m"), 0.8, 1) is None
    # same birthday, same first name: the salutation is the entry error
    assert conflict((*STEFAN, "1980-05-06", None, "m"), (*STEFAN, "1980-05-06", None, "f"), 0.8, 1) is None
    # same birthday, other first name and gender: twins (a first name alone is left to the weight)
    assert "genders" in conflict(("anna", "anna", "1980-05-06", None, "f"),
                                 ("ben", "ben", "1980-05-06", None, "m"), 0.8, 1)
    assert conflict(("anna", "anna", "1980-05-06", None, "f"), ("lena", "lena", "1980-05-06", None, "f"),
                    0.8, 1) is None
    # an account id within one typo lifts it, as it lifts the other rules
    assert conflict((*STEFAN, None, "7001311", "m"), (*STEFANIE, None, "7001131", "f"), 0.8, 1) is None
    # four-part keys (no gender known) behave as before
    assert conflict((*STEFAN, None, None), (*STEFANIE, "1980-05-06", None), 0.8, 1) is None


def test_a_record_of_another_gender_does_not_vouch():
    assert vouches((*STEFAN, "1980-05-06", None, "m"), (*STEFAN, "1980-05-06", None, None), 0.8, 1)
    assert not vouches((*STEFAN, "1980-05-06", None, "m"), (*STEFAN, "1980-05-06", None, "f"), 0.8, 1)


def test_nicknames_the_table_lacked():
    assert canonical_first_name("geli") == "angelika"
    assert canonical_first_name("detti") == "detlef"
    assert canonical_first_name("kalle") == "karl"
    assert conflict(("geli", "angelika", None), ("angelika", "angelika", "1970-04-03"), 0.8, 1) is None


HOUSE = {"last_name": "Huber", "street": "Bismarckstr. 47", "postcode": "23567", "city": "Lübeck",
         "phone": "0451 7001234", "email": "familie.huber@web.de"}


def _household(seed, gender_a, gender_b, first_a="Stefan", first_b="Stefanie", source="crm"):
    seed.record(f"{source}:A", first_name=first_a, gender=gender_a, **HOUSE)  # no birth date
    seed.record(f"{source}:B", first_name=first_b, gender=gender_b, birth_date=dt.date(1983, 6, 14), **HOUSE)


def test_a_household_of_two_genders_stays_two_profiles(store, seed):
    _household(seed, "Herr", "Frau")
    resolve_identities(store)
    assert seed.profile_of("crm:A") != seed.profile_of("crm:B")
    (status, reason), = store.sql(
        "SELECT status, reason FROM linkage_pairs WHERE record_a = 'crm:A' AND record_b = 'crm:B'").fetchall()
    assert status == "refused" and "genders 'm' and 'f' differ" in reason


def test_without_salutations_the_pair_links(store, seed):
    """The same two records without salutations: the rule is what keeps them apart."""
    _household(seed, None, None)
    resolve_identities(store)
    assert seed.profile_of("crm:A") == seed.profile_of("crm:B")


def _salutations(seed, first, gender, n=5):
    """Records with a salutation for ``first`` elsewhere in the data (other names and houses)."""
    for i in range(n):
        seed.record(f"loyalty:{first}{i}", first_name=first, gender=gender, last_name=f"Zeller{i}x{first}",
                    birth_date=dt.date(1950 + i, 1 + i, 10 + i), postcode=f"8{i}{len(first)}00")


def test_a_first_name_gets_its_gender_from_the_datas_salutations(store, seed):
    """Petra and Peter of a web shop without salutations: the loyalty records say Petra is 'Frau'
    and Peter 'Herr' (5 each), so the web-shop pair is refused; with the setting above 1 (the
    salutation alone) it links."""
    _household(seed, None, None, "Peter", "Petra", source="webshop")
    _salutations(seed, "Petra", "Frau")
    _salutations(seed, "Peter", "Herr")
    resolve_identities(store)
    assert seed.profile_of("webshop:A") != seed.profile_of("webshop:B")
    resolve_identities(store, IdentityRules.from_mapping({"linkage": {"gender_conflict_share": 1.01}}))
    assert seed.profile_of("webshop:A") == seed.profile_of("webshop:B")


def test_too_few_salutations_give_a_first_name_no_gender(store, seed):
    _household(seed, None, None, "Peter", "Petra", source="webshop")
    _salutations(seed, "Petra", "Frau", n=4)
    _salutations(seed, "Peter", "Herr", n=4)
    resolve_identities(store)
    assert seed.profile_of("webshop:A") == seed.profile_of("webshop:B")


def test_short_forms_that_drop_the_start_do_not_differ():
    """'Fred' for Manfred (36 refused true pairs at 100k sample records, no household pair);
    three letters are too few ('udo' / 'ludo' still differ by the other rules' measure)."""
    assert conflict(("fred", "fred", None), ("manfred", "manfred", "1950-02-03"), 0.8, 1) is None
    assert conflict(("tina", "tina", None), ("martina", "martina", None), 0.8, 1) is None
    assert "first names" in conflict(("ina", "ina", None), ("martina", "martina", None), 0.8, 1)
