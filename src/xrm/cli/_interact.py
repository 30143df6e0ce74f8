"""`xrm consent`, `xrm campaign` and `xrm gdpr`: permission, campaigns and data-subject rights.

The lead registers them in ``_app.py``: ``app.add_typer(consent_app, name="consent")``,
``app.add_typer(campaign_app, name="campaign")``, ``app.add_typer(gdpr_app, name="gdpr")``.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["campaign_app", "consent_app", "gdpr_app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
consent_app = typer.Typer(help="Consent per channel and purpose.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns, the outbox worker and results.", no_args_is_help=True)
gdpr_app = typer.Typer(help="Export or erase everything about a person (GDPR art. 15, 17, 20).",
                       no_args_is_help=True)


def _open(ctx: typer.Context) -> Any:
    from xrm.store import Store

    return Store.open(state(ctx).settings())


def _lines(fmt: Any) -> Any:
    """A renderer printing ``fmt(row)`` for each row."""

    def render(rows: Any) -> None:
        for row in rows:
            console.print(fmt(row), highlight=False)

    return render


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@consent_app.command("show")
def consent_show(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer key (events.user_id).")],
    history: Annotated[bool, typer.Option("--history", help="Every entry, not only current.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a customer's consents now (or their whole history)."""
    with fail_cleanly(as_json):
        from xrm.interact import consent_history, current_consents

        with _open(ctx) as store:
            if history:
                data = [c.as_dict() for c in consent_history(store, customer)]
            else:
                now = datetime.now()
                data = [{**c.as_dict(), "valid": c.valid_at(now)}
                        for c in current_consents(store, customer).values()]
        emit(data, as_json, _lines(lambda r: (
            f"{r['channel']:8} {r['purpose']:10} {r['status']:8} {r['given_at']} {r['source']}"
            f"{' until ' + r['expires_at'] if r['expires_at'] else ''}")))


@consent_app.command("set")
def consent_set(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer key.")],
    channel: Annotated[str, typer.Option(help="email, sms, phone, post, push or webhook.")],
    purpose: Annotated[str, typer.Option(help="marketing, service or profiling.")],
    status: Annotated[str, typer.Option(help="granted, denied, revoked or pending.")],
    source: Annotated[str, typer.Option(help="Where it was given (form, call centre ...).")],
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 (UTC).")] = None,
    proof: Annotated[str | None, typer.Option(help="Proof as JSON, e.g. '{\"ip\": ...}'.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a consent change (also a `Consent Updated` event on the timeline)."""
    with fail_cleanly(as_json):
        from xrm.exceptions import InputError
        from xrm.interact import record_consent

        try:
            proof_obj = json.loads(proof) if proof else None
        except json.JSONDecodeError as exc:
            raise InputError(f"--proof = {proof!r} is not JSON ({exc.msg})") from None
        with _open(ctx) as store:
            c = record_consent(store, customer, channel, purpose, status, source=source,
                               expires_at=_when(expires), proof=proof_obj)
        emit(c.as_dict(), as_json, lambda d: console.print(f"recorded: {d['status']} {d['channel']}"
                                                           f"/{d['purpose']} for {d['customer']}"))


@campaign_app.command("run")
def campaign_run(
    ctx: typer.Context,
    definition: Annotated[Path, typer.Argument(help="Campaign file (TOML or JSON).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and render, write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a campaign defined in a file: decisions and messages go to the outbox together."""
    with fail_cleanly(as_json):
        from xrm.interact import run_campaigns

        camp = _load_campaign(definition)
        with _open(ctx) as store:
            runs = run_campaigns(store, [camp], dry_run=dry_run)
        emit([r.as_dict() for r in runs], as_json,
             _lines(lambda r: f"{r['campaign_id']}: {r['outcomes']}"))


@campaign_app.command("preview")
def campaign_preview(
    ctx: typer.Context,
    definition: Annotated[Path, typer.Argument(help="Campaign file (TOML or JSON).")],
    customer: Annotated[str, typer.Argument(help="Customer key.")],
    as_json: JsonOpt = False,
) -> None:
    """Show what a customer would get from a campaign, and whether it may be sent."""
    with fail_cleanly(as_json):
        from xrm.interact import preview

        with _open(ctx) as store:
            data = preview(store, _load_campaign(definition), customer)
        emit(data, as_json, lambda d: console.print(
            f"to {d['to']} ({d['permission']})\nSubject: {d['subject']}\n\n{d['text']}", highlight=False))


@campaign_app.command("deliver")
def campaign_deliver(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option(help="Stop after this many sends.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the outbox worker once: send every due message through the configured channels."""
    with fail_cleanly(as_json):
        from xrm.interact import default_channels, deliver_outbox

        with _open(ctx) as store:
            report = deliver_outbox(store, default_channels(store.settings), limit=limit)
        emit(report.as_dict(), as_json, lambda d: console.print(
            f"sent {d['sent']}, retry {d['retried']}, failed {d['failed']}, bounced {d['bounced']}, "
            f"blocked {d['blocked']}, deferred {d['deferred']}"))


@campaign_app.command("results")
def campaign_results_cmd(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    window_days: Annotated[float, typer.Option(help="Conversion window after the decision.")] = 14,
    as_json: JsonOpt = False,
) -> None:
    """Sends, opens, clicks, conversions, revenue and lift vs the control group (95 % CI)."""
    with fail_cleanly(as_json):
        from xrm.interact import campaign_results

        with _open(ctx) as store:
            data = campaign_results(store, campaign_id, window=timedelta(days=window_days))

        def render(d: dict[str, Any]) -> None:
            lift = d["lift"]["conversion_rate"]
            console.print(f"{d['name']}: target {d['members']['target']}, control "
                          f"{d['members']['control']}; sends {d['sends']}, opens {d['opens']}, clicks "
                          f"{d['clicks']}; conversions {d['conversions']}, revenue {d['revenue']}")
            if lift["difference"] is not None:
                console.print(f"lift {lift['difference']:+.2%} "
                              f"[{lift['ci_low']:+.2%}, {lift['ci_high']:+.2%}] ({lift['method']})")

        emit(data, as_json, render)


@campaign_app.command("demo")
def campaign_demo(
    ctx: typer.Context,
    smtp_host: Annotated[str | None, typer.Option(help="Send through this SMTP host (a sink).")] = None,
    smtp_port: Annotated[int, typer.Option(help="Its port.")] = 25,
    as_json: JsonOpt = False,
) -> None:
    """Run the demo's triggered and batch campaigns (dry run unless --smtp-host is given)."""
    with fail_cleanly(as_json):
        from xrm.interact import run_demo_campaigns

        with _open(ctx) as store:
            data = run_demo_campaigns(store, smtp_host=smtp_host, smtp_port=smtp_port)
        if as_json:
            emit(data, True)
        else:
            _lines(lambda r: f"{r['campaign_id']}: {r['outcomes']}")(data["campaigns"])


@campaign_app.command("schedule")
def campaign_schedule(
    ctx: typer.Context,
    definition: Annotated[Path, typer.Argument(help="Campaign file (TOML or JSON).")],
    every: Annotated[str, typer.Option(help="Interval: 30m, 12h, 1d, 1w ... (at least 5 minutes).")],
    start: Annotated[str | None, typer.Option(help="First run, ISO 8601 UTC (default: now).")] = None,
    schedule_id: Annotated[
        str | None, typer.Option("--id", help="Schedule id (default: campaign id).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a campaign every interval (`xrm serve` runs due schedules; so does `xrm campaign due`)."""
    with fail_cleanly(as_json):
        from xrm.exceptions import InputError
        from xrm.interact import parse_interval, schedule_campaign

        try:
            first = _when(start)
        except ValueError:
            raise InputError(f"--start {start!r} is not an ISO 8601 time, e.g. 2026-12-01T09:00") from None
        data = _definition(definition)
        with _open(ctx) as store:
            sid = schedule_campaign(store, data, every=parse_interval(every), start=first,
                                    schedule_id=schedule_id)
        emit({"schedule_id": sid, "every": every, "start": first}, as_json,
             lambda d: console.print(f"scheduled {d['schedule_id']} every {d['every']}", highlight=False))


@campaign_app.command("schedules")
def campaign_schedules(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List scheduled campaigns: interval, next run, last run and how it ended."""
    with fail_cleanly(as_json):
        from xrm.interact import list_schedules

        with _open(ctx) as store:
            rows = list_schedules(store)
        emit(rows, as_json, _lines(lambda r: (
            f"{r['schedule_id']:20} every {r['every_seconds'] / 3600:g} h, next {r['next_run_at']}"
            f"{'' if r['enabled'] else ' (paused)'}; "
            f"last {r['last_due_at'] or '-'} {r['last_status'] or ''}")))


@campaign_app.command("due")
def campaign_due(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run every scheduled campaign that is due now, once (for cron when no server runs)."""
    with fail_cleanly(as_json):
        from xrm.interact import run_due_schedules

        with _open(ctx) as store:
            ran = run_due_schedules(store)
        emit(ran, as_json, _lines(lambda r: f"{r['schedule_id']} (due {r['due_at']}): {r['status']} "
                                            f"{r.get('outcomes') or r.get('error') or ''}"))


@campaign_app.command("pause")
def campaign_pause(
    ctx: typer.Context,
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    resume: Annotated[bool, typer.Option("--resume", help="Resume instead of pausing.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Delete the schedule.")] = False,
) -> None:
    """Pause a scheduled campaign (or --resume it, or --remove it)."""
    with fail_cleanly():
        from xrm.interact import remove_schedule, set_schedule_enabled

        with _open(ctx) as store:
            if remove:
                remove_schedule(store, schedule_id)
            else:
                set_schedule_enabled(store, schedule_id, resume)
        console.print(f"{schedule_id}: {'removed' if remove else 'resumed' if resume else 'paused'}")


@gdpr_app.command("export")
def gdpr_export(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer key.")],
    output: Annotated[Path | None, typer.Option("--out", help="Write the JSON here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export everything the store holds about a person, as JSON."""
    with fail_cleanly(as_json):
        from xrm.interact import export_profile

        with _open(ctx) as store:
            data = export_profile(store, customer)
        if output:
            output.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str))
            console.print(f"written to {output}")
        else:
            emit(data, True)


@gdpr_app.command("erase")
def gdpr_erase(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer key.")],
    reason: Annotated[str, typer.Option(help="Why (the request's reference).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person everywhere, leaving only hashed suppression entries."""
    with fail_cleanly(as_json):
        from xrm.interact import erase_profile

        if not yes and not typer.confirm(f"Erase {customer} everywhere? This cannot be undone"):
            raise typer.Exit(1)
        with _open(ctx) as store:
            data = erase_profile(store, customer, reason)
        from xrm.store._compact import compact_store

        # DuckDB keeps deleted rows in free blocks of the file: rewrite it with live rows only
        data["store_bytes_freed"] = compact_store(
            store.path, memory_limit=store.settings.memory_limit, settings=store.settings
        )
        emit(data, as_json, lambda d: console.print(f"erased {d['customer']}: {d['rows']}"))


def _load_campaign(path: Path) -> Any:
    from xrm.interact import campaign_from_dict

    return campaign_from_dict(_definition(path))


def _definition(path: Path) -> dict[str, Any]:
    from xrm.exceptions import InputError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"campaign file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"campaign file {path}: not valid {path.suffix[1:] or 'TOML'}: {exc}") from None
    return data
