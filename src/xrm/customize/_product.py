"""A configurable product: modules with options, limits and compatibility rules, read from TOML.

    >>> product = load_product("cereal-mix")          # the packaged worked example
    >>> product = load_product("my_mix.toml")         # your own file

Every problem in a file is gathered into one :class:`~xrm.exceptions.InputError` naming the file,
the line, the field, the value, the rule and the fix.  Numbers are kept to the precision the
solver works in exactly (prices to the cent, nutrition to 0.1 per 100 g), so a configuration the
solver calls feasible is feasible in plain decimal arithmetic too.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from xrm.exceptions import InputError

__all__ = ["NUTRIENTS", "Limit", "Module", "Option", "Product", "load_product", "parse_product"]

NUTRIENTS: tuple[str, ...] = ("kcal", "sugar", "protein", "fibre", "fat")
_UNITS = {"kcal": "kcal"}  # the rest are grams
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_PACKAGED = {"cereal-mix": "cereal_mix.toml"}


def unit(nutrient: str) -> str:
    return _UNITS.get(nutrient, "g")


@dataclass(frozen=True)
class Option:
    """One choice within a module, e.g. 30 g of Haferflocken."""

    id: str
    module: str
    name: str
    min_g: int
    max_g: int
    step_g: int
    price: float                 # EUR per 100 g
    cost: float                  # EUR per 100 g
    nutrition: dict[str, float]  # per 100 g
    allergens: tuple[str, ...] = ()
    stock_g: int | None = None   # None: unlimited
    tags: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    requires_one_of: tuple[str, ...] = ()

    def amounts(self) -> list[int]:
        """Grams per portion this option may take when used."""
        return list(range(self.min_g, self.max_g + 1, self.step_g))


@dataclass(frozen=True)
class Module:
    id: str
    name: str
    min_options: int
    max_options: int
    min_g: int
    max_g: int


@dataclass(frozen=True)
class Limit:
    nutrient: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    portions: int
    min_total_g: int
    max_total_g: int
    max_price: float | None
    modules: tuple[Module, ...]
    options: tuple[Option, ...]
    limits: tuple[Limit, ...]
    cost_weight: float = 0.2
    price_weight: float = 0.1
    default_taste: dict[str, float] = field(default_factory=dict)
    product_signals: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""

    def option(self, option_id: str) -> Option:
        for o in self.options:
            if o.id == option_id:
                return o
        raise InputError(
            f"{self.id}: no option {option_id!r}; options are {', '.join(o.id for o in self.options)}"
        )

    def module(self, module_id: str) -> Module:
        return next(m for m in self.modules if m.id == module_id)

    @property
    def allergens(self) -> set[str]:
        return {a for o in self.options for a in o.allergens}


# -- reading ------------------------------------------------------------------------------------


class _Problems:
    """Collects problems with where they are, so one error lists them all."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.items: list[str] = []

    def line_of(self, header: str, n: int) -> int | None:
        found = [i for i, ln in enumerate(self.lines, 1) if ln.split("#")[0].strip() == header]
        return found[n] if n < len(found) else None

    def add(self, where: str, name: str, value: Any, rule: str, fix: str) -> None:
        self.items.append(f"{where}: {name} = {value!r}: {rule}; {fix}")


def _where(p: _Problems, header: str, n: int, label: str) -> str:
    line = p.line_of(header, n)
    return f"{p.path} line {line} ({label})" if line else f"{p.path} ({label})"


def _decimals_ok(value: float, places: int) -> bool:
    return abs(value * 10**places - round(value * 10**places)) < 1e-6


def _number(p: _Problems, where: str, name: str, value: Any, *, minimum: float = 0.0,
            places: int | None = None, integer: bool = False, fix: str = "") -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        p.add(where, name, value, "must be a number", fix or "write a plain number")
        return None
    if integer and not float(value).is_integer():
        p.add(where, name, value, "must be a whole number", fix or "round it")
        return None
    if value < minimum:
        p.add(where, name, value, f"must be >= {minimum:g}", fix or f"use {minimum:g} or more")
        return None
    if places is not None and not _decimals_ok(float(value), places):
        p.add(where, name, value, f"has more than {places} decimal place(s)",
              f"round it to {places} place(s) ({fix or 'the solver works exactly at that precision'})")
        return None
    return float(value)


def _range(p: _Problems, where: str, name: str, value: Any, n: int = 2) -> list[int] | None:
    shape = "[min, max]" if n == 2 else "[smallest, largest, step]"
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        p.add(where, name, value, f"must be {shape} in whole grams/counts >= 0", f"write e.g. {name} = "
              + ("[30, 60]" if n == 2 else "[10, 50, 5]"))
        return None
    if value[0] > value[1]:
        p.add(where, name, value, "min is greater than max", "swap the two numbers")
        return None
    return list(value)


def _strings(p: _Problems, where: str, name: str, value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        p.add(where, name, value, "must be a list of names", f'write e.g. {name} = ["a", "b"]')
        return None
    return tuple(value)


def _unknown(p: _Problems, where: str, table: dict[str, Any], known: set[str]) -> None:
    for key in sorted(set(table) - known):
        p.add(where, key, table[key], "is not a known field", f"use one of {', '.join(sorted(known))}")


def _weights(p: _Problems, where: str, name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and -2 <= v <= 2 for v in value.values()
    ):
        p.add(where, name, value, "must map tags to weights between -2 and 2",
              'write e.g. { oats = 1.0, sweet = -0.5 }')
        return {}
    return {str(k): float(v) for k, v in value.items()}


def _option(p: _Problems, raw: dict[str, Any], n: int, modules: set[str]) -> Option | None:
    label = f"option {raw.get('id', n + 1)!s}"
    where = _where(p, "[[option]]", n, label)
    before = len(p.items)
    known = {"id", "module", "name", "grams", "price", "cost", "nutrition", "allergens", "stock_g", "tags",
             "excludes", "requires_one_of"}
    _unknown(p, where, raw, known)
    for req in ("id", "module", "name", "grams", "price", "cost", "nutrition"):
        if req not in raw:
            p.add(where, req, None, "is required", f"add {req} = ... to this [[option]]")
    if p.items[before:]:
        return None
    oid = raw["id"]
    if not isinstance(oid, str) or not _ID.match(oid):
        p.add(where, "id", oid, "must be lower-case letters, digits and _ . - (up to 64)", "rename it")
    if raw["module"] not in modules:
        p.add(where, "module", raw["module"], "is not a declared [[module]]",
              f"use one of {', '.join(sorted(modules))} or declare it")
    grams = _range(p, where, "grams", raw["grams"], 3)
    if grams is not None and (grams[0] < 1 or grams[2] < 1):
        p.add(where, "grams", raw["grams"], "smallest amount and step must be >= 1 g",
              "an option that is not used simply takes 0 g; write e.g. [5, 15, 5]")
    price = _number(p, where, "price", raw["price"], places=2, fix="EUR per 100 g, to the cent")
    cost = _number(p, where, "cost", raw["cost"], places=2, fix="EUR per 100 g, to the cent")
    nutrition: dict[str, float] = {}
    nut = raw["nutrition"]
    if not isinstance(nut, dict):
        p.add(where, "nutrition", nut, "must be a table of nutrients per 100 g",
              "write e.g. nutrition = { kcal = 372, sugar = 0.7, protein = 13.5, fibre = 10.0, fat = 7.0 }")
    else:
        for k in NUTRIENTS:
            if k not in nut:
                p.add(where, f"nutrition.{k}", None, "is missing", f"add {k} (per 100 g; 0 if none)")
        for k, v in nut.items():
            if k not in NUTRIENTS:
                p.add(where, f"nutrition.{k}", v, "is not a known nutrient", f"use {', '.join(NUTRIENTS)}")
                continue
            x = _number(p, where, f"nutrition.{k}", v, places=1, fix="per 100 g, to 0.1")
            if x is not None:
                if k != "kcal" and x > 100:
                    p.add(where, f"nutrition.{k}", v, "is more than 100 g per 100 g", "check the unit")
                nutrition[k] = x
    stock = raw.get("stock_g")
    if stock is not None:
        stock = _number(p, where, "stock_g", stock, integer=True, fix="grams in stock, a whole number >= 0")
    lists = {k: _strings(p, where, k, raw.get(k, [])) for k in ("allergens", "tags", "excludes",
                                                                  "requires_one_of")}
    if p.items[before:]:
        return None
    assert grams is not None and price is not None and cost is not None
    return Option(
        id=oid, module=raw["module"], name=raw["name"], min_g=grams[0], max_g=grams[1], step_g=grams[2],
        price=price, cost=cost, nutrition=nutrition, stock_g=None if stock is None else int(stock),
        allergens=tuple(a.lower() for a in lists["allergens"] or ()), tags=lists["tags"] or (),
        excludes=lists["excludes"] or (), requires_one_of=lists["requires_one_of"] or (),
    )


def parse_product(text: str, path: str = "<product>") -> Product:
    """Parse and validate a product file's text; every problem is listed in one InputError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax and load again") from None
    p = _Problems(path, text)
    _unknown(p, path, data, {"product", "objective", "limit", "module", "option", "signals"})
    head = data.get("product")
    if not isinstance(head, dict):
        raise InputError(f"{path}: no [product] table; start the file with [product] id = ... name = ...")
    where = _where(p, "[product]", 0, "product")
    _unknown(p, where, head, {"id", "name", "portions", "total_g", "max_price"})
    pid = head.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        p.add(where, "id", pid, "must be lower-case letters, digits and _ . - (up to 64)",
              'e.g. id = "my-mix"')
    portions = _number(p, where, "portions", head.get("portions", 1), minimum=1, integer=True,
                       fix="portions per box, a whole number >= 1")
    total = _range(p, where, "total_g", head.get("total_g"))
    max_price = head.get("max_price")
    if max_price is not None:
        max_price = _number(p, where, "max_price", max_price, places=2, fix="EUR per portion, to the cent")

    obj = data.get("objective", {})
    owhere = _where(p, "[objective]", 0, "objective")
    _unknown(p, owhere, obj, {"cost_weight", "price_weight", "default_taste"})
    cost_w = _number(p, owhere, "cost_weight", obj.get("cost_weight", 0.2))
    price_w = _number(p, owhere, "price_weight", obj.get("price_weight", 0.1))
    default_taste = _weights(p, owhere, "default_taste", obj.get("default_taste", {}))

    modules: list[Module] = []
    for n, raw in enumerate(data.get("module", [])):
        mwhere = _where(p, "[[module]]", n, f"module {raw.get('id', n + 1)!s}")
        _unknown(p, mwhere, raw, {"id", "name", "options", "grams"})
        mid = raw.get("id")
        if not isinstance(mid, str) or not _ID.match(mid):
            p.add(mwhere, "id", mid, "must be lower-case letters, digits and _ . -", 'e.g. id = "base"')
            continue
        if mid in {m.id for m in modules}:
            p.add(mwhere, "id", mid, "is declared twice", "give each module its own id")
            continue
        counts = _range(p, mwhere, "options", raw.get("options", [0, 1]))
        grams = _range(p, mwhere, "grams", raw.get("grams"))
        if counts and grams:
            modules.append(Module(mid, str(raw.get("name", mid)), counts[0], counts[1], grams[0], grams[1]))
    if not data.get("module"):
        p.add(path, "module", None, "no [[module]] tables", "declare at least one module")
    module_ids = {m.id for m in modules} | {str(r.get("id")) for r in data.get("module", [])}

    options: list[Option] = []
    position: dict[str, int] = {}  # option id -> its [[option]] table's number, for line numbers
    for n, raw in enumerate(data.get("option", [])):
        opt = _option(p, raw, n, module_ids)
        if opt is None:
            continue
        if opt.id in {o.id for o in options}:
            p.add(_where(p, "[[option]]", n, f"option {opt.id}"), "id", opt.id, "is declared twice",
                  "give each option its own id")
            continue
        options.append(opt)
        position[opt.id] = n
    # References are checked against every declared id, so one bad option does not cascade.
    ids = {o.id for o in options} | {str(r.get("id")) for r in data.get("option", []) if isinstance(r, dict)}
    for o in options:
        for name in ("excludes", "requires_one_of"):
            for ref in getattr(o, name):
                if ref not in ids or ref == o.id:
                    p.add(_where(p, "[[option]]", position[o.id], f"option {o.id}"), name, ref,
                          "names no other option" if ref != o.id else "names the option itself",
                          f"use one of {', '.join(sorted(ids - {o.id}))}")
    for m in modules:
        if not any(o.module == m.id for o in options) and m.min_options > 0:
            p.add(_where(p, "[[module]]", [x.id for x in modules].index(m.id), f"module {m.id}"), "options",
                  [m.min_options, m.max_options], "asks for options but the module has none",
                  "add [[option]] tables with this module, or set options = [0, ...]")

    limits: list[Limit] = []
    for n, raw in enumerate(data.get("limit", [])):
        lwhere = _where(p, "[[limit]]", n, f"limit {raw.get('nutrient', n + 1)!s}")
        _unknown(p, lwhere, raw, {"nutrient", "min", "max"})
        nutrient = raw.get("nutrient")
        if nutrient not in NUTRIENTS:
            p.add(lwhere, "nutrient", nutrient, "is not a known nutrient", f"use {', '.join(NUTRIENTS)}")
            continue
        lo = raw.get("min")
        hi = raw.get("max")
        if lo is None and hi is None:
            p.add(lwhere, "min/max", None, "a limit needs min, max or both",
                  f"add e.g. max = 12 ({nutrient})")
            continue
        lo = None if lo is None else _number(p, lwhere, "min", lo, places=2, fix="per portion, to 0.01")
        hi = None if hi is None else _number(p, lwhere, "max", hi, places=2, fix="per portion, to 0.01")
        if lo is not None and hi is not None and lo > hi:
            p.add(lwhere, "min", lo, f"is above max = {hi:g}", "swap them")
        limits.append(Limit(nutrient, lo, hi))

    signals = data.get("signals", {})
    swhere = _where(p, "[signals.products]", 0, "signals")
    _unknown(p, swhere, signals, {"products"})
    prod_signals = {
        str(k): _weights(p, swhere, f"products.{k!s}", v) for k, v in signals.get("products", {}).items()
    }
    if p.items:
        shown = "\n  ".join(p.items[:50])
        raise InputError(f"{len(p.items)} problem(s) in product file {path}:\n  {shown}")
    assert total is not None and portions is not None and cost_w is not None and price_w is not None
    assert isinstance(pid, str)
    return Product(
        id=pid, name=str(head.get("name", pid)), portions=int(portions), min_total_g=total[0],
        max_total_g=total[1], max_price=max_price, modules=tuple(modules), options=tuple(options),
        limits=tuple(limits), cost_weight=cost_w, price_weight=price_w, default_taste=default_taste,
        product_signals=prod_signals, source=path,
    )


def load_product(name_or_path: str | Path = "cereal-mix") -> Product:
    """A packaged product by id (``cereal-mix``) or a product file (``.toml``)."""
    key = str(name_or_path)
    if key in _PACKAGED:
        ref = resources.files("xrm.customize").joinpath("data", _PACKAGED[key])
        return parse_product(ref.read_text(encoding="utf-8"), f"xrm/customize/data/{_PACKAGED[key]}")
    path = Path(name_or_path)
    if path.suffix.lower() != ".toml":
        raise InputError(
            f"product {key!r}: give a packaged product ({', '.join(_PACKAGED)}) or a .toml product file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such product file") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    return parse_product(text, str(path))
