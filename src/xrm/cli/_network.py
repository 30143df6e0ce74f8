"""`xrm network ...`: relationships in, network analysis, Return on Network, conversations.

The lead registers it: ``app.add_typer(_network.network_app, name="network")``.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["network_app"]

network_app = typer.Typer(
    help="Parties and relationships, network metrics, Return on Network, conversations.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
IdentityOpt = Annotated[
    str,
    typer.Option(
        "--identity",
        help="Party key: user_id (Segment userId), profile (identify's profiles) or auto.",
    ),
]


def _show_loads(reports: list[dict[str, Any]]) -> None:
    for r in reports:
        colour = "green" if not r["rows_rejected"] else "yellow"
        console.print(
            f"[{colour}]{r['file']}[/]: {r['rows_loaded']:,} {r['kind']} loaded, "
            f"{r['rows_rejected']:,} rejected",
            highlight=False,
        )
        for p in r["problems"]:
            console.print(f"  {p}", highlight=False, markup=False)


@network_app.command("load-relationships")
def load_relationships_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV or JSONL files.")],
    kind: Annotated[
        str, typer.Option("--kind", help="What the files hold: relationships, parties or handles.")
    ] = "relationships",
    as_json: JsonOpt = False,
) -> None:
    """Load relationships (src, dst, rel_type, weight, ts), parties or handles from files."""
    with fail_cleanly(as_json):
        from xrm.exceptions import InputError
        from xrm.network import load_handles, load_parties, load_relationships
        from xrm.store import Store

        loaders = {"relationships": load_relationships, "parties": load_parties, "handles": load_handles}
        if kind not in loaders:
            raise InputError(f"--kind {kind!r} is not known; use relationships, parties or handles")
        with Store.open(state(ctx).settings()) as store:
            reports = [loaders[kind](store, f).as_dict() for f in files]
        emit(reports, as_json, _show_loads)


@network_app.command("analyse")
def analyse_cmd(
    ctx: typer.Context,
    identity: IdentityOpt = "auto",
    derive: Annotated[
        bool, typer.Option("--derive/--no-derive", help="Derive relationships from the data first.")
    ] = True,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only these relationship types (repeatable).")
    ] = None,
    value_table: Annotated[
        str | None,
        typer.Option("--value-table", help="Own value from TABLE:ID_COLUMN:VALUE_COLUMN (default: spend)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Derive relationships, then compute metrics and network values into network_traits."""
    with fail_cleanly(as_json):
        from xrm.exceptions import InputError
        from xrm.network import analyse_network, derive_relationships
        from xrm.store import Store

        vt = None
        if value_table:
            parts = value_table.split(":")
            if len(parts) != 3:
                raise InputError(f"--value-table {value_table!r} must be TABLE:ID_COLUMN:VALUE_COLUMN")
            vt = (parts[0], parts[1], parts[2])

        def step(name: str, seconds: float) -> None:
            if not as_json:
                console.print(f"  {name}: {seconds:.2f} s", highlight=False)

        with Store.open(state(ctx).settings()) as store:
            derived = derive_relationships(store, identity=identity) if derive else {}
            with console.status("analysing the network", spinner="dots") if not as_json else nullcontext():
                summary = analyse_network(store, types=types, identity=identity, value_table=vt, on_step=step)
        data = {"derived": derived, **summary}

        def render(d: dict[str, Any]) -> None:
            console.print(
                f"{d['parties']:,} parties ({d['connected_parties']:,} connected), "
                f"{d['communities']:,} communities, identity: {d['identity']}",
                highlight=False,
            )
            table = Table(title="relationships")
            table.add_column("type")
            table.add_column("count", justify="right")
            for k, v in d["relationships"].items():
                table.add_row(k, f"{v:,}")
            console.print(table)

        emit(data, as_json, render)


@network_app.command("report")
def report_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    economics: Annotated[
        Path | None, typer.Option("--economics", help="TOML with cost and attribution per type.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Return on Network: value through relationships vs their cost, by type and community."""
    with fail_cleanly(as_json):
        from xrm.exceptions import InputError
        from xrm.network import RelationshipEconomics, return_on_network, ron_html, ron_markdown
        from xrm.store import Store

        if fmt not in ("md", "html", "json"):
            raise InputError(f"--format {fmt!r} is not known; use md, html or json")
        with Store.open(state(ctx).settings()) as store:
            report = return_on_network(store, economics=RelationshipEconomics.load(economics))
        if output is not None:
            import json

            text = {"md": ron_markdown, "html": ron_html}.get(fmt, lambda r: json.dumps(r, indent=2))(report)
            output.write_text(text, encoding="utf-8")
        emit(report, as_json or fmt == "json", lambda r: typer.echo(ron_markdown(r)))


@network_app.command("conversations")
def conversations_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path] | None, typer.Argument(help="Post files (CSV/JSONL) to load first.")] = None,
    brand: Annotated[
        list[str] | None, typer.Option("--brand", help="Brand handle(s); default: the most mentioned.")
    ] = None,
    top: Annotated[int, typer.Option(help="Rows per list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Load posts, then report sentiment, key phrases, brand mentions, voices, who answers whom."""
    with fail_cleanly(as_json):
        from xrm.network import conversation_report, load_posts
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            loads = [load_posts(store, f).as_dict() for f in files or []]
            report = conversation_report(store, brand_handles=brand, top=top)
        data = {"loads": loads, **report}

        def render(d: dict[str, Any]) -> None:
            _show_loads(d["loads"])
            console.print(f"{d['posts']:,} posts; brands: {', '.join(d['brands'])}", highlight=False)
            for title, rows in (
                ("sentiment by language", d["by_language"]),
                ("key phrases", d["key_phrases"]),
                ("influential voices", d["influential_voices"]),
                ("who answers whom", d["who_answers_whom"]),
            ):
                if not rows:
                    continue
                table = Table(title=title)
                for col in rows[0]:
                    table.add_column(col)
                for r in rows:
                    table.add_row(*(str(v) for v in r.values()))
                console.print(table)

        emit(data, as_json, render)


chart_app = typer.Typer(
    help="Network charts as SVG or PNG files, drawn offline (vl-convert).", no_args_is_help=True
)
network_app.add_typer(chart_app, name="chart")

OutOpt = Annotated[Path, typer.Option("--out", help="The image file to write: .svg or .png.")]


def _wrote(out: Path, what: str, as_json: bool) -> None:
    emit({"out": str(out), "bytes": out.stat().st_size, "chart": what}, as_json,
         lambda d: console.print(f"wrote {d['out']} ({d['bytes']:,} bytes)", highlight=False))


@chart_app.command("neighbourhood")
def chart_neighbourhood_cmd(
    ctx: typer.Context,
    party: Annotated[str, typer.Argument(help="The party's id.")],
    out: OutOpt,
    steps: Annotated[int, typer.Option(help="Ties away from the party (1 to 3).")] = 1,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only these relationship types (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most parties drawn, nearest first.")] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Draw a party's neighbourhood: the party, the parties within --steps ties, their ties."""
    with fail_cleanly(as_json):
        from xrm.cli._network_charts import neighbourhood_spec, write_chart
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            spec = neighbourhood_spec(store, party, steps=steps, types=types, limit=limit)
        _wrote(write_chart(spec, out), "neighbourhood", as_json)


@chart_app.command("communities")
def chart_communities_cmd(
    ctx: typer.Context,
    out: OutOpt,
    top: Annotated[int, typer.Option(help="The largest communities drawn (1 to 200).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Draw the largest communities of the latest analysis and the ties between them."""
    with fail_cleanly(as_json):
        from xrm.cli._network_charts import communities_spec, write_chart
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            spec = communities_spec(store, top=top)
        _wrote(write_chart(spec, out), "communities", as_json)
