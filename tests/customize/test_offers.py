from __future__ import annotations

import json
from datetime import date

import pytest

from xrm.customize import Offer, add_offers, get_offer, list_offers, load_offers, read_offers, remove_offer
from xrm.exceptions import InputError

TOML = """
[[offer]]
offer_id = "espresso"
kind = "product"
name = "Espresso beans 1 kg"
category = "coffee"
product_ids = ["P12"]
value = 4.10
cost = 0.20
channels = ["email", "web"]
valid_to = 2026-12-31

[[offer]]
offer_id = "retention-call"
kind = "service"
name = "A call from the customer team"
value = 30
cost = 8
tiers = ["MVC"]
consent_purpose = "service"
"""


def test_toml_round_trip_through_the_store(store, tmp_path):
    path = tmp_path / "offers.toml"
    path.write_text(TOML)
    assert load_offers(store, path) == 2
    offers = {o.offer_id: o for o in list_offers(store)}
    espresso = offers["espresso"]
    assert espresso.product_ids == ("P12",) and espresso.channels == ("email", "web")
    assert espresso.valid_to == date(2026, 12, 31) and espresso.value == pytest.approx(4.10)
    assert espresso.source == "offers.toml"
    assert offers["retention-call"].tiers == ("MVC",)
    # Loading again replaces, it does not duplicate.
    assert load_offers(store, path) == 2
    assert store.count("offers") == 2


def test_csv_and_json_read_the_same_offer(tmp_path):
    csv_path = tmp_path / "offers.csv"
    csv_path.write_text(
        "offer_id,kind,name,product_ids,value,cost,channels,exclude_owned,stock\n"
        "bundle-1,bundle,Breakfast bundle,P1|P2,6.5,0.5,email|app,true,10\n"
    )
    json_path = tmp_path / "offers.json"
    json_path.write_text(json.dumps({"offers": [{
        "offer_id": "bundle-1", "kind": "bundle", "name": "Breakfast bundle", "product_ids": ["P1", "P2"],
        "value": 6.5, "cost": 0.5, "channels": ["email", "app"], "exclude_owned": True, "stock": 10,
    }]}, indent=2))
    a, b = read_offers(csv_path), read_offers(json_path)
    assert [o.as_dict() | {"source": None} for o in a] == [o.as_dict() | {"source": None} for o in b]
    assert a[0].product_ids == ("P1", "P2") and a[0].exclude_owned and a[0].stock == 10


def test_every_problem_is_reported_with_line_field_and_value(store, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "offer_id,kind,name,product_ids,value,valid_from,colour\n"
        "ok,content,Recipe,,1.0,,\n"
        "x1,gadget,Thing,P1,abc,2026-02-31,red\n"
        "ok,content,Again,,1.0,,\n"
    )
    with pytest.raises(InputError) as err:
        read_offers(path)
    text = str(err.value)
    assert "bad.csv line 3: 'kind' = 'gadget' is not one of product, bundle, content, service" in text
    assert "bad.csv line 3: 'value' = 'abc' is not a number" in text
    assert "'valid_from' = '2026-02-31' is not a date (expected YYYY-MM-DD)" in text
    assert "unknown field 'colour'" in text
    assert "line 4: 'offer_id' = 'ok' is also used at" in text and "line 2" in text
    with pytest.raises(InputError):
        load_offers(store, path)
    assert store.count("offers") == 0  # nothing stored from a file with problems


def test_toml_and_json_problems_name_lines(tmp_path):
    toml = tmp_path / "o.toml"
    toml.write_text('[[offer]]\noffer_id = "a"\nkind = "content"\nname = "A"\nvalue = 1\n\n'
                    '[[offer]]\noffer_id = "b"\nkind = "product"\nname = "B"\nvalue = 2\n')
    with pytest.raises(InputError, match=r"o.toml line 7: a product offer needs 'product_ids'"):
        read_offers(toml)
    js = tmp_path / "o.json"
    js.write_text('[\n  {"offer_id": "a", "kind": "content", "name": "A", "value": 1},\n'
                  '  {"offer_id": "b", "kind": "content", "name": "B", "value": 1, "cost": -1}\n]')
    with pytest.raises(InputError, match=r"o.json line 3: 'cost' = -1 is below 0"):
        read_offers(js)
    with pytest.raises(InputError, match=r"\.xlsx"):
        read_offers(tmp_path / "o.xlsx")


def test_add_get_remove(store):
    add_offers(store, [Offer("o1", "content", "Recipe", 1.0), Offer("o2", "content", "Tips", 2.0)])
    assert get_offer(store, "o2").name == "Tips"
    remove_offer(store, "o1")
    assert [o.offer_id for o in list_offers(store)] == ["o2"]
    with pytest.raises(InputError, match="no offer 'o1'"):
        remove_offer(store, "o1")
