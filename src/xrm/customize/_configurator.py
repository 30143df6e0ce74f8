"""Mass customization: the product configuration that best fits one customer, found with CP-SAT.

    >>> configure(store, "p-17")                                   # doctest: +SKIP
    >>> configure(store, "p-17", exclude_allergens=["nuts"], sugar_max=8)   # doctest: +SKIP
    >>> configure_segment(store, "Müsli & Cerealien lovers, online, budget, regular")  # doctest: +SKIP

A product (``_product``) is modules of options; a configuration gives each option 0 g or one of
its amounts.  Every rule of the product and of the request is one named group of constraints
behind one enforcement literal, and every literal is a CP-SAT *assumption*.  So when no
configuration exists, the solver's ``sufficient_assumptions_for_infeasibility()`` names groups that
conflict; a deletion filter (drop one, re-solve) then shrinks them to a minimal set, because the
solver's core need not be minimal and has been reported wrong after presolve (or-tools #5141).

The objective is the customer's taste in grams minus what the mix costs (see ``[objective]`` in the
product file), all in integers: grams, prices in cents per 100 g, nutrition in 0.1 units per 100 g;
the product file is validated to that precision, so the solver's arithmetic is exact.

Why each option is in the mix comes from the taste's reasons; which constraints *bound* is found
by relaxing each group alone and re-solving: a group binds when the optimum without it is better.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xrm.customize._product import NUTRIENTS, Option, Product, load_product, unit
from xrm.customize._taste import Taste, option_taste, tastes_for
from xrm.exceptions import ConfigurationInfeasible, InputError, NotFound
from xrm.store import Store

__all__ = [
    "Configuration",
    "Item",
    "Request",
    "configure",
    "configure_segment",
    "read_configurations",
    "request_from",
    "solve",
]

_TIME_LIMIT_S = 10.0


@dataclass(frozen=True)
class Request:
    """What one customer asks for on top of the product's own rules (all optional)."""

    max_price: float | None = None
    limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # nutrient: (min, max)
    exclude_allergens: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, (), {}, [])}


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


def request_from(product: Product, **constraints: Any) -> Request:
    """A request from keywords: max_price, exclude_allergens, require, exclude, <nutrient>_min/_max."""
    limits: dict[str, tuple[float | None, float | None]] = {}
    problems: list[str] = []
    max_price = None
    for key, value in constraints.items():
        if value is None:
            continue
        if key in ("exclude_allergens", "require", "exclude"):
            continue
        if key == "max_price":
            max_price = _positive(key, value, problems)
            continue
        nutrient, _, side = key.rpartition("_")
        if nutrient in NUTRIENTS and side in ("min", "max"):
            x = _positive(key, value, problems)
            lo, hi = limits.get(nutrient, (None, None))
            limits[nutrient] = (x, hi) if side == "min" else (lo, x)
            continue
        problems.append(
            f"{key} = {value!r}: not a known request; use max_price, exclude_allergens, require, exclude "
            f"or <nutrient>_min / <nutrient>_max with nutrient one of {', '.join(NUTRIENTS)}"
        )
    allergens = tuple(a.lower() for a in _as_list(constraints.get("exclude_allergens")))
    known = product.allergens
    for a in allergens:
        if a not in known:
            problems.append(f"exclude_allergens = {a!r}: no option of {product.id} lists it; "
                            f"known allergens are {', '.join(sorted(known))}")
    ids = {o.id for o in product.options}
    require, exclude = _as_list(constraints.get("require")), _as_list(constraints.get("exclude"))
    for name, values in (("require", require), ("exclude", exclude)):
        for v in values:
            if v not in ids:
                problems.append(
                    f"{name} = {v!r}: {product.id} has no such option; use one of {', '.join(sorted(ids))}"
                )
    if problems:
        raise InputError("bad configuration request:\n  " + "\n  ".join(problems))
    return Request(max_price, limits, allergens, require, exclude)


def _positive(key: str, value: Any, problems: list[str]) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        problems.append(f"{key} = {value!r}: not a number; write e.g. {key} = 8")
        return None
    if x < 0:
        problems.append(f"{key} = {value!r}: must be >= 0")
        return None
    return round(x, 2)


@dataclass(frozen=True)
class Item:
    option: str
    module: str
    name: str
    grams: int


@dataclass
class Configuration:
    """One customer's configured product: the mix, its numbers and why."""

    customer: str
    product_id: str
    status: str                      # optimal | feasible
    items: list[Item]
    total_g: int
    price: float                     # EUR per portion
    cost: float                      # EUR per portion
    nutrition: dict[str, float]      # per portion
    fit: float                       # mean taste per gram, -2..2
    objective: float
    taste_source: str
    explanation: list[str]
    bound: list[str]
    request: dict[str, Any] = field(default_factory=dict)
    segment_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [asdict(i) for i in self.items]
        return d

    def words(self) -> str:
        return " ".join(self.explanation)


# -- the CP-SAT model ---------------------------------------------------------------------------


def _cents(eur_per_100g: float) -> int:
    return round(eur_per_100g * 100)


def _tenths(per_100g: float) -> int:
    return round(per_100g * 10)


def _fmt(x: float) -> str:
    return f"{x:g}"


class _Model:
    """The model of one request: a variable per option and one literal per named constraint group."""

    def __init__(self, product: Product, request: Request, stock: dict[str, int] | None) -> None:
        from ortools.sat.python import cp_model

        self.product, self.request = product, request
        self.m = m = cp_model.CpModel()
        self.groups: list[tuple[str, Any]] = []
        self.g: dict[str, Any] = {}
        self.use: dict[str, Any] = {}
        for o in product.options:
            g = m.new_int_var_from_domain(cp_model.Domain.from_values([0, *o.amounts()]), f"g:{o.id}")
            u = m.new_bool_var(f"use:{o.id}")
            m.add(g >= o.min_g).only_enforce_if(u)
            m.add(g == 0).only_enforce_if(~u)
            self.g[o.id], self.use[o.id] = g, u
        total = sum(self.g.values())
        lit = self._group(f"total weight {product.min_total_g}–{product.max_total_g} g per portion")
        m.add_linear_constraint(total, product.min_total_g, product.max_total_g).only_enforce_if(lit)
        for mod in product.modules:
            opts = [o for o in product.options if o.module == mod.id]
            lit = self._group(f"module {mod.name}: {mod.min_options}–{mod.max_options} options")
            m.add_linear_constraint(sum(self.use[o.id] for o in opts), mod.min_options,
                                    mod.max_options).only_enforce_if(lit)
            lit = self._group(f"module {mod.name}: {mod.min_g}–{mod.max_g} g")
            grams = sum(self.g[o.id] for o in opts)
            m.add_linear_constraint(grams, mod.min_g, mod.max_g).only_enforce_if(lit)
        # Price: sum g * cents per 100 g = price in 1/10,000 EUR.
        budgets = [(product.max_price, "the house budget"), (request.max_price, "your budget")]
        for limit, who in budgets:
            if limit is not None:
                lit = self._group(f"{who}: price ≤ {limit:.2f} € per portion")
                m.add(sum(self.g[o.id] * _cents(o.price) for o in product.options)
                      <= round(limit * 10_000)).only_enforce_if(lit)
        # Nutrition: sum g * tenths per 100 g = amount in 1/1,000 units.
        for nutrient, lo, hi, who in self.limits():
            expr = sum(self.g[o.id] * _tenths(o.nutrition[nutrient]) for o in product.options)
            if lo is not None:
                lit = self._group(f"{who}: {nutrient} ≥ {_fmt(lo)} {unit(nutrient)} per portion")
                m.add(expr >= round(lo * 1000)).only_enforce_if(lit)
            if hi is not None:
                lit = self._group(f"{who}: {nutrient} ≤ {_fmt(hi)} {unit(nutrient)} per portion")
                m.add(expr <= round(hi * 1000)).only_enforce_if(lit)
        names = {o.id: o.name for o in product.options}
        for o in product.options:
            for other in o.excludes:
                lit = self._group(f"rule: {o.name} excludes {names[other]}")
                m.add(self.use[o.id] + self.use[other] <= 1).only_enforce_if(lit)
            if o.requires_one_of:
                lit = self._group(
                    f"rule: {o.name} requires one of {', '.join(names[r] for r in o.requires_one_of)}"
                )
                m.add_bool_or([self.use[r] for r in o.requires_one_of]).only_enforce_if([self.use[o.id], lit])
        for allergen in request.exclude_allergens:
            lit = self._group(f"your allergen exclusion: no {allergen}")
            for o in product.options:
                if allergen in o.allergens:
                    m.add(self.use[o.id] == 0).only_enforce_if(lit)
        for oid in request.require:
            lit = self._group(f"your request: include {names[oid]}")
            m.add(self.use[oid] == 1).only_enforce_if(lit)
        for oid in request.exclude:
            lit = self._group(f"your request: leave out {names[oid]}")
            m.add(self.use[oid] == 0).only_enforce_if(lit)
        for o in product.options:
            left = (stock or {}).get(o.id, o.stock_g)
            if left is not None and left < o.max_g * product.portions:  # only stock that can bind
                box = f"{o.min_g * product.portions:,}–{o.max_g * product.portions:,} g"
                lit = self._group(f"stock: {left:,} g of {o.name} left, a box of {product.portions} "
                                  f"portions takes {box}")
                m.add(self.g[o.id] * product.portions <= left).only_enforce_if(lit)

    def limits(self) -> list[tuple[str, float | None, float | None, str]]:
        """(nutrient, min, max, whose rule) with the request tightening the product's limits."""
        out = []
        for lim in self.product.limits:
            out.append((lim.nutrient, lim.min, lim.max, "limit"))
        for nutrient, (lo, hi) in self.request.limits.items():
            out.append((nutrient, lo, hi, "your limit"))
        return out

    def _group(self, name: str) -> Any:
        lit = self.m.new_bool_var(name)
        self.groups.append((name, lit))
        return lit

    def objective(self, taste: Taste) -> dict[str, int]:
        """Integer coefficient per gram of each option (x100): taste - cost - price."""
        p = self.product
        coef = {
            o.id: round(100 * option_taste(taste, o) - p.cost_weight * _cents(o.cost)
                        - p.price_weight * taste.price_sensitivity * _cents(o.price))
            for o in p.options
        }
        self.m.maximize(sum(self.g[k] * c for k, c in coef.items()))
        return coef

    def solve(self, active: Iterable[int]) -> tuple[str, dict[str, int]]:
        """Solve with the groups numbered ``active`` enforced; (status, grams) or (status, {})."""
        from ortools.sat.python import cp_model

        self.m.clear_assumptions()
        self.m.add_assumptions([self.groups[i][1] for i in active])
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1     # deterministic, and cores come back reliably
        solver.parameters.random_seed = 0
        solver.parameters.max_time_in_seconds = _TIME_LIMIT_S
        solver.parameters.linearization_level = 2  # the limits are knapsack rows: LP cuts pay off
        status = solver.solve(self.m)
        self.last = solver
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return solver.status_name(status).lower(), {k: int(solver.value(v)) for k, v in self.g.items()}
        return solver.status_name(status).lower(), {}

    def core(self) -> list[str]:
        """A minimal set of constraint groups that cannot hold together."""
        every = list(range(len(self.groups)))
        status, _ = self.solve(every)
        if status != "infeasible":
            raise InputError(f"the solver ended with status {status!r} before proving the request "
                             f"infeasible; it had {_TIME_LIMIT_S:g} s")
        index = {lit.index: i for i, (_, lit) in enumerate(self.groups)}
        core = sorted({index[v] for v in self.last.sufficient_assumptions_for_infeasibility() if v in index})
        if not core or self.solve(core)[0] != "infeasible":
            core = every
        for i in list(core):  # deletion filter: what is left is minimal
            trial = [j for j in core if j != i]
            if self.solve(trial)[0] == "infeasible":
                core = trial
        return [self.groups[i][0] for i in core]


# -- solving one request --------------------------------------------------------------------------


def _numbers(product: Product, grams: dict[str, int]) -> tuple[float, float, dict[str, float]]:
    price = sum(g * _cents(o.price) for o in product.options if (g := grams[o.id])) / 10_000
    cost = sum(g * _cents(o.cost) for o in product.options if (g := grams[o.id])) / 10_000
    nutrition = {n: sum(grams[o.id] * _tenths(o.nutrition[n]) for o in product.options) / 1000
                 for n in NUTRIENTS}
    return price, cost, nutrition


def _diff(product: Product, before: dict[str, int], after: dict[str, int]) -> str:
    words = []
    for o in product.options:
        a, b = before[o.id], after[o.id]
        if a != b:
            words.append(f"{o.name} {a} → {b} g" if a and b else f"+{o.name} {b} g" if b else f"−{o.name}")
    return ", ".join(words)


def _likes(taste: Taste, option: Option) -> list[str]:
    """The taste's words for an option, strongest first."""
    keys = [*option.tags, f"option:{option.id}"]
    ranked = sorted((k for k in keys if taste.weights.get(k, 0) > 0), key=lambda k: -taste.weights[k])
    out = []
    for k in ranked[:2]:
        label = "you picked it" if k.startswith("option:") else f"you like {k}"
        reason = taste.reasons.get(k, "")
        out.append(f"{label} ({reason})" if reason else label)
    return out


def _bound(
    model: _Model, coef: dict[str, int], grams: dict[str, int], value: int, words: list[str]
) -> list[str]:
    """Groups that bound the optimum, each with what the mix would become without it.

    One feasibility solve asks for a strictly better mix under every group: its core names the
    groups that together forbid one.  Each of those is then relaxed alone; it *binds* when the
    optimum without it is better.  (Relaxing every group would cost a solve per group.)
    """
    every = list(range(len(model.groups)))
    probe = model.m.clone()
    probe.clear_objective()
    probe.add(sum(model.g[k] * c for k, c in coef.items()) >= value + 1)
    original, model.m = model.m, probe
    try:
        status, _ = model.solve(every)
        index = {lit.index: i for i, (_, lit) in enumerate(model.groups)}
        found = model.last.sufficient_assumptions_for_infeasibility() if status == "infeasible" else []
        core = sorted({index[v] for v in found if v in index})
    finally:
        model.m = original
    bound = []
    for i in core:
        _, relaxed = model.solve([j for j in every if j != i])
        if relaxed and sum(coef[k] * g for k, g in relaxed.items()) > value:
            name = model.groups[i][0]
            bound.append(name)
            words.append(f"Bound by {name} (without it: {_diff(model.product, grams, relaxed)}).")
    return bound


def solve(
    product: Product, taste: Taste, request: Request | None = None, *, customer: str = "",
    stock: dict[str, int] | None = None, explain: bool = True, why_not: int = 2,
) -> Configuration:
    """The best configuration for a taste under every constraint; raises ConfigurationInfeasible.

    ``explain`` adds why each option is in and which constraints bound; ``why_not`` explains that
    many liked options that were left out (each costs a solve; batches use 0).
    """
    request = request or Request()
    model = _Model(product, request, stock)
    coef = model.objective(taste)
    every = list(range(len(model.groups)))
    status, grams = model.solve(every)
    if not grams:
        if status != "infeasible":
            raise InputError(f"{product.id}: the solver stopped with status {status!r} after "
                             f"{_TIME_LIMIT_S:g} s without a configuration")
        conflicts = model.core()
        raise ConfigurationInfeasible(
            f"no {product.name} configuration meets all of these together: " + "; ".join(conflicts)
            + ". Relax one of them (e.g. a higher budget, a looser limit, fewer exclusions).",
            conflicts,
        )
    price, cost, nutrition = _numbers(product, grams)
    total = sum(grams.values())
    fit = sum(g * option_taste(taste, product.option(k)) for k, g in grams.items()) / total if total else 0.0
    value = sum(coef[k] * g for k, g in grams.items())
    items = [Item(o.id, o.module, o.name, grams[o.id]) for o in product.options if grams[o.id]]
    words = [f"{product.name}: " + ", ".join(f"{i.name} {i.grams} g" for i in items)
             + f" ({total} g, {price:.2f} € per portion; sugar {nutrition['sugar']:g} g, "
               f"protein {nutrition['protein']:g} g, fibre {nutrition['fibre']:g} g, "
               f"{nutrition['kcal']:g} kcal)."]
    words.append(f"Taste from {taste.source}.")
    bound: list[str] = []
    if explain:
        for it in items:
            likes = _likes(taste, product.option(it.option))
            why = "; ".join(likes) if likes else (
                "no taste for it either way: it keeps the mix within the rules at low cost")
            words.append(f"{it.name} {it.grams} g: {why}.")
        bound = _bound(model, coef, grams, value, words)
        liked = sorted(
            (o for o in product.options if not grams[o.id] and option_taste(taste, o) >= 0.5),
            key=lambda o: -option_taste(taste, o),
        )
        for o in liked[:why_not]:
            with_o = Request(**{**asdict(request), "require": (*request.require, o.id)})
            trial = _Model(product, with_o, stock)
            trial.objective(taste)
            _, with_it = trial.solve(range(len(trial.groups)))
            if not with_it:
                held = [c for c in trial.core() if c != f"your request: include {o.name}"]
                why = "held back by " + "; ".join(held)
            else:
                why = f"the mix scores lower with it ({_diff(product, grams, with_it)})"
            words.append(f"Left out {o.name} though {(_likes(taste, o) or ['you like it'])[0]}: {why}.")
    return Configuration(
        customer=customer, product_id=product.id, status=status, items=items, total_g=total,
        price=price, cost=cost, nutrition=nutrition, fit=round(fit, 4), objective=value / 100,
        taste_source=taste.source, explanation=words, bound=bound, request=request.as_dict(),
        segment_id=taste.segment_id,
    )


# -- customers and segments in the store ----------------------------------------------------------


def _product(product: str | Path | Product) -> Product:
    return product if isinstance(product, Product) else load_product(product)


def configure(
    store: Store, customer: str, product: str | Path | Product = "cereal-mix", *, save: bool = True,
    events_table: str | None = None, customer_key: str | None = None, **constraints: Any,
) -> Configuration:
    """The configuration of ``product`` that best fits ``customer``'s needs (stored unless save=False).

    ``constraints`` tighten the request: ``max_price``, ``exclude_allergens``, ``require``,
    ``exclude`` and ``<nutrient>_min`` / ``<nutrient>_max`` (per portion).  An infeasible request
    raises :class:`~xrm.exceptions.ConfigurationInfeasible` naming the conflicting constraints.
    """
    prod = _product(product)
    request = request_from(prod, **constraints)
    taste = tastes_for(store, prod, [str(customer)], events_table=events_table,
                       customer_key=customer_key)[str(customer)]
    stock = _stock_left(store, prod, [str(customer)])
    config = solve(prod, taste, request, customer=str(customer), stock=stock)
    if save:
        _write(store, [_row(config, None)])
    return config


def _segment(store: Store, segment: str | int) -> tuple[int, str]:
    rows = store.sql("SELECT segment_id, description FROM needs_segments ORDER BY segment_id").fetchall()
    if not rows:
        raise NotFound("no needs segments in the store: run `xrm pipeline` (value and needs) first")
    for sid, desc in rows:
        if str(segment).strip().lower() in (str(sid), desc.lower()):
            return int(sid), str(desc)
    known = "; ".join(f"{sid}: {desc}" for sid, desc in rows)
    raise NotFound(f"no needs segment {segment!r}; give an id or a description: {known}")


def configure_segment(
    store: Store, segment: str | int, product: str | Path | Product = "cereal-mix", *,
    limit: int | None = None, reserve_stock: bool = True, events_table: str | None = None,
    customer_key: str | None = None, **constraints: Any,
) -> dict[str, Any]:
    """Configure every customer of a needs segment in one call; rows go to ``configurations``.

    With ``reserve_stock`` each box is taken from the stock before the next customer is solved, and
    boxes already promised to other customers (stored configurations) count as taken, so batches
    never promise more than the product file's stock.  Customers with the same taste share
    one solve while it stays feasible (less stock can only remove configurations, so an optimum
    that still fits is still optimal).  Infeasible customers are stored with their conflicts.
    """
    import time

    start = time.perf_counter()
    prod = _product(product)
    request = request_from(prod, **constraints)
    sid, desc = _segment(store, segment)
    members = [str(r[0]) for r in store.sql(
        "SELECT customer_id FROM customer_needs WHERE segment_id = ? ORDER BY customer_id"
        + (f" LIMIT {int(limit)}" if limit else ""), [sid],
    ).fetchall()]
    tastes = tastes_for(store, prod, members, events_table=events_table, customer_key=customer_key)
    stock = _stock_left(store, prod, members)
    batch = uuid.uuid4().hex[:12]
    cache: dict[tuple[Any, ...], Configuration | ConfigurationInfeasible] = {}
    rows, solved, infeasible = [], 0, 0
    for c in members:
        taste = tastes[c]
        hit = cache.get(taste.key())
        if isinstance(hit, Configuration) and _fits_stock(prod, hit, stock if reserve_stock else {}):
            config: Configuration | ConfigurationInfeasible = hit
        else:
            try:
                config = solve(prod, taste, request, stock=stock if reserve_stock else None, why_not=0)
            except ConfigurationInfeasible as exc:
                config = exc
            solved += 1
            cache[taste.key()] = config
        if isinstance(config, ConfigurationInfeasible):
            infeasible += 1
            rows.append(_infeasible_row(c, prod, config, request, sid, batch))
            continue
        mine = _personal(config, c, taste, prod)
        rows.append(_row(mine, batch))
        if reserve_stock:
            for it in mine.items:
                if it.option in stock:
                    stock[it.option] -= it.grams * prod.portions
    _write(store, rows)
    return {
        "segment_id": sid, "segment": desc, "product": prod.id, "batch_id": batch, "customers": len(members),
        "configured": len(members) - infeasible, "infeasible": infeasible, "solves": solved,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _stock_left(store: Store, product: Product, customers: list[str]) -> dict[str, int]:
    """The product file's stock less the boxes promised to other customers' stored configurations."""
    stock = {o.id: o.stock_g for o in product.options if o.stock_g is not None}
    if not stock:
        return {}
    promised = store.sql(
        """
        SELECT j->>'option', sum(CAST(j->>'grams' AS BIGINT))
        FROM configurations, unnest(CAST(options AS JSON[])) AS t(j)
        WHERE product_id = ? AND status <> 'infeasible' AND customer NOT IN (SELECT unnest(?))
        GROUP BY 1
        """, [product.id, customers],
    ).fetchall()
    for option, grams in promised:
        if option in stock:
            stock[option] = max(0, stock[option] - int(grams) * product.portions)
    return stock


def _fits_stock(product: Product, config: Configuration, stock: dict[str, int]) -> bool:
    return all(it.grams * product.portions <= stock.get(it.option, 10**12) for it in config.items)


def _personal(config: Configuration, customer: str, taste: Taste, product: Product) -> Configuration:
    """A shared solve with this customer's own words (their purchases, not their twin's)."""
    heads = {f"{it.name} {it.grams} g:": it for it in config.items}
    words = []
    for w in config.explanation:
        it = next((i for head, i in heads.items() if w.startswith(head)), None)
        likes = _likes(taste, product.option(it.option)) if it else []
        words.append(f"{it.name} {it.grams} g: {'; '.join(likes)}." if it and likes else w)
    return Configuration(**{**asdict(config), "items": config.items, "customer": customer,
                            "explanation": words, "segment_id": taste.segment_id})


# -- the configurations table ---------------------------------------------------------------------

_COLS = ("customer, product_id, batch_id, segment_id, status, options, total_g, price, cost, nutrition, "
         "fit, objective, taste_source, conflicts, explanation, request, configured_at")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _row(c: Configuration, batch: str | None) -> tuple[Any, ...]:
    return (c.customer, c.product_id, batch, c.segment_id, c.status,
            json.dumps([asdict(i) for i in c.items], ensure_ascii=False), c.total_g, c.price, c.cost,
            json.dumps(c.nutrition), c.fit, c.objective, c.taste_source, [], c.words(),
            json.dumps(c.request, ensure_ascii=False), _now())


def _infeasible_row(customer: str, product: Product, exc: ConfigurationInfeasible, request: Request,
                    segment: int | None, batch: str) -> tuple[Any, ...]:
    return (customer, product.id, batch, segment, "infeasible", None, None, None, None, None, None, None,
            None, exc.conflicts, str(exc), json.dumps(request.as_dict(), ensure_ascii=False), _now())


def _write(store: Store, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    marks = ", ".join("?" for _ in _COLS.split(","))
    with store.transaction() as tx:
        tx.executemany(f"INSERT OR REPLACE INTO configurations ({_COLS}) VALUES ({marks})", rows)


def read_configurations(store: Store, *, customer: str | None = None, batch_id: str | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
    """Stored configurations, newest first, as dicts (options and nutrition parsed)."""
    where, params = [], []
    if customer is not None:
        where.append("customer = ?")
        params.append(customer)
    if batch_id is not None:
        where.append("batch_id = ?")
        params.append(batch_id)
    sql = (f"SELECT {_COLS} FROM configurations" + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY configured_at DESC, customer LIMIT {int(limit)}")
    cur = store.sql(sql, params)
    names = [c.strip() for c in _COLS.split(",")]
    out = []
    for r in cur.fetchall():
        d = dict(zip(names, r, strict=True))
        for k in ("options", "nutrition", "request"):
            d[k] = json.loads(d[k]) if d[k] else None
        out.append(d)
    return out
