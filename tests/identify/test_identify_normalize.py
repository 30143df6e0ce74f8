"""Each normaliser on tricky German cases; the SQL twins agree with the Python functions."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from xrm.identify import (
    IdentityRules,
    fold,
    normalize_address,
    normalize_email,
    normalize_identifier,
    normalize_name,
    normalize_phone,
    normalize_records,
    parse_birth_date,
)
from xrm.identify._address import house_number_sql, postcode_sql, street_key_sql
from xrm.identify._email import email_sql
from xrm.identify._names import first_key_sql, nicknames, title_sql
from xrm.identify._text import fold_sql

DE = "'DE'"
NAMES = ["Müller", "Mueller", "MÜLLER", "mu\u0308ller", "Strauß", "STRAUSS", "José", "Ölbaum-Äbi",
         "  Jürgen\u00a0Klopp ", "Łukasz", "ẞchmidt", "O'Brien", ""]


@pytest.mark.parametrize("a,b", [("Müller", "Mueller"), ("MÜLLER", "müller"), ("Strauß", "Strauss"),
                                 ("mu\u0308ller", "Müller"), ("René", "Rene")])
def test_fold_makes_spellings_equal(a, b):
    assert fold(a) == fold(b)


def test_fold_keeps_different_names_apart():
    assert fold("Müller") != fold("Muller")  # a lost umlaut is fuzzy linkage's job, not folding's
    assert fold("") is None and fold("  -- ") is None


def test_fold_sql_agrees_with_python():
    con = duckdb.connect()
    for name in NAMES:
        (got,), = con.execute(f"SELECT {fold_sql('$1')}", [name]).fetchall()
        assert got == fold(name), name


@pytest.mark.parametrize(
    "first,last,title,expect",
    [
        ("Dr. Hans", "MÜLLER", None, ("Dr.", "Hans", "johannes", "mueller")),
        ("Herr Prof. Dr. med. Sepp", "Strauß", None, ("Prof. Dr. med.", "Sepp", "josef", "strauss")),
        ("Kathi", "Dipl.-Ing. Weiß", None, ("Dipl.-Ing.", "Kathi", "katharina", "weiss")),
        ("Willi", "Schmidt", "Herr Dr.", ("Dr.", "Willi", "wilhelm", "schmidt")),
        ("Drake", "Ingold", None, (None, "Drake", "drake", "ingold")),  # 'Dr'/'Ing' inside a name
        ("Hans-Peter", "Meier", "Frau", (None, "Hans-Peter", "johannes peter", "meier")),
        (None, "  ", None, (None, None, None, None)),
    ],
)
def test_names(first, last, title, expect):
    n = normalize_name(first, last, title)
    assert (n.title, n.first_name, n.first_name_canon, n.last_name_key) == expect


def test_nickname_table_is_packaged_and_folded():
    table = nicknames()
    assert table["hans"] == "johannes" and table["sepp"] == "josef" and table["kaethe"] == "katharina"
    assert all(k == fold(k) and v == fold(v) for k, v in table.items())


def test_name_sql_agrees_with_python():
    con = duckdb.connect()
    for first in ["Dr. Hans", "Herr Prof. Dr. med. Sepp", "Drake", "Dipl.-Ing. Käthe", "Ingo"]:
        (title, key), = con.execute(f"SELECT {title_sql('$1')}, {first_key_sql('$1')}", [first]).fetchall()
        n = normalize_name(first, None)
        assert (title, key) == (n.title, n.first_name_key), first


@pytest.mark.parametrize(
    "raw,rules,expect",
    [
        ("  Anna.Schmidt@GMX.de ", False, "anna.schmidt@gmx.de"),
        ("mailto:Ben@web.de", False, "ben@web.de"),
        ("Anna.Schmidt+shop@googlemail.com", False, "anna.schmidt+shop@googlemail.com"),
        ("Anna.Schmidt+shop@googlemail.com", True, "annaschmidt@gmail.com"),
        ("a.b@web.de", True, "a.b@web.de"),  # provider rules touch Gmail only
    ],
)
def test_email(raw, rules, expect):
    assert normalize_email(raw, provider_rules=rules) == (expect, None)
    (sql,), = duckdb.connect().execute(f"SELECT {email_sql('$1', provider_rules=rules)}", [raw]).fetchall()
    assert sql == expect


def test_invalid_email_keeps_reason():
    value, reason = normalize_email("anna at web.de")
    assert value is None and "'anna at web.de' is not an e-mail address" in reason
    assert normalize_email("   ") == (None, None)


@pytest.mark.parametrize(
    "raw", ["+49 (0)30 1234567", "030/1234567", "0049 30 1234567", "030-123 45 67", "(030) 1234567"]
)
def test_phone_formats_give_one_e164(raw):
    assert normalize_phone(raw) == ("+49301234567", None)


def test_phone_sql_fast_path_agrees_with_phonenumbers():
    import random

    from xrm.identify._phone import phone_fast_sql

    rng = random.Random(7)
    shapes = ["0{a}/{b}", "+49 (0){a} {b}", "0049 {a} {b}", "({a}) {b}", "+43 {a} {b}", "0{a}-{b}",
              "+1 {a} {b}", "{a}{b}", "0{a} {b} ext 12"]
    values = [
        (rng.choice(shapes).format(a=rng.randint(1, 9999), b=rng.randint(100, 99999999)), region)
        for region in ("DE", "AT", "CH") for _ in range(400)
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE v (raw VARCHAR, region VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?, ?)", values)
    sql = phone_fast_sql("raw", "region", ["DE", "AT", "CH"])
    vouched = 0
    for raw, region, fast in con.execute(f"SELECT raw, region, {sql} FROM v").fetchall():
        if fast is not None:
            vouched += 1
            assert fast == normalize_phone(raw, region)[0], (raw, region)
    assert vouched > 200  # the fast path takes the plain, valid shapes


def test_phone_other_region_and_invalid_kept_with_reason():
    assert normalize_phone("01 5880 0", "AT") == ("+43158800", None)
    value, reason = normalize_phone("12345")
    assert value is None and "'12345' is not a valid phone number for region DE" in reason
    value, reason = normalize_phone("call me")
    assert value is None and "is not a phone number" in reason


@pytest.mark.parametrize(
    "street,house,pc,expect",
    [
        ("Hauptstraße", "12a", "01067", ("hauptstr", "12a", "01067")),
        ("Hauptstr.", "12 A", "1067", ("hauptstr", "12a", "01067")),
        ("Haupt-Strasse 12 a", None, "D-01067", ("hauptstr", "12a", "01067")),
        ("Am Markt 3/1", None, "80331", ("ammarkt", "3/1", "80331")),
        ("Sankt-Georg-Platz 4-6", "", "80331", ("stgeorgpl", "4-6", "80331")),
    ],
)
def test_address(street, house, pc, expect):
    a = normalize_address(street, house, pc, "München", "Deutschland")
    assert (a.street_key, a.house_number, a.postcode) == expect
    assert a.country == "DE" and a.city_key == "muenchen"
    (sk, hn, sp), = duckdb.connect().execute(
        f"SELECT {street_key_sql('$1', '$2')}, {house_number_sql('$1', '$2')}, {postcode_sql('$3', DE)}",
        [street, house, pc],
    ).fetchall()
    assert (sk, hn, sp) == expect


def test_bad_postcode_kept_with_reason():
    a = normalize_address("Weg", "1", "123", None, "DE")
    assert a.postcode is None and "'123' is not a German postcode" in a.postcode_reason
    assert normalize_address("Rue X", "1", "75001", "Paris", "FR").postcode == "75001"


@pytest.mark.parametrize(
    "raw,expect",
    [("1981-07-03", dt.date(1981, 7, 3)), ("03.07.1981", dt.date(1981, 7, 3)),
     ("3.7.81", dt.date(1981, 7, 3)), ("03/07/1981", dt.date(1981, 7, 3)),
     ("19810703", dt.date(1981, 7, 3)), ("3. Juli 1981", dt.date(1981, 7, 3)),
     ("1981-07-03T00:00:00Z", dt.date(1981, 7, 3)), (dt.date(1981, 7, 3), dt.date(1981, 7, 3))],
)
def test_birth_dates(raw, expect):
    assert parse_birth_date(raw) == (expect, None)


def test_impossible_birth_dates_have_reasons():
    for raw in ["31.02.1980", "1880-01-01", "2999-01-01", "gestern"]:
        value, reason = parse_birth_date(raw)
        assert value is None and repr(raw) in reason


def test_blocked_identifiers():
    rules = IdentityRules()
    assert normalize_identifier(rules, "email", "TEST@test.com")[0] is None
    assert normalize_identifier(rules, "email", "noreply@shop.de")[1].endswith("for email")
    assert normalize_identifier(rules, "loyalty_card", "0000 0000")[0] is None
    assert normalize_identifier(rules, "user_id", "undefined")[0] is None
    assert normalize_identifier(rules, "phone", "+49 3333 333333")[0] is None
    assert normalize_identifier(rules, "loyalty_card", " 1234-5678 ") == ("12345678", None)
    custom = IdentityRules.from_mapping({"types": {"loyalty_card": {"blocked": ["SHOP1"]}}})
    assert normalize_identifier(custom, "loyalty_card", "shop1")[0] is None


def test_normalize_records_in_store(store, seed):
    seed.record("crm:1", title="Herr", first_name="Dr. Hans", last_name="MÜLLER", email=" Hans@GMX.de ",
                phone="+49 (0)30 1234567", street="Hauptstr. 12 A", postcode="1067", country="Deutschland",
                loyalty_card="1234-5678", birth_date=dt.date(1980, 3, 1))
    seed.record("web:2", first_name="Sepp", last_name="Strauß", email="test@test.com", phone="12345",
                street="Hauptstraße", house_number="12a", postcode="01067", account_id="undefined")
    summary = normalize_records(store)
    assert summary["records"] == 2 and summary["records_per_s"] > 0
    rows = {r[0]: r for r in store.sql(
        "SELECT record_id, title, first_name, first_name_canon, last_name_key, email, email_reason, "
        "phone, phone_reason, street_key, house_number, postcode, country, loyalty_card, account_id "
        "FROM normalized_records").fetchall()}
    assert rows["crm:1"][1:] == ("Dr.", "Hans", "johannes", "mueller", "hans@gmx.de", None, "+49301234567",
                                 None, "hauptstr", "12a", "01067", "DE", "12345678", None)
    web = rows["web:2"]
    assert web[3:5] == ("josef", "strauss") and web[5] is None and "blocked" in web[6]
    assert web[7] is None and "not a valid phone number" in web[8]
    assert web[9:12] == ("hauptstr", "12a", "01067") and web[14] is None
