"""`xrm pipeline` (the batch steps) and `xrm demo` (sample → load → pipeline → summary)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["demo", "pipeline"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _show_step(result: Any) -> None:
    colour = {"done": "green", "not yet built": "yellow"}.get(result.status, "red")
    detail = result.message or ", ".join(f"{k}={v}" for k, v in result.summary.items())
    console.print(
        f"[{colour}]{result.status:>13}[/] {result.step} ({result.seconds:.1f} s) {detail}",
        highlight=False,
    )


def pipeline(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run the batch pipeline on the store: identify, value and needs, ... as far as built."""
    with fail_cleanly(as_json):
        from xrm.pipeline import run_batch, run_pipeline
        from xrm.store import Store

        settings = state(ctx).settings()
        if settings.uses_spark:  # the engine steps on Spark, reading batch_source (docs/spark.md)
            results = run_batch(settings, on_step=None if as_json else _show_step)
        else:
            with Store.open(settings) as store:
                results = run_pipeline(store, on_step=None if as_json else _show_step)
        if as_json:
            emit([asdict(r) for r in results], True)


def _with_demo_secret(settings: Any, directory: Path) -> Any:
    """The demo signs links (unsubscribe, tracking, login cookies): keep one secret per demo folder."""
    if settings.secret_key is not None:
        return settings
    import secrets

    from pydantic import SecretStr

    path = directory / "secret_key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return settings.model_copy(update={"secret_key": SecretStr(path.read_text(encoding="utf-8").strip())})


def _demo_login(store: Any) -> tuple[str, str]:
    from xrm.web import ensure_demo_user

    return ensure_demo_user(store)


def _serve_forever(settings: Any) -> None:
    import os
    import sys

    env = {
        **os.environ,
        "XRM_STORE_PATH": str(settings.store_path),
        "XRM_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "xrm.api", "--port", "8000"], env)


def _show_campaigns(report: dict[str, Any]) -> None:
    if "campaigns" not in report:
        console.print(f"campaigns: {report.get('message', report)}", highlight=False)
        return
    mode = "dry run" if report.get("dry_run") else "sent"
    table = Table(title=f"demo campaigns ({mode})")
    for col in ("campaign", "kind", "audience", "outcomes"):
        table.add_column(col)
    for c in report["campaigns"]:
        outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(c.get("outcomes", {}).items()))
        table.add_row(c["campaign_id"], c["kind"], f"{c['audience']:,}", outcomes)
    console.print(table)
    messages = [m for c in report["campaigns"] for m in c.get("messages", [])]
    if messages:
        first = messages[0]
        console.print(f"first message, to {first['to']}: {first['subject']}", highlight=False)


def _demo_campaigns(store: Any) -> Any:
    from xrm.exceptions import NotYetImplemented
    from xrm.interact import run_demo_campaigns

    try:
        return run_demo_campaigns(store)
    except NotYetImplemented as exc:
        return {"status": "not yet built", "message": str(exc)}


def _demo_mix(store: Any) -> dict[str, Any]:
    """One configured cereal mix (issue 6 §6): for the customer who spends most on cereals."""
    from xrm.customize import configure
    from xrm.exceptions import XrmError

    try:
        rows = store.sql(
            "SELECT customer_id FROM customer_needs ORDER BY spend * coalesce(TRY_CAST(json_extract("
            "category_shares, '$.\"Müsli & Cerealien\"') AS DOUBLE), 0) DESC, customer_id LIMIT 1"
        ).fetchall()
        if not rows:
            return {"message": "no needs profiles: the value and needs step did not run"}
        return configure(store, str(rows[0][0])).as_dict()
    except XrmError as exc:
        return {"message": str(exc)}


def _demo_offers(store: Any, n_customers: int = 3) -> dict[str, Any]:
    """Next best offers with their explanations for the most valuable customers (issue 6).

    A store without offers gets the catalogue's (one per product, bundles, content, a call)."""
    from xrm.customize import add_offers, catalogue_offers, list_offers, next_best_actions
    from xrm.exceptions import XrmError

    try:
        added = 0 if list_offers(store) else add_offers(store, catalogue_offers(store))
        rows = store.sql(
            "SELECT customer_id, tier, customer_id IN (SELECT CAST(profile_id AS VARCHAR) FROM profiles) "
            "FROM customer_value ORDER BY clv DESC, customer_id LIMIT ?", [n_customers],
        ).fetchall()
        # The pipeline keys value by identify's profiles once the identities step has run.
        key = "profile_id" if rows and all(r[2] for r in rows) else "user_id"
        decisions = []
        for customer, tier, _ in rows:
            d = next_best_actions(store, str(customer), "web", placement="home", k=3, explore=0.0,
                                  customer_key=key)
            decisions.append({"customer": str(customer), "tier": tier, "decision_id": d.decision_id,
                              "offers": [{"offer": o.name, "expected_value": o.expected_value,
                                          "explanation": o.explanation} for o in d.offers]})
        return {"offers_added": added, "customer_key": key, "decisions": decisions}
    except XrmError as exc:
        return {"message": str(exc)}


def _demo_value(store: Any, truth: Path, key: str) -> dict[str, Any]:
    """Tiers, needs segments, drop-outs by P(alive) and identity accuracy against the sample's truth
    (issues 3 and 4: what the demo is there to show)."""
    from xrm.differentiate import dropout_ranking
    from xrm.exceptions import XrmError
    from xrm.identify import score_profiles

    out: dict[str, Any] = {}
    out["tiers"] = [
        {"tier": t, "customers": int(n), "value_share": float(v)}
        for t, n, v in store.sql(
            "SELECT tier, count(*), sum(greatest(clv, 0)) / nullif(sum(sum(greatest(clv, 0))) OVER (), 0) "
            "FROM customer_value GROUP BY tier ORDER BY 3 DESC NULLS LAST").fetchall()
    ]
    out["segments"] = [
        {"segment": int(i), "customers": int(n), "description": d}
        for i, n, d in store.sql(
            "SELECT segment_id, customers, description FROM needs_segments ORDER BY customers DESC"
        ).fetchall()
    ]
    try:
        events = "customer_events" if key == "profile_id" else "events"
        out["dropouts"] = dropout_ranking(store, truth, events_table=events, customer_key=key)
    except XrmError as exc:
        out["dropouts"] = {"message": str(exc)}
    try:
        out["identity"] = score_profiles(store, truth / "record_person.parquet")
    except XrmError as exc:
        out["identity"] = {"message": str(exc)}
    return out


def _show_value(report: dict[str, Any]) -> None:
    table = Table(title="value tiers (MVC most valuable, MGC most growable, BZ below zero)")
    for col in ("tier", "customers", "share of lifetime value"):
        table.add_column(col, justify="left" if col == "tier" else "right")
    for t in report["tiers"]:
        table.add_row(t["tier"], f"{t['customers']:,}", f"{(t['value_share'] or 0) * 100:.1f} %")
    console.print(table)
    table = Table(title="needs-based segments")
    for col in ("segment", "customers", "what sets it apart"):
        table.add_column(col, overflow="fold")
    for g in report["segments"]:
        table.add_row(str(g["segment"]), f"{g['customers']:,}", g["description"])
    console.print(table)
    d = report["dropouts"]
    if "auc_p_alive" in d:
        console.print(
            f"drop-outs ({d['dropped']:,} of {d['customers']:,} customers, the sample's truth): ROC AUC "
            f"by P(alive) {d['auc_p_alive']:.3f}, by days since the last purchase {d['auc_recency']:.3f}",
            highlight=False)
    else:
        console.print(f"drop-outs: {d.get('message')}", highlight=False)
    i = report["identity"]
    if "cluster_f1" in i:
        console.print(
            f"identity against the sample's truth: {i.get('records', 0):,} records in "
            f"{i.get('profiles', 0):,} profiles for {i.get('persons', 0):,} people; pairwise F1 "
            f"{i['pairwise_f1']:.3f}, cluster F1 {i['cluster_f1']:.3f}", highlight=False)
    else:
        console.print(f"identity accuracy: {i.get('message')}", highlight=False)


def _show_offers(report: dict[str, Any]) -> None:
    if "decisions" not in report:
        console.print(f"next best offers: {report.get('message')}", highlight=False)
        return
    table = Table(title="next best offers (web, home page) for the three most valuable customers")
    for col in ("customer", "offer", "expected value", "why"):
        table.add_column(col, overflow="fold")
    for d in report["decisions"]:
        for i, o in enumerate(d["offers"]):
            who = f"{d['customer']} ({d['tier']})" if i == 0 else ""
            table.add_row(who, o["offer"], f"{o['expected_value']:.2f} €", o["explanation"])
    console.print(table)


def _show_mix(mix: dict[str, Any]) -> None:
    from xrm.cli._customize import render_configuration

    if "items" in mix:
        render_configuration(mix)
    else:
        console.print(f"cereal mix: {mix.get('message')}", highlight=False)


def demo(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Option("--dir", help="Where the sample files go.")] = Path(
        "demo"
    ),
    customers: Annotated[int, typer.Option(help="Customers in the sample business.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the sample business.")] = 42,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Do not start the server afterwards (for scripts).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make the sample business, load it, run the pipeline and print a summary."""
    with fail_cleanly(as_json):
        from xrm.ingest import load_manifest
        from xrm.pipeline import run_pipeline
        from xrm.sample import generate_sample
        from xrm.store import Store

        settings = _with_demo_secret(state(ctx).settings(), directory)
        sample_dir = directory / "sample"
        manifest = sample_dir / "manifest.json"
        wanted = {"customers": customers, "seed": seed}
        if not manifest.exists() or any(
            json.loads(manifest.read_text()).get(k) != v for k, v in wanted.items()
        ):
            console.print(f"making the sample business ({customers:,} customers, seed {seed})")
            generate_sample(sample_dir, customers=customers, seed=seed, show_progress=not as_json)
        with Store.open(settings) as store:
            reports = load_manifest(store, manifest, show_progress=not as_json)
            results = run_pipeline(store, on_step=None if as_json else _show_step)
            campaigns = _demo_campaigns(store)
            offers = _demo_offers(store)
            value = _demo_value(store, sample_dir / "truth", offers.get("customer_key", "user_id"))
            cereal_mix = _demo_mix(store)
            tables = {t: store.count(t) for t in store.tables()}
            login = None if no_serve else _demo_login(store)
        data = {
            "store": str(settings.store_path),
            "loads": [r.as_dict() for r in reports],
            "pipeline": [asdict(r) for r in results],
            "campaigns": campaigns,
            "next_best_offers": offers,
            "value": value,
            "cereal_mix": cereal_mix,
            "tables": tables,
        }

        def render(d: dict[str, Any]) -> None:
            table = Table(title=f"xrm demo: store {d['store']}")
            table.add_column("table")
            table.add_column("rows", justify="right")
            for name, rows in d["tables"].items():
                table.add_row(name, f"{rows:,}")
            console.print(table)
            _show_value(d["value"])
            _show_campaigns(d["campaigns"])
            _show_offers(d["next_best_offers"])
            _show_mix(d["cereal_mix"])

        emit(data, as_json, render)
        if login is not None:
            user, password = login
            console.print(
                f"\n[bold]console:[/] http://127.0.0.1:8000/console  login [bold]{user}[/] / "
                f"[bold]{password}[/]   (API docs: http://127.0.0.1:8000/docs; Ctrl-C stops)",
                highlight=False,
            )
            _serve_forever(settings)
