"""The configurator: every solution meets every constraint, infeasibility names the conflicts.

Solutions are checked by an independent checker written here in exact decimal arithmetic from the
product's own numbers, not by the solver's model; on a small product, brute-force enumeration
of every configuration checks optimality, infeasibility and the minimality of reported conflicts.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from customize_helpers import T0, days, write_orders
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xrm.cli._customize import offers_app
from xrm.cli._output import CliState
from xrm.config import Settings
from xrm.customize import (
    Configuration,
    Request,
    configure,
    configure_segment,
    load_product,
    parse_product,
    read_configurations,
    request_from,
    solve,
)
from xrm.customize._product import NUTRIENTS, Product
from xrm.customize._taste import Taste
from xrm.exceptions import ConfigurationInfeasible, InputError, NotFound
from xrm.store import Store

CEREAL = load_product("cereal-mix")
TAGS = sorted({t for o in CEREAL.options for t in o.tags})


def D(x: float) -> Decimal:
    return Decimal(str(x))


def violations(product: Product, grams: dict[str, int], request: Request | None = None,
               stock: dict[str, int] | None = None) -> list[str]:
    """Every rule of the product and the request that ``grams`` (option -> g per portion) breaks."""
    request = request or Request()
    out: list[str] = []
    g = {o.id: grams.get(o.id, 0) for o in product.options}
    used = {k for k, v in g.items() if v}
    for o in product.options:
        if g[o.id] and g[o.id] not in range(o.min_g, o.max_g + 1, o.step_g):
            out.append(f"amount {o.id} {g[o.id]}")
    total = sum(g.values())
    if not product.min_total_g <= total <= product.max_total_g:
        out.append("total")
    for m in product.modules:
        ids = [o.id for o in product.options if o.module == m.id]
        if not m.min_options <= sum(1 for i in ids if g[i]) <= m.max_options:
            out.append(f"module options {m.id}")
        if not m.min_g <= sum(g[i] for i in ids) <= m.max_g:
            out.append(f"module grams {m.id}")
    price = sum(D(o.price) * g[o.id] / 100 for o in product.options)
    for cap in (product.max_price, request.max_price):
        if cap is not None and price > D(cap):
            out.append(f"price {price} > {cap}")
    amount = {n: sum(D(o.nutrition[n]) * g[o.id] / 100 for o in product.options) for n in NUTRIENTS}
    limits = [(lim.nutrient, lim.min, lim.max) for lim in product.limits]
    limits += [(n, lo, hi) for n, (lo, hi) in request.limits.items()]
    for n, lo, hi in limits:
        if lo is not None and amount[n] < D(lo):
            out.append(f"{n} {amount[n]} < {lo}")
        if hi is not None and amount[n] > D(hi):
            out.append(f"{n} {amount[n]} > {hi}")
    for o in product.options:
        if o.id in used:
            out += [f"{o.id} excludes {x}" for x in o.excludes if x in used]
            if o.requires_one_of and not used & set(o.requires_one_of):
                out.append(f"{o.id} requires")
            out += [f"allergen {a} in {o.id}" for a in o.allergens if a in request.exclude_allergens]
        left = (stock or {}).get(o.id, o.stock_g)
        if left is not None and g[o.id] * product.portions > left:
            out.append(f"stock {o.id}")
    out += [f"required {r}" for r in request.require if r not in used]
    out += [f"excluded {x}" for x in request.exclude if x in used]
    return out


def grams_of(config: Configuration) -> dict[str, int]:
    return {i.option: i.grams for i in config.items}


def taste(**weights: float) -> Taste:
    return Taste({k.replace("__", ":").replace("_", "-"): v for k, v in weights.items()},
                 {k: "test" for k in weights})


# -- the packaged cereal mix -------------------------------------------------------------------------


def test_packaged_cereal_mix_loads_with_every_sample_mix_component():
    from xrm.sample._catalogue import MIX_COMPONENTS

    names = {o.name for o in CEREAL.options}
    assert set(MIX_COMPONENTS) <= names  # the sample's subscription mixes name real options
    assert {m.id for m in CEREAL.modules} == {"base", "fruit", "nuts", "seeds", "sweetener", "extras"}


@pytest.mark.parametrize("weights", [
    {}, {"chocolate": 1.0, "sweet": 0.5}, {"nuts": 1.0, "honey": 0.8}, {"fruit": 1.0, "sweet": -1.0},
    {"option:zartbitter": 1.0, "option:rosinen": 1.0}, {t: 1.0 for t in TAGS},
])
def test_solutions_meet_every_constraint(weights):
    config = solve(CEREAL, Taste(weights))
    assert config.status == "optimal"
    assert violations(CEREAL, grams_of(config)) == []
    price = sum(D(o.price) * grams_of(config).get(o.id, 0) / 100 for o in CEREAL.options)
    assert D(config.price) == price


def test_different_needs_give_different_mixes():
    chocolate = grams_of(solve(CEREAL, taste(chocolate=1.0, crunchy=0.5)))
    fruit = grams_of(solve(CEREAL, taste(fruit=1.0, sweet=-1.0, wholegrain=0.5)))
    nuts = grams_of(solve(CEREAL, taste(nuts=1.0)))
    assert "zartbitter" in chocolate and "zartbitter" not in fruit
    assert {"apfel", "cranberries", "rosinen", "banane"} & set(fruit)
    assert {"walnuss", "haselnuss", "mandeln"} & set(nuts)
    assert len({tuple(sorted(x.items())) for x in (chocolate, fruit, nuts)}) == 3


def test_explanation_names_preferences_and_binding_constraints():
    config = solve(CEREAL, Taste({"fruit": 1.0}, {"fruit": "bought Früchtemüsli 4×"}))
    words = config.words()
    assert "you like fruit (bought Früchtemüsli 4×)" in words
    # Sugar caps the dried fruit: the explanation says so, and without the cap the best mix is sweeter.
    assert "limit: sugar ≤ 12 g per portion" in config.bound
    assert "Bound by limit: sugar ≤ 12 g per portion" in words
    loose = parse_product(_cereal_text().replace("max = 12.0", "max = 40.0"), "loose.toml")
    more = solve(loose, Taste({"fruit": 1.0}))
    assert more.nutrition["sugar"] > 12 and more.objective > config.objective


def test_infeasible_request_names_a_minimal_set_of_conflicts():
    request = request_from(CEREAL, exclude_allergens=["gluten"], max_price=0.5)
    with pytest.raises(ConfigurationInfeasible) as info:
        solve(CEREAL, Taste(), request)
    assert set(info.value.conflicts) == {
        "your budget: price ≤ 0.50 € per portion",
        "limit: protein ≥ 8 g per portion",
        "your allergen exclusion: no gluten",
    }
    assert "your allergen exclusion: no gluten" in str(info.value)
    # Each one alone is what breaks it: drop any of the three and a mix exists.
    solve(CEREAL, Taste(), request_from(CEREAL, max_price=0.5))
    solve(CEREAL, Taste(), request_from(CEREAL, exclude_allergens=["gluten"]))
    text = _cereal_text().replace('nutrient = "protein"\nmin = 8.0', 'nutrient = "protein"\nmin = 0.0')
    no_protein = parse_product(text, "p.toml")
    solve(no_protein, Taste(), request_from(no_protein, exclude_allergens=["gluten"], max_price=0.5))


def test_required_option_against_a_rule_and_a_limit():
    with pytest.raises(ConfigurationInfeasible) as info:
        solve(CEREAL, Taste(), request_from(CEREAL, require=["rosinen", "zartbitter"]))
    assert info.value.conflicts == [
        "rule: Rosinen excludes Zartbitter-Splitter", "your request: include Rosinen",
        "your request: include Zartbitter-Splitter",
    ]
    with pytest.raises(ConfigurationInfeasible) as info:
        solve(CEREAL, Taste(), request_from(CEREAL, require=["chia"], exclude_allergens=["gluten"]))
    assert "rule: Chiasamen requires one of Haferflocken, Dinkelflakes" in info.value.conflicts


def test_bad_requests_are_named():
    with pytest.raises(InputError, match="exclude_allergens = 'nut': no option of cereal-mix lists it"):
        request_from(CEREAL, exclude_allergens=["nut"])
    with pytest.raises(InputError, match="require = 'marzipan': cereal-mix has no such option"):
        request_from(CEREAL, require=["marzipan"])
    with pytest.raises(InputError, match="salt_max = 1: not a known request"):
        request_from(CEREAL, salt_max=1)


# -- property: random needs, random tightenings --------------------------------------------------------

weights_st = st.dictionaries(
    st.sampled_from(TAGS + [f"option:{o.id}" for o in CEREAL.options]),
    st.floats(-1, 1, allow_nan=False).map(lambda x: round(x, 2)), max_size=6,
)
request_st = st.fixed_dictionaries({
    "max_price": st.none() | st.sampled_from([0.3, 0.45, 0.6, 0.9, 1.2]),
    "sugar_max": st.none() | st.sampled_from([2.0, 5.0, 8.0, 10.0]),
    "protein_min": st.none() | st.sampled_from([9.0, 11.0, 13.0]),
    "fat_max": st.none() | st.sampled_from([6.0, 10.0, 15.0]),
    "exclude_allergens": st.lists(st.sampled_from(sorted(CEREAL.allergens)), max_size=2, unique=True),
    "require": st.lists(st.sampled_from([o.id for o in CEREAL.options]), max_size=2, unique=True),
    "exclude": st.lists(st.sampled_from([o.id for o in CEREAL.options]), max_size=2, unique=True),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weights=weights_st, constraints=request_st, sensitivity=st.sampled_from([0.5, 1.0, 2.0]))
def test_property_every_solution_meets_every_constraint(weights, constraints, sensitivity):
    request = request_from(CEREAL, **constraints)
    try:
        config = solve(CEREAL, Taste(weights, price_sensitivity=sensitivity), request, explain=False)
    except ConfigurationInfeasible as exc:
        assert exc.conflicts and all(isinstance(c, str) and c for c in exc.conflicts)
        return
    assert violations(CEREAL, grams_of(config), request) == []


# -- brute force on a small product ---------------------------------------------------------------------

SMALL = """
[product]
id = "small"
name = "Small mix"
portions = 2
total_g = [20, 40]
max_price = 0.50

[objective]
cost_weight = 0.2
price_weight = 0.1

[[limit]]
nutrient = "sugar"
max = 6.0

[[limit]]
nutrient = "protein"
min = 3.0

[[module]]
id = "base"
options = [1, 1]
grams = [10, 30]

[[module]]
id = "top"
options = [0, 2]
grams = [0, 15]

[[option]]
id = "oats"
module = "base"
name = "Oats"
grams = [10, 30, 10]
price = 0.40
cost = 0.20
nutrition = { kcal = 370, sugar = 1.0, protein = 13.0, fibre = 10.0, fat = 7.0 }
allergens = ["gluten"]
tags = ["oats"]

[[option]]
id = "corn"
module = "base"
name = "Corn"
grams = [10, 30, 10]
price = 0.80
cost = 0.30
nutrition = { kcal = 380, sugar = 8.0, protein = 7.0, fibre = 3.0, fat = 1.0 }
tags = ["crunchy", "sweet"]

[[option]]
id = "raisin"
module = "top"
name = "Raisin"
grams = [5, 10, 5]
price = 0.90
cost = 0.40
nutrition = { kcal = 300, sugar = 59.0, protein = 3.0, fibre = 4.0, fat = 0.5 }
stock_g = 15
tags = ["fruit", "sweet"]
excludes = ["choc"]

[[option]]
id = "choc"
module = "top"
name = "Choc"
grams = [5, 10, 5]
price = 2.00
cost = 1.00
nutrition = { kcal = 540, sugar = 45.0, protein = 6.5, fibre = 9.0, fat = 33.0 }
allergens = ["milk"]
tags = ["chocolate", "sweet"]
requires_one_of = ["oats"]

[[option]]
id = "almond"
module = "top"
name = "Almond"
grams = [5, 10, 5]
price = 2.60
cost = 1.40
nutrition = { kcal = 600, sugar = 4.4, protein = 24.0, fibre = 12.5, fat = 52.0 }
allergens = ["nuts"]
tags = ["nuts"]
"""
SMALL_P = parse_product(SMALL, "small.toml")


def _score(product: Product, t: Taste, grams: dict[str, int]) -> int:
    from xrm.customize._taste import option_taste

    return sum(
        grams[o.id] * round(100 * option_taste(t, o) - product.cost_weight * round(o.cost * 100)
                            - product.price_weight * t.price_sensitivity * round(o.price * 100))
        for o in product.options
    )


def _every(product: Product):
    for combo in itertools.product(*[[0, *o.amounts()] for o in product.options]):
        yield dict(zip([o.id for o in product.options], combo, strict=True))


small_tags = sorted({t for o in SMALL_P.options for t in o.tags})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    weights=st.dictionaries(st.sampled_from(small_tags), st.floats(-1, 1).map(lambda x: round(x, 2)),
                            max_size=4),
    constraints=st.fixed_dictionaries({
        "max_price": st.none() | st.sampled_from([0.08, 0.15, 0.3]),
        "sugar_max": st.none() | st.sampled_from([0.5, 2.0, 4.0]),
        "protein_min": st.none() | st.sampled_from([4.0, 5.0]),
        "exclude_allergens": st.lists(st.sampled_from(["gluten", "milk", "nuts"]), max_size=2, unique=True),
        "require": st.lists(st.sampled_from(["raisin", "choc", "almond", "corn"]), max_size=2, unique=True),
    }),
)
def test_brute_force_agrees_on_optimum_infeasibility_and_minimal_conflicts(weights, constraints):
    request = request_from(SMALL_P, **constraints)
    t = Taste(weights)
    feasible = [g for g in _every(SMALL_P) if not violations(SMALL_P, g, request)]
    try:
        config = solve(SMALL_P, t, request, explain=False)
    except ConfigurationInfeasible as exc:
        assert not feasible, "the solver called a feasible request infeasible"
        every = list(_every(SMALL_P))
        # The conflicts, read as the words say, cannot hold together ...
        assert not any(all(holds(SMALL_P, c, g) for c in exc.conflicts) for g in every), exc.conflicts
        # ... and are minimal: without any one of them, the others can.
        for name in exc.conflicts:
            rest = [c for c in exc.conflicts if c != name]
            assert any(all(holds(SMALL_P, c, g) for c in rest) for g in every), (name, exc.conflicts)
        return
    assert feasible
    assert violations(SMALL_P, grams_of(config), request) == []
    assert _score(SMALL_P, t, {**{o.id: 0 for o in SMALL_P.options}, **grams_of(config)}) == \
        max(_score(SMALL_P, t, g) for g in feasible)


def holds(product: Product, name: str, g: dict[str, int]) -> bool:
    """Whether configuration ``g`` meets the constraint a conflict names, read from its words alone."""
    by_name = {o.name: o for o in product.options}
    used = {k for k, v in g.items() if v}

    def total(expr: dict[str, Decimal]) -> Decimal:
        return sum((expr[o.id] * g[o.id] / 100 for o in product.options), Decimal(0))

    if m := re.fullmatch(r"total weight (\d+)–(\d+) g per portion", name):
        return int(m[1]) <= sum(g.values()) <= int(m[2])
    if m := re.fullmatch(r"module (.+): (\d+)–(\d+) (options|g)", name):
        mod = next(x for x in product.modules if x.name == m[1])
        ids = [o.id for o in product.options if o.module == mod.id]
        n = sum(1 for i in ids if g[i]) if m[4] == "options" else sum(g[i] for i in ids)
        return int(m[2]) <= n <= int(m[3])
    if m := re.fullmatch(r"(?:the house|your) budget: price ≤ ([\d.]+) € per portion", name):
        return total({o.id: D(o.price) for o in product.options}) <= Decimal(m[1])
    if m := re.fullmatch(r"(?:limit|your limit): (\w+) (≥|≤) ([\d.]+) (?:g|kcal) per portion", name):
        amount = total({o.id: D(o.nutrition[m[1]]) for o in product.options})
        return amount >= Decimal(m[3]) if m[2] == "≥" else amount <= Decimal(m[3])
    if m := re.fullmatch(r"rule: (.+) excludes (.+)", name):
        return not {by_name[m[1]].id, by_name[m[2]].id} <= used
    if m := re.fullmatch(r"rule: (.+) requires one of (.+)", name):
        return by_name[m[1]].id not in used or any(by_name[x].id in used for x in m[2].split(", "))
    if m := re.fullmatch(r"your allergen exclusion: no (.+)", name):
        return not any(m[1] in o.allergens for o in product.options if o.id in used)
    if m := re.fullmatch(r"your request: (include|leave out) (.+)", name):
        return (by_name[m[2]].id in used) == (m[1] == "include")
    if m := re.fullmatch(r"stock: ([\d,]+) g of (.+) left, a box of (\d+) portions takes .*", name):
        return g[by_name[m[2]].id] * int(m[3]) <= int(m[1].replace(",", ""))
    raise AssertionError(f"a conflict the test cannot read: {name!r}")


# -- product files ------------------------------------------------------------------------------------


def _cereal_text() -> str:
    from importlib import resources

    return resources.files("xrm.customize").joinpath("data", "cereal_mix.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("change", "expected"), [
    (('price = 0.40\n', 'price = 0.405\n'),
     r"bad\.toml line \d+ \(option haferflocken\): price = 0\.405: has more than 2 decimal place\(s\); "
     r"round it to 2 place\(s\) \(EUR per 100 g"),
    (('excludes = ["zartbitter"]', 'excludes = ["schokolade"]'),
     r"line \d+ \(option rosinen\): excludes = 'schokolade': names no other option; use one of"),
    (('module = "nuts"\nname = "Walnüsse"', 'module = "nut"\nname = "Walnüsse"'),
     r"\(option walnuss\): module = 'nut': is not a declared \[\[module\]\]; use one of base, extras"),
    (('grams = [10, 50, 5]', 'grams = [50, 10, 5]'), r"grams = \[50, 10, 5\]: min is greater than max; swap"),
    (('nutrition = { kcal = 372, sugar = 0.7,', 'nutrition = { kcal = 372, salt = 0.7,'),
     r"(?s)nutrition\.sugar = None: is missing; add sugar .*nutrition\.salt = 0\.7: is not a known nutrient"),
    (('nutrient = "sugar"', 'nutrient = "sugars"'), r"\(limit sugars\): nutrient = 'sugars': is not a known"),
    (('stock_g = 4000000', 'stock_g = -5'), r"stock_g = -5: must be >= 0"),
    (('options = [1, 2]', 'options = 2'), r"\(module base\): options = 2: must be \[min, max\]"),
    (('portions = 14 ', 'portion = 14 '), r"\(product\): portion = 14: is not a known field"),
    (('[product]', '[product'), r"bad\.toml: not valid TOML"),
])
def test_bad_product_files_give_clear_errors(tmp_path, change, expected):
    old, new = change
    text = _cereal_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError, match=expected):
        load_product(path)


def test_product_file_errors_name_the_right_line(tmp_path):
    text = _cereal_text().replace("price = 2.60", "price = -2.60")
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_product(path)
    line = int(str(info.value).split(" line ")[1].split()[0])
    block = "\n".join(text.splitlines()[line - 1:line + 3])
    assert block.startswith("[[option]]") and 'id = "mandeln"' in block
    assert "price = -2.6: must be >= 0" in str(info.value)


def test_missing_product_file_and_wrong_suffix(tmp_path):
    with pytest.raises(InputError, match="no such product file"):
        load_product(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="give a packaged product"):
        load_product("muesli")


# -- the store: customers, segments, batch ------------------------------------------------------------

CEREAL_NAMES = {"MUE-001": "Knusper-Müsli Schoko 750 g", "MUE-008": "Früchtemüsli ohne Zucker 750 g",
                "MUE-006": "Granola Nuss-Honig 400 g", "KAF-001": "Espresso Classico 1 kg Bohnen"}


def _shop(store: Store) -> None:
    """Three kinds of customers: chocolate, fruit without sugar, nuts; plus coffee-only ones."""
    orders = []
    kinds = {"choc": "MUE-001", "fruit": "MUE-008", "nuts": "MUE-006", "coffee": "KAF-001"}
    for kind, product in kinds.items():
        for c in range(4):
            for b in range(3):
                orders.append((f"{kind}{c}", f"o-{kind}{c}-{b}", T0 + days(20 * b + c), [product]))
    write_orders(store, orders, CEREAL_NAMES)
    with store.transaction() as tx:  # an earlier personal mix, as the sample's subscriptions record it
        tx.execute(
            "INSERT INTO events (message_id, type, event, user_id, ts, properties) VALUES "
            "('sub-1', 'track', 'Subscription Started', 'fruit0', ?, ?)",
            [T0, json.dumps({"mix": ["Cranberries", "Chiasamen", "Haferflocken", "Zimt"]})],
        )


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the shop's orders and needs segments, built once (needs take seconds) and copied."""
    from xrm.differentiate import build_needs

    path = tmp_path_factory.mktemp("shop") / "xrm.duckdb"
    with Store.open(Settings(store_path=path, memory_limit="2GB", threads=2)) as store:
        _shop(store)
        build_needs(store, k=2)
    return path


@pytest.fixture
def shop(shop_file: Path, settings: Settings) -> Iterator[Store]:
    shutil.copy(shop_file, settings.store_path)
    with Store.open(settings) as store:
        yield store


def test_configure_a_customer_from_their_purchases_and_store_it(shop):
    store = shop
    config = configure(store, "choc1")
    assert "zartbitter" in grams_of(config)
    assert "bought Knusper-Müsli Schoko 750 g 3×" in config.words()
    assert violations(CEREAL, grams_of(config)) == []
    fruit = configure(store, "fruit0")
    assert "you picked it (in your own mix of 2026-01-01)" in fruit.words()
    assert "zartbitter" not in grams_of(fruit)
    rows = read_configurations(store, customer="choc1")
    assert len(rows) == 1 and rows[0]["status"] == "optimal"
    assert {o["option"]: o["grams"] for o in rows[0]["options"]} == grams_of(config)
    nuts_free = configure(store, "nuts1", exclude_allergens=["nuts"])
    assert not {"walnuss", "haselnuss", "mandeln"} & set(grams_of(nuts_free))
    assert nuts_free.request == {"exclude_allergens": ("nuts",)}


def test_customer_without_history_borrows_the_segment_taste(shop):
    store = shop
    config = configure(store, "coffee2", save=False)  # never bought cereal: the segment's taste
    assert config.taste_source == "borrowed from segment 'mixed baskets, mid-price, regular (2)' " \
        "(6 members with history)"
    assert "customers like you (segment 'mixed baskets, mid-price, regular (2)')" in config.words()
    unknown = configure(store, "nobody-at-all", save=False)
    assert unknown.taste_source.startswith("house default")
    assert violations(CEREAL, grams_of(unknown)) == []


def test_configure_segment_stores_a_row_per_customer_within_stock(shop):
    store = shop
    segments = store.sql("SELECT segment_id, description, customers FROM needs_segments").fetchall()
    # Scarce chocolate: a box takes 70-140 g; 200 g is two boxes at most.
    scarce = parse_product(_cereal_text().replace("stock_g = 300000\ntags = [\"chocolate\"",
                                                  "stock_g = 200\ntags = [\"chocolate\""), "scarce.toml")
    assert scarce.option("zartbitter").stock_g == 200
    total = 0
    used_choc = 0
    for _sid, desc, n in segments:
        summary = configure_segment(store, desc, scarce)
        assert summary["customers"] == n and summary["configured"] + summary["infeasible"] == n
        rows = read_configurations(store, batch_id=summary["batch_id"], limit=1000)
        assert len(rows) == n
        for r in rows:
            grams = {o["option"]: o["grams"] for o in r["options"]}
            assert violations(scarce, grams) == []
            used_choc += grams.get("zartbitter", 0) * scarce.portions
        total += n
    assert total == store.count("customer_needs") == store.count("configurations")
    assert used_choc <= 200
    with pytest.raises(NotFound, match="no needs segment 'gourmets'; give an id or a description"):
        configure_segment(store, "gourmets")


def test_segment_batch_with_an_infeasible_request_stores_the_conflicts(shop):
    store = shop
    summary = configure_segment(store, 0, exclude_allergens=["gluten"], max_price=0.5)
    assert summary["infeasible"] == summary["customers"] > 0
    rows = store.sql("SELECT status, conflicts FROM configurations WHERE batch_id = ?",
                     [summary["batch_id"]]).fetchall()
    assert {r[0] for r in rows} == {"infeasible"}
    assert "your allergen exclusion: no gluten" in rows[0][1]


# -- CLI --------------------------------------------------------------------------------------------------

runner = CliRunner()


def _app(store_path: Path) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CliState({"store_path": store_path})

    app.add_typer(offers_app, name="offers")
    return app


def test_cli_configure_customer_segment_and_infeasible(shop_file, settings):
    shutil.copy(shop_file, settings.store_path)
    app = _app(settings.store_path)
    out = runner.invoke(app, ["offers", "configure", "--customer", "choc0", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["customer"] == "choc0" and any(i["option"] == "zartbitter" for i in data["items"])
    out = runner.invoke(app, ["offers", "configure", "--customer", "choc0"])
    assert out.exit_code == 0 and "Zartbitter-Splitter" in out.output
    out = runner.invoke(app, ["offers", "configure", "--customer", "choc0", "--json", "--max-price", "0.5",
                              "--exclude-allergen", "gluten"])
    assert out.exit_code == 1
    err = json.loads(out.stdout)
    assert err["error"] == "ConfigurationInfeasible"
    assert "your budget: price ≤ 0.50 € per portion" in err["conflicts"]
    out = runner.invoke(app, ["offers", "configure", "--segment", "0", "--json", "--limit", "sugar_max=9"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["configured"] == len(summary["first_rows"]) > 0
    assert all(r["nutrition"]["sugar"] <= 9 for r in summary["first_rows"])
    out = runner.invoke(app, ["offers", "configure", "--json"])
    assert out.exit_code == 1 and "give either --customer ID or --segment NAME" in out.stdout
