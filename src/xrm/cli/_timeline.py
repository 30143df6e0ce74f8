"""`xrm timeline`: every interaction of one profile, newest first, as a table or JSON.

The CLI face of :func:`xrm.interact.timeline` (HTTP: ``GET /v1/profiles/{id}/timeline``). The
profile is named by its id or by any identifier (``--id-type email --id-value ...``); an
identifier that several profiles hold as evidence (a family's shared e-mail) is refused with the
list of candidates, because guessing would show one person another's history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state
from xrm.exceptions import InputError, NotFound

__all__ = ["timeline_command"]


def _profile(store: Any, profile_id: int | None, id_type: str | None, id_value: str | None) -> int:
    if profile_id is not None:
        if id_type or id_value:
            raise InputError("give a PROFILE_ID or --id-type/--id-value, not both")
        return profile_id
    if not (id_type and id_value):
        raise InputError(
            "name the profile: xrm timeline PROFILE_ID, or --id-type email --id-value ann@example.com"
        )
    from xrm.identify import lookup_profiles

    ids = lookup_profiles(store, id_type, id_value)
    if not ids:
        raise NotFound(f"no active profile holds {id_type} {id_value!r}; check the value or run "
                       "`xrm identify resolve` after loading")
    if len(ids) > 1:
        raise InputError(
            f"{id_type} {id_value!r} is evidence on {len(ids)} profiles ({', '.join(map(str, ids))}); "
            "name one of them by PROFILE_ID"
        )
    return ids[0]


def _render(page: dict[str, Any]) -> None:
    title = f"profile {page['profile_id']}"
    if page["requested_id"] != page["profile_id"]:
        title += f" (profile {page['requested_id']} was merged into it)"
    table = Table(title=title, title_justify="left")
    for col in ("time (UTC)", "type", "name", "channel", "source", "details"):
        table.add_column(col, overflow="fold")
    for item in page["items"]:
        details = json.dumps(item["data"], ensure_ascii=False, default=str)
        table.add_row(
            (item["ts"] or "")[:19].replace("T", " "), item["type"], item["name"] or "",
            item["channel"] or "", item["source"] or "", details[:80] + ("…" if len(details) > 80 else ""),
        )
    console.print(table)
    if page["next_cursor"]:
        console.print(f"more: --cursor {page['next_cursor']}", highlight=False)


def timeline_command(
    ctx: typer.Context,
    profile_id: Annotated[int | None, typer.Argument(help="The profile's id.")] = None,
    id_type: Annotated[str | None, typer.Option(help="Find the profile by identifier type: email, "
                                                     "phone, user_id, anonymous_id ...")] = None,
    id_value: Annotated[str | None, typer.Option(help="The identifier's value.")] = None,
    type: Annotated[list[str] | None, typer.Option(
        "--type", help="Call types or entries: track, page, identify, consent, merge ... (repeatable)."
    )] = None,
    channel: Annotated[list[str] | None, typer.Option(
        "--channel", help="Channels: email, sms, web, app, store ... (repeatable).")] = None,
    event: Annotated[list[str] | None, typer.Option(
        "--event", help="Event or page names, e.g. 'Order Completed' (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601, UTC, inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601, UTC, exclusive).")] = None,
    limit: Annotated[int, typer.Option(help="Items per page (1 to 500).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page: the cursor a page printed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show every interaction of a profile across channels, newest first (filterable, paged)."""
    with fail_cleanly(as_json):
        from xrm.interact import timeline
        from xrm.store import Store

        def when(text: str | None, name: str) -> datetime | None:
            try:
                return datetime.fromisoformat(text) if text else None
            except ValueError:
                raise InputError(f"--{name} {text!r} is not an ISO 8601 time; use e.g. 2026-05-01 "
                                 "or 2026-05-01T12:00") from None

        with Store.open(state(ctx).settings(), read_only=True) as store:
            pid = _profile(store, profile_id, id_type, id_value)
            page = timeline(
                store, pid, types=type or (), channels=channel or (), events=event or (),
                since=when(since, "since"), until=when(until, "until"), limit=limit, cursor=cursor,
            ).as_dict()
        emit(page, as_json, _render)
