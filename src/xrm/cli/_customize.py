"""`xrm offers ...`: offers, recommendations and next-best actions (customize)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["offers_app"]

offers_app = typer.Typer(
    help="Offers, recommendations and next-best actions for one customer.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(escape(str(r.get(c, ""))) for c in columns))
    console.print(table)


@offers_app.command("load")
def load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Offers file: .toml ([[offer]] tables), .csv or .json.")],
    as_json: JsonOpt = False,
) -> None:
    """Load offers from a file (all or nothing; every problem is listed with its line)."""
    with fail_cleanly(as_json):
        from xrm.customize import load_offers
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            n = load_offers(store, file)
        emit({"file": str(file), "offers": n}, as_json, lambda d: console.print(f"{n} offers loaded"))


@offers_app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the stored offers with their value, cost and rules."""
    with fail_cleanly(as_json):
        from xrm.customize import list_offers
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            rows = [o.as_dict() for o in list_offers(store)]
        emit(rows, as_json, lambda d: _table(
            "offers", d, ["offer_id", "kind", "name", "category", "value", "cost", "channels", "segments"]
        ))


@offers_app.command("remove")
def remove(
    ctx: typer.Context, offer_id: Annotated[str, typer.Argument(help="Offer id.")], as_json: JsonOpt = False
) -> None:
    """Remove one offer (its past decisions stay logged)."""
    with fail_cleanly(as_json):
        from xrm.customize import remove_offer
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            remove_offer(store, offer_id)
        emit({"removed": offer_id}, as_json, lambda d: console.print(f"removed {offer_id}"))


@offers_app.command("build")
def build(
    ctx: typer.Context,
    customer_key: Annotated[str, typer.Option(help="events column naming the customer.")] = "user_id",
    as_json: JsonOpt = False,
) -> None:
    """Fit the recommender on all purchases; store each customer's top products and cycles."""
    with fail_cleanly(as_json):
        from xrm.customize import build_recommendations
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            summary = build_recommendations(store, customer_key=customer_key)
        emit(summary, as_json, lambda d: console.print(d))


@offers_app.command("recommend")
def recommend(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer key (events.user_id).")],
    k: Annotated[int, typer.Option("-k", help="How many products.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Recommended products for a customer, with the reason for each (run `build` first)."""
    with fail_cleanly(as_json):
        from xrm.customize import recommend_for
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            rows = recommend_for(store, customer, k)
        emit(rows, as_json, lambda d: _table(f"recommended for {customer}", d,
                                              ["rank", "product_id", "score", "reason"]))


@offers_app.command("nba")
def nba(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer key (events.user_id).")],
    channel: Annotated[str, typer.Option(help="Channel of the contact: email, web, app, call ...")] = "email",
    placement: Annotated[
        str | None, typer.Option(help="Placement on the channel, e.g. 'home-banner'.")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="How many offers.")] = 3,
    explore: Annotated[float, typer.Option(help="Share of decisions drawn from the posterior.")] = 0.1,
    as_json: JsonOpt = False,
) -> None:
    """Next-best actions for a customer: eligible offers by expected value, logged as a decision."""
    with fail_cleanly(as_json):
        from xrm.customize import next_best_actions
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            decision = next_best_actions(store, customer, channel, placement=placement, k=k, explore=explore)
        data = decision.as_dict()

        def render(d: dict[str, Any]) -> None:
            _table(f"decision {d['decision_id']} for {customer} on {channel}", d["offers"],
                   ["rank", "offer_id", "expected_value", "p_response", "explanation"])

        emit(data, as_json, render)


@offers_app.command("respond")
def respond(
    ctx: typer.Context,
    decision_id: Annotated[str, typer.Argument(help="Decision id (from `nba`).")],
    offer_id: Annotated[str, typer.Argument(help="The offer responded to.")],
    outcome: Annotated[str, typer.Argument(help="click, purchase or ignore.")],
    as_json: JsonOpt = False,
) -> None:
    """Record a response to a decided offer; the policy learns from it at once."""
    with fail_cleanly(as_json):
        from xrm.customize import record_response
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            record_response(store, decision_id, offer_id, outcome)
        emit({"decision_id": decision_id, "offer_id": offer_id, "outcome": outcome}, as_json,
             lambda d: console.print(f"recorded {outcome} for {offer_id}"))


def render_configuration(d: dict[str, Any]) -> None:
    """A configured product as a Rich table of its options, then its numbers and explanation."""
    table = Table(title=f"{d['product_id']} for {d['customer']} ({d['status']})")
    for c in ("module", "option", "grams"):
        table.add_column(c, justify="right" if c == "grams" else "left")
    for it in d["items"]:
        table.add_row(escape(it["module"]), escape(it["name"]), str(it["grams"]))
    console.print(table)
    n = d["nutrition"]
    console.print(
        f"{d['total_g']} g, {d['price']:.2f} € per portion (cost {d['cost']:.2f} €); sugar {n['sugar']:g} g, "
        f"protein {n['protein']:g} g, fibre {n['fibre']:g} g, fat {n['fat']:g} g, {n['kcal']:g} kcal",
        highlight=False,
    )
    for line in d["explanation"][1:]:
        console.print(f"  {escape(line)}", highlight=False)


@offers_app.command("configure")
def configure(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Customer id (customer_needs.customer_id).")] = None,
    segment: Annotated[
        str | None, typer.Option(help="Needs segment id or description: configure all its customers.")
    ] = None,
    product: Annotated[str, typer.Option(help="Packaged product id or a product .toml file.")] = "cereal-mix",
    max_price: Annotated[float | None, typer.Option(help="Budget: EUR per portion at most.")] = None,
    exclude_allergen: Annotated[
        list[str] | None, typer.Option(help="Leave out options with this allergen (repeatable).")
    ] = None,
    require: Annotated[list[str] | None, typer.Option(help="Option id that must be in (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Option id to leave out (repeatable).")] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(help="Nutrition limit per portion, e.g. sugar_max=8 or protein_min=10 (repeatable)."),
    ] = None,
    first: Annotated[int | None, typer.Option(help="With --segment: only the first N customers.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Configure a product (the cereal mix) for a customer or a whole segment with OR-Tools CP-SAT."""
    with fail_cleanly(as_json):
        from xrm.customize import configure as configure_one
        from xrm.customize import configure_segment, read_configurations
        from xrm.exceptions import ConfigurationInfeasible, InputError
        from xrm.store import Store

        if (customer is None) == (segment is None):
            raise InputError("give either --customer ID or --segment NAME (one of them)")
        constraints: dict[str, Any] = {"max_price": max_price, "exclude_allergens": exclude_allergen,
                                       "require": require, "exclude": exclude}
        for item in limit or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise InputError(f"--limit {item!r}: write NUTRIENT_min=VALUE or NUTRIENT_max=VALUE, "
                                 f"e.g. --limit sugar_max=8")
            constraints[key.strip()] = value.strip()
        with Store.open(state(ctx).settings()) as store:
            if segment is not None:
                summary = configure_segment(store, segment, product, limit=first, **constraints)
                rows = read_configurations(store, batch_id=summary["batch_id"], limit=20)
                data: dict[str, Any] = {**summary, "first_rows": rows}

                def render(d: dict[str, Any]) -> None:
                    console.print(
                        f"segment {d['segment_id']} ({escape(d['segment'])}): {d['configured']:,} of "
                        f"{d['customers']:,} customers configured, {d['infeasible']:,} infeasible, "
                        f"{d['solves']:,} solves in {d['seconds']} s (batch {d['batch_id']})",
                        highlight=False,
                    )
                    _table("first configurations", [
                        {"customer": r["customer"], "status": r["status"], "price": r["price"],
                         "fit": r["fit"], "mix": ", ".join(f"{o['name']} {o['grams']} g"
                                                           for o in r["options"] or [])}
                        for r in d["first_rows"]
                    ], ["customer", "status", "mix", "price", "fit"])

                emit(data, as_json, render)
                return
            try:
                config = configure_one(store, str(customer), product, **constraints)
            except ConfigurationInfeasible as exc:
                if not as_json:
                    raise
                emit({"error": "ConfigurationInfeasible", "message": str(exc), "conflicts": exc.conflicts},
                     True)
                raise typer.Exit(1) from None
        emit(config.as_dict(), as_json, render_configuration)
