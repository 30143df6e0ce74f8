"""`xrm value ...`: lifetime-value models, value scores and tiers, needs-based segments (differentiate).

    xrm value fit --model paretonbd --json
    xrm value score --horizon-weeks 52 --discount-rate 0.01 --mvc-share 0.02
    xrm value tiers · xrm value segments · xrm value report --charts charts/
    xrm needs update          # merge new orders into the touched customers' needs profiles
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["needs_app", "value_app"]

value_app = typer.Typer(
    help="Customer value (lifetime-value models, tiers, share of wallet) and needs-based segments.",
    no_args_is_help=True,
)

needs_app = typer.Typer(
    help="Needs profiles: incremental updates between full builds (`xrm value segments`).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ModelOpt = Annotated[str, typer.Option("--model", help="Purchase model: bgnbd or paretonbd.")]


def _busy(what: str, quiet: bool) -> AbstractContextManager[Any]:
    """A spinner on stderr while the work runs (none for --json)."""
    return nullcontext() if quiet else console.status(what)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return escape(str(value))


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold", justify="left" if c in ("tier", "description") else "right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c, "")) for c in columns))
    console.print(table)


def _params_table(fit: dict[str, Any]) -> None:
    rows = []
    for role in ("purchases", "spend"):
        s = fit[role]
        for name, value in s["params"].items():
            rows.append({"model": s["model"], "param": name, "value": value, "se": s["se"].get(name)})
        rows.append({"model": s["model"], "param": "log-likelihood", "value": s["log_likelihood"],
                     "se": f"n = {s['n']}"})
    _table(f"value models ({fit.get('fit_id', '')})", rows, ["model", "param", "value", "se"])


def _tiers(rows: list[dict[str, Any]], title: str) -> None:
    _table(title, rows, ["tier", "customers", "customer_share", "clv", "clv_share", "spend_share"])


def _segments(rows: list[dict[str, Any]]) -> None:
    _table("needs segments", rows,
           ["segment_id", "description", "customers", "customer_share", "clv_share", "spend_share"])


@value_app.command("fit")
def fit(ctx: typer.Context, model: ModelOpt = "bgnbd", as_json: JsonOpt = False) -> None:
    """Fit the purchase model and Gamma-Gamma on the purchase summaries; save them in the store."""
    with fail_cleanly(as_json):
        from xrm.differentiate import fit_value_models
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store, _busy("fitting", as_json):
            out = fit_value_models(store, model=model)

        def render(d: dict[str, Any]) -> None:
            _params_table(d)
            excluded = d["spend_excluded"]["customers"]
            if excluded:
                console.print(f"{excluded} repeat customers with spend <= 0 left out of Gamma-Gamma")

        emit(out, as_json, render)


@value_app.command("score")
def score(
    ctx: typer.Context,
    model: ModelOpt = "bgnbd",
    horizon_weeks: Annotated[float, typer.Option(help="CLV horizon in weeks.")] = 52.0,
    discount_rate: Annotated[float, typer.Option(help="Discount rate per month (0.01 = 1 %).")] = 0.01,
    margin: Annotated[float, typer.Option(help="Share of spend that is margin (1 = revenue).")] = 1.0,
    cost_per_order: Annotated[float, typer.Option(help="Cost to serve one order.")] = 0.0,
    cost_per_year: Annotated[float, typer.Option(help="Cost to serve a customer for a year.")] = 0.0,
    mvc_share: Annotated[float, typer.Option(help="Top share of customers by CLV who are MVC.")] = 0.05,
    mgc_share: Annotated[float, typer.Option(help="Share of customers, by headroom, who are MGC.")] = 0.20,
    wallet_quantile: Annotated[float, typer.Option(help="Wallet = this quantile of look-alike spend.")] = 0.9,
    refit: Annotated[bool, typer.Option(help="Refit (--no-refit: use the last saved fit).")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Score every customer (P(alive), expected purchases and spend, CLV, wallet) and assign tiers."""
    with fail_cleanly(as_json):
        from xrm.differentiate import ValuePolicy, score_value
        from xrm.store import Store

        policy = ValuePolicy(
            model=model, horizon_weeks=horizon_weeks, discount_rate=discount_rate, margin=margin,
            cost_per_order=cost_per_order, cost_per_year=cost_per_year, mvc_share=mvc_share,
            mgc_share=mgc_share, wallet_quantile=wallet_quantile,
        ).check()
        with Store.open(state(ctx).settings()) as store, _busy("scoring", as_json):
            out = score_value(store, policy=policy, refit=refit)

        def render(d: dict[str, Any]) -> None:
            if "skipped" in d:
                console.print(d["skipped"])
                return
            _tiers(d["tiers"], f"value tiers ({d['customers']:,} customers, {d['model']}, run {d['run_id']})")
            console.print(f"total CLV {d['total_clv']:,.2f} over {d['horizon_weeks']:g} weeks; "
                          f"mean P(alive) {d['mean_p_alive']:.3f}")
            console.print(f"wallet: {d['wallet']['note']}", highlight=False)

        emit(out, as_json, render)


@value_app.command("tiers")
def tiers(
    ctx: typer.Context,
    from_run: Annotated[str | None, typer.Option("--from-run", help="Earlier run (default: the one before).")]
    = None,
    to_run: Annotated[str | None, typer.Option("--to-run", help="Later run (default: the latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The latest run's tiers, and how customers moved between tiers since the run before."""
    with fail_cleanly(as_json):
        from xrm.differentiate import tier_migration, value_report
        from xrm.exceptions import ModelError
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            report = value_report(store, top=0)
            try:
                migration: dict[str, Any] = tier_migration(store, from_run, to_run)
            except ModelError as exc:
                if from_run or to_run:
                    raise
                migration = {"skipped": str(exc)}
        out = {"run_id": report["run"]["run_id"], "tiers": report["run"]["tiers"], "migration": migration}

        def render(d: dict[str, Any]) -> None:
            _tiers(d["tiers"], f"value tiers (run {d['run_id']})")
            m = d["migration"]
            if "skipped" in m:
                console.print(m["skipped"])
            else:
                _table(f"tier migration {m['from_run']} -> {m['to_run']} (stayed {m['stability']:.1%})",
                       m["moves"], ["from", "to", "customers"])

        emit(out, as_json, render)


@value_app.command("segments")
def segments(
    ctx: typer.Context,
    k: Annotated[int | None, typer.Option("-k", help="Segments (default: best silhouette).")] = None,
    half_life_days: Annotated[float, typer.Option(help="Days after which an order's weight halves.")] = 180.0,
    build: Annotated[bool, typer.Option(help="Rebuild profiles and segments (--no-build: show).")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Build each customer's needs profile and the needs-based segments; show them in words."""
    with fail_cleanly(as_json):
        from xrm.differentiate import build_needs, segment_report
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            out: dict[str, Any] = {}
            if build:
                with _busy("segmenting", as_json):
                    out = build_needs(store, k=k, half_life_days=half_life_days)
            out["report"] = segment_report(store)

        def render(d: dict[str, Any]) -> None:
            if "skipped" in d:
                console.print(d["skipped"])
                return
            _segments(d["report"])
            if "k" in d:
                console.print(f"k = {d['k']} (silhouette {d['silhouette']:.3f}); {d.get('note', '')}")

        emit(out, as_json, render)


@value_app.command("report")
def report(
    ctx: typer.Context,
    top: Annotated[int, typer.Option(help="How many top customers by CLV.")] = 10,
    charts: Annotated[Path | None, typer.Option(
        "--charts", help="Also write the charts (CLV distribution, tracking plot, tier pyramid) "
                         "into this folder.")] = None,
    chart_format: Annotated[list[str] | None, typer.Option(
        "--chart-format", help="svg, png and/or json (the Vega-Lite spec); repeat for several.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The latest value run: models, tiers, top customers, and segments with their value shares."""
    with fail_cleanly(as_json):
        from xrm.differentiate import value_charts, value_report
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            out = value_report(store, top=top)
            if charts is not None:
                with _busy("drawing charts", as_json):
                    out["charts"] = value_charts(store, charts, formats=tuple(chart_format or ("svg", "png")))

        def render(d: dict[str, Any]) -> None:
            run = d["run"]
            params = ", ".join(f"{k}={v:.4g}" for k, v in run["params"].items())
            console.print(f"run {run['run_id']}: {run['customers']:,} customers, {run['model']} ({params})")
            _tiers(run["tiers"], "value tiers")
            _table("top customers by CLV", d["top_customers"],
                   ["customer_id", "tier", "clv", "p_alive", "expected_purchases", "historic_spend",
                    "share_of_wallet"])
            if d["segments"]:
                _segments(d["segments"])
            if "charts" in d:
                t = d["charts"]["tracking"]
                console.print(f"charts: {', '.join(d['charts']['files'])} (tracking: {t['actual']:,} "
                              f"repeat purchases in {t['weeks']} weeks, the model expects "
                              f"{t['expected']:,.0f})")

        emit(out, as_json, render)


@needs_app.command("update")
def needs_update(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Merge orders received since the last needs build or update into the profiles of the
    customers they touch, and move those customers to their nearest segment (no re-clustering)."""
    with fail_cleanly(as_json):
        from xrm.differentiate import update_needs
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store, _busy("updating needs", as_json):
            out = update_needs(store)

        def render(d: dict[str, Any]) -> None:
            if "skipped" in d:
                console.print(d["skipped"])
                return
            console.print(f"{d['touched']:,} customers updated ({d['new_customers']:,} new) from "
                          f"{d['orders']:,} orders; watermark {d['watermark']}")

        emit(out, as_json, render)
