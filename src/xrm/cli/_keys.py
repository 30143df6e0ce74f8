"""`xrm keys ...`: API keys (create, list, rotate, revoke) and the API's audit log.

The store holds only each key's hash; ``create`` and ``rotate`` print the token once. While
``xrm serve`` runs it owns the store: rotate or revoke then with ``POST /v1/keys/{key}/rotate``
or ``/revoke`` (docs/api.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="API keys (scopes write, read, admin; stored hashed) and the API's audit log.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
KeyArg = Annotated[str, typer.Argument(help="The key's name or id (the 8 characters after xrm_).")]
EventKbOpt = Annotated[int | None, typer.Option(
    "--max-event-kb", help="Largest call body in KB, 1-32 (default: 32, Segment's); over it: 413.")]
BatchKbOpt = Annotated[int | None, typer.Option(
    "--max-batch-kb", help="Largest batch request in KB, 1-500 (default: 500, Segment's); over it: 413.")]


def _show_token(d: dict[str, Any]) -> None:
    console.print(
        f"{d['name']} ({d['scope']}, workspace {d['workspace']}), id {d['key_id']}\n"
        "token (shown once, store it now; only its hash is kept):", highlight=False,
    )
    typer.echo(d["token"])  # stdout, alone on its line: `xrm keys create x | tail -1`


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique name: letters, digits, . _ @ - (up to 64).")],
    scope: Annotated[str, typer.Option("--scope", help="write (events only), read (profiles, timeline, "
                                       "decisions) or admin (all, plus keys and audit).")] = "write",
    workspace: Annotated[str | None, typer.Option(
        "--workspace", help="Source name events sent with the key are stored under (default: NAME).")] = None,
    rate: Annotated[float | None, typer.Option(
        "--rate", help="Requests per second (default: the api_rate_per_s setting).")] = None,
    burst: Annotated[int | None, typer.Option(
        "--burst", help="Requests at once before the rate applies (default: api_rate_burst).")] = None,
    max_event_kb: EventKbOpt = None,
    max_batch_kb: BatchKbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print its token once."""
    with fail_cleanly(as_json):
        from xrm.api._keys import create_key
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            key, token = create_key(store, name, scope, workspace=workspace, rate_per_s=rate, burst=burst,
                                    max_event_kb=max_event_kb, max_batch_kb=max_batch_kb)
        emit({**key.as_dict(), "token": token}, as_json, _show_token)


@keys_app.command("list")
def list_cmd(
    ctx: typer.Context,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the keys: prefix, name, scope, workspace, limits; never a secret."""
    with fail_cleanly(as_json):
        from xrm.api._keys import list_keys
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            rows = [k.as_dict() for k in list_keys(store, include_revoked=all_keys)]

        def render(rows: list[dict[str, Any]]) -> None:
            table = Table("prefix", "name", "scope", "workspace", "rate/s", "burst", "KB call/batch",
                          "created", "state")
            for r in rows:
                status = "revoked" if r["revoked_at"] else ("rotating" if r["secrets"] > 1 else "active")
                table.add_row(
                    r["prefix"] + "...", r["name"], r["scope"], r["workspace"],
                    "" if r["rate_per_s"] is None else f"{r['rate_per_s']:g}",
                    "" if r["burst"] is None else str(r["burst"]),
                    f"{r['max_event_kb'] or ''}/{r['max_batch_kb'] or ''}".strip("/"),
                    r["created_at"].isoformat(timespec="seconds"), status,
                )
            console.print(table)

        emit(rows, as_json, render)


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    key: KeyArg,
    grace: Annotated[float, typer.Option(
        "--grace", help="Seconds the old token stays valid, for clients to switch (0: ends now).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Give a key a new token; the old one stops after --grace seconds."""
    with fail_cleanly(as_json):
        from xrm.api._keys import rotate_key
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            new, token = rotate_key(store, key, grace_s=grace)
        emit({**new.as_dict(), "token": token, "grace_s": grace}, as_json, _show_token)


@keys_app.command("limits")
def limits(
    ctx: typer.Context,
    key: KeyArg,
    max_event_kb: EventKbOpt = None,
    max_batch_kb: BatchKbOpt = None,
    clear: Annotated[bool, typer.Option("--clear", help="Back to the server's 32 / 500 KB.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a key's size limits (options left out keep their value); a server sees it within seconds."""
    with fail_cleanly(as_json):
        from xrm.api._keys import find_key, set_limits
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            now = find_key(store, key)
            event_kb = now.max_event_kb if max_event_kb is None else max_event_kb
            batch_kb = now.max_batch_kb if max_batch_kb is None else max_batch_kb
            changed = set_limits(store, key, max_event_kb=None if clear else event_kb,
                                 max_batch_kb=None if clear else batch_kb)
        emit(changed.as_dict(), as_json, lambda d: console.print(
            f"{d['name']}: at most {d['max_event_kb'] or 32} KB per call, {d['max_batch_kb'] or 500} KB per "
            f"batch", highlight=False))


@keys_app.command("revoke")
def revoke(ctx: typer.Context, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Revoke a key: every token of it stops at once."""
    with fail_cleanly(as_json):
        from xrm.api._keys import revoke_key
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            gone = revoke_key(store, key)
        emit(gone.as_dict(), as_json,
             lambda d: console.print(f"revoked {d['name']} ({d['prefix']}...)", highlight=False))


@keys_app.command("audit")
def audit(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Option("--key", help="Only this key (name or id).")] = None,
    profile: Annotated[str | None, typer.Option("--target", help="Only this profile id (or key id).")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", help="profile.read, timeline.read, profile.lookup, key.create ...")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows, newest first.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The API's audit log: who read whose data, when and why; key changes."""
    with fail_cleanly(as_json):
        from xrm.api._audit import list_audit
        from xrm.store import Store

        with Store.open(state(ctx).settings()) as store:
            rows = [r.as_dict() for r in list_audit(store, key=key, target=profile, action=action,
                                                     limit=limit)]

        def render(rows: list[dict[str, Any]]) -> None:
            table = Table("when (UTC)", "key", "action", "target", "purpose", "request")
            for r in rows:
                table.add_row(
                    r["logged_at"].isoformat(timespec="seconds"), f"{r['key_name']} ({r['key_id']})",
                    r["action"], r["target"] or "", r["purpose"] or "", f"{r['method']} {r['path']}",
                )
            console.print(table)

        emit(rows, as_json, render)
