"""`xrm identify ...`: resolve profiles, explain one, unmerge, the review queue, golden records, export.

The lead registers it: ``app.add_typer(_identify.identify_app, name="identify")``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["identify_app"]

identify_app = typer.Typer(
    help="Identity resolution: profiles, why one person, unmerge, review queue, golden records, export.",
    no_args_is_help=True,
)
review_app = typer.Typer(help="Grey-zone record pairs: list, accept, reject.", no_args_is_help=True)
identify_app.add_typer(review_app, name="review")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who decided (kept with the decision).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


def _open(ctx: typer.Context) -> Any:
    from xrm.store import Store

    return Store.open(state(ctx).settings())


def _profile_id(store: Any, target: str) -> int:
    """A profile id, or TYPE:VALUE / an e-mail / a record id looked up to its profile."""
    from xrm.exceptions import InputError, NotFound
    from xrm.identify import lookup_profiles

    if target.isdigit():
        return int(target)
    if "@" in target and ":" not in target:
        id_type, value = "email", target
    elif ":" in target:
        id_type, value = target.split(":", 1)
        if id_type not in ("user_id", "anonymous_id", "account_id", "loyalty_card", "email", "phone"):
            id_type, value = "record", target  # record ids look like 'webshop:KD123'
    else:
        raise InputError(
            f"{target!r} is neither a profile id nor TYPE:VALUE; e.g. 42, anna@web.de, "
            f"loyalty_card:2400123, webshop:KD123"
        )
    found = lookup_profiles(store, id_type, value)
    if not found:
        raise NotFound(f"no profile holds {id_type} {value!r}")
    if len(found) > 1:
        raise InputError(f"{id_type} {value!r} is on profiles {found}; name one of them")
    return found[0]


@identify_app.command("resolve")
def resolve_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Normalise records, link fuzzy duplicates (Splink), build the identity graph and golden records."""
    with fail_cleanly(as_json):
        from xrm.identify import resolve_identities

        with _open(ctx) as store:
            if as_json:
                summary = resolve_identities(store)
            else:
                with console.status("resolving identities", spinner="dots"):
                    summary = resolve_identities(store)

        def render(d: dict[str, Any]) -> None:
            lk = d.get("linkage") or {}
            console.print(
                f"{d['records']:,} records -> {d['profiles_with_records']:,} profiles with records "
                f"({d['profiles']:,} in all); {d.get('probabilistic_links', 0):,} probabilistic links, "
                f"{d.get('review_pending', 0):,} pairs to review; model: {lk.get('model', 'off')}; "
                f"{d['seconds'] + d['normalize_seconds'] + lk.get('seconds', 0):.1f} s",
                highlight=False,
            )

        emit(summary, as_json, render)


@identify_app.command("explain")
def explain_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Profile id, e-mail, TYPE:VALUE or record id.")],
    as_json: JsonOpt = False,
) -> None:
    """Why is this one person? The chain of links, with the rule or match weights behind each."""
    with fail_cleanly(as_json):
        from xrm.identify import explain_profile

        with _open(ctx) as store:
            ex = explain_profile(store, _profile_id(store, target))
        emit(ex.to_dict(), as_json, lambda _: typer.echo(ex.to_text()))


@identify_app.command("unmerge")
def unmerge_cmd(
    ctx: typer.Context,
    profile: Annotated[int, typer.Argument(help="The profile to split.")],
    part: Annotated[list[str], typer.Argument(help="TYPE:VALUE identifiers or record ids to move out.")],
    reason: ReasonOpt,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Split part of a profile into a new one; every later run keeps them apart."""
    with fail_cleanly(as_json):
        from xrm.identify import unmerge_profile

        pairs = []
        for p in part:
            id_type, _, value = p.partition(":")
            known = ("user_id", "anonymous_id", "account_id", "loyalty_card", "email", "phone")
            pairs.append((id_type, value) if id_type in known else ("record", p))
        with _open(ctx) as store:
            out = unmerge_profile(store, profile, pairs, reason, decided_by=by)
        emit(out, as_json, lambda d: console.print(
            f"profile {d['profile_id']} split; new profile {d['new_profile_id']} "
            f"(override #{d['override_id']})", highlight=False))


@review_app.command("list")
def review_list_cmd(
    ctx: typer.Context,
    status: Annotated[str, typer.Option("--status", help="pending, accepted, rejected or all.")] = "pending",
    limit: Annotated[int, typer.Option("--limit", help="Most items to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Grey-zone pairs, strongest first, with both records and the weight of each field."""
    with fail_cleanly(as_json):
        from xrm.identify import review_items

        with _open(ctx) as store:
            items = review_items(store, status, limit)

        def render(rows: list[dict[str, Any]]) -> None:
            if not rows:
                console.print(f"no {status} review items", highlight=False)
            for it in rows:
                a, b = it["a"] or {}, it["b"] or {}
                p = it["match_probability"] or 0
                console.print(
                    f"[bold]{it['record_a']}[/] ~ [bold]{it['record_b']}[/]  p={p:.3f} ({it['status']})",
                    highlight=False)
                for side in (a, b):
                    console.print(
                        f"    {side.get('first_name')} {side.get('last_name')}, {side.get('birth_date')}, "
                        f"{side.get('email')}, {side.get('phone')}, {side.get('postcode')}",
                        highlight=False, markup=False)
                console.print("    " + ", ".join(f"{k} {v:+.1f}" for k, v in it["weights"].items()
                                                  if v is not None), highlight=False)

        emit(items, as_json, render)


def _decide(ctx: typer.Context, a: str, b: str, decision: str, reason: str, by: str | None,
            as_json: bool) -> None:
    with fail_cleanly(as_json):
        from xrm.identify import decide_review

        with _open(ctx) as store:
            out = decide_review(store, a, b, decision, reason=reason, decided_by=by)
        emit(out, as_json, lambda d: console.print(
            f"{d['record_a']} ~ {d['record_b']}: {d['decision']}; profiles re-resolved", highlight=False))


@review_app.command("accept")
def review_accept_cmd(ctx: typer.Context, record_a: str, record_b: str, reason: ReasonOpt,
                      by: ByOpt = None, as_json: JsonOpt = False) -> None:
    """The two records are one person: link them now and in every later run."""
    _decide(ctx, record_a, record_b, "accepted", reason, by, as_json)


@review_app.command("reject")
def review_reject_cmd(ctx: typer.Context, record_a: str, record_b: str, reason: ReasonOpt,
                      by: ByOpt = None, as_json: JsonOpt = False) -> None:
    """The two records are different people: never join them by fuzzy links."""
    _decide(ctx, record_a, record_b, "rejected", reason, by, as_json)


@identify_app.command("golden")
def golden_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Profile id, e-mail, TYPE:VALUE or record id.")],
    as_json: JsonOpt = False,
) -> None:
    """The golden record of a profile: best value per attribute, with its source record."""
    with fail_cleanly(as_json):
        from xrm.identify import golden_record

        with _open(ctx) as store:
            g = golden_record(store, _profile_id(store, target))

        def render(d: dict[str, Any]) -> None:
            console.print(f"profile {d['profile_id']} ({d['status']})", highlight=False)
            for attr, v in d["attributes"].items():
                console.print(
                    f"  {attr:<11} {v['value']}  [dim]({v['rule']}: {v['source']} {v['record_id']}, "
                    f"{v['n_records']} of the records, {v['n_candidates']} values)[/]", highlight=False)

        emit(g, as_json, render)


@identify_app.command("export")
def export_cmd(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="File to write: .csv, .csv.gz or .parquet.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or parquet (default: from the file's suffix).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every source record with its profile id and how it joined it, as CSV or Parquet.

    One row per record: source, record id, profile id, the identifiers as normalised, and
    joined_by (identifier, probabilistic with its weight, review, email_name, alone)."""
    with fail_cleanly(as_json):
        from xrm.identify import export_records
        from xrm.identify._export import format_for_path

        format_for_path(path, fmt)  # an unknown suffix fails before the store is opened
        with _open(ctx) as store:
            if as_json:
                out = export_records(store, path, fmt)
            else:
                with console.status(f"exporting records to {path}", spinner="dots"):
                    out = export_records(store, path, fmt)

        def render(d: dict[str, Any]) -> None:
            kinds = ", ".join(f"{k} {v:,}" for k, v in d["joined_by"].items())
            console.print(
                f"{d['records']:,} records of {d['profiles']:,} profiles -> {d['path']} "
                f"({d['format']}, {d['bytes'] / 1e6:.1f} MB, {d['seconds']:.1f} s); joined by: {kinds}",
                highlight=False, markup=False,
            )

        emit(out, as_json, render)
