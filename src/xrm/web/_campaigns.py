"""Campaigns: create a draft from choices (never free SQL), preview for a customer, dry run,
launch (interact's run_campaigns writes the outbox), results with lift against the control group."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Response

from xrm.exceptions import InputError, NotFound
from xrm.web._audit import audit
from xrm.web._charts import TIER_ORDER, bar_chart
from xrm.web._context import Ctx, page

__all__ = [
    "AUDIENCES",
    "campaign_detail",
    "campaign_dry_run",
    "campaign_launch",
    "campaign_preview",
    "campaigns",
    "create_campaign",
    "definition_from_form",
]

AUDIENCES = ("email_list", "tier", "segment", "winback", "basket")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,47}")


def _float(form: dict[str, str], name: str, default: float, lo: float, hi: float,
           problems: list[str]) -> float:
    raw = form.get(name, "").strip().replace(",", ".")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} = {raw!r} is not a number")
        return default
    if not lo <= value <= hi:
        problems.append(f"{name} = {value} is out of range ({lo} to {hi})")
    return value


def _by_user_id(table: str, where: str) -> str:
    # Value and needs are keyed by profile id (or by user id before identity runs); messages go
    # to customers by user id (interact's contacts), so map either key to the user ids.
    return (
        f"SELECT DISTINCT i.id_value AS customer FROM {table} v JOIN identifiers i "
        "ON i.id_type = 'user_id' AND (i.id_value = v.customer_id "
        f"OR CAST(i.profile_id AS VARCHAR) = v.customer_id) WHERE {where}"
    )


def definition_from_form(form: dict[str, str], segment_ids: set[int]) -> dict[str, Any]:
    """The campaign_from_dict definition for the form's choices; every problem in one InputError.

    The audience SQL is built here from a fixed list of choices, so no one types SQL in a browser.
    """
    from xrm.interact import CHANNELS, PURPOSES

    problems: list[str] = []
    cid = form.get("campaign_id", "").strip().lower()
    if not _ID.fullmatch(cid):
        problems.append(f"id = {cid!r}: use 2 to 48 lower-case letters, digits and '-'")
    channel, purpose = form.get("channel", "email"), form.get("purpose", "marketing")
    if channel not in CHANNELS:
        problems.append(f"channel = {channel!r}: use one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        problems.append(f"purpose = {purpose!r}: use one of {', '.join(PURPOSES)}")
    kind = form.get("audience", "")
    d: dict[str, Any] = {"id": cid, "name": form.get("name", "").strip() or cid, "channel": channel,
                         "purpose": purpose, "console": {"audience": kind}}
    if kind == "email_list":
        d["audience"] = ("SELECT DISTINCT customer FROM consents WHERE channel = 'email' "
                         "AND purpose = 'marketing'")
    elif kind == "tier":
        tier = form.get("tier", "")
        if tier not in TIER_ORDER:
            problems.append(f"tier = {tier!r}: use one of {', '.join(TIER_ORDER)}")
        d["audience"] = _by_user_id("customer_value", f"v.tier = '{tier}'")
        d["console"]["tier"] = tier
    elif kind == "segment":
        raw = form.get("segment", "")
        if not raw.isdigit() or int(raw) not in segment_ids:
            problems.append(f"segment = {raw!r}: use one of {sorted(segment_ids)}")
            raw = "-1"
        d["audience"] = _by_user_id("customer_needs", f"v.segment_id = {int(raw)}")
        d["console"]["segment"] = int(raw)
    elif kind == "winback":
        threshold = _float(form, "threshold", 0.3, 0.01, 0.99, problems)
        d["trigger"] = {"kind": "trait_below", "threshold": threshold, "trait": "p_alive",
                        "table": "customer_value", "key_column": "customer_id"}
    elif kind == "basket":
        d["trigger"] = {"kind": "abandoned_basket", "wait_minutes": 60, "lookback_days": 3}
    else:
        problems.append(f"audience = {kind!r}: use one of {', '.join(AUDIENCES)}")
    subject, text = form.get("subject", "").strip(), form.get("text", "").strip()
    if not text:
        problems.append("text: write the message (Jinja2, e.g. 'Hallo {{ customer.first_name }}')")
    d["template"] = {"subject": subject or None, "text": text + "\n"}
    offer_id = form.get("offer_id", "").strip()
    if offer_id:
        d["offer"] = {"offer_id": offer_id, "name": form.get("offer_name", "").strip() or offer_id,
                      "value": _float(form, "offer_value", 0.0, 0.0, 1e6, problems)}
    d["control_share"] = _float(form, "control_share", 0.1, 0.0, 0.9, problems)
    if problems:
        raise InputError("campaign form: " + "; ".join(problems))
    return d


def _draft(store: Any, cid: str) -> dict[str, Any] | None:
    rows = store.sql("SELECT CAST(definition AS VARCHAR) FROM console_campaigns WHERE campaign_id = ?",
                     [cid]).fetchall()
    return json.loads(rows[0][0]) if rows else None


def _segment_ids(store: Any) -> set[int]:
    return {int(r[0]) for r in store.sql("SELECT segment_id FROM needs_segments").fetchall()}


def _list(store: Any) -> dict[str, Any]:
    drafts = [
        {"campaign_id": cid, "definition": json.loads(d), "created_by": by, "created_at": at,
         "launched": launched}
        for cid, d, by, at, launched in store.sql(
            """
            SELECT d.campaign_id, CAST(d.definition AS VARCHAR), d.created_by, d.created_at,
                   c.campaign_id IS NOT NULL
            FROM console_campaigns d LEFT JOIN campaigns c USING (campaign_id) ORDER BY d.created_at DESC
            """
        ).fetchall()
    ]
    launched = [
        dict(zip(("campaign_id", "name", "kind", "channel", "runs", "last_run", "targets", "controls",
                  "queued"), r, strict=True))
        for r in store.sql(
            """
            WITH runs AS (SELECT campaign_id, count(*) FILTER (WHERE NOT dry_run) AS runs,
                                 max(started_at) AS last_run FROM campaign_runs GROUP BY 1),
                 members AS (SELECT campaign_id, count(*) FILTER (WHERE grp = 'target') AS targets,
                                    count(*) FILTER (WHERE grp = 'control') AS controls
                             FROM campaign_members GROUP BY 1),
                 msgs AS (SELECT campaign_id, count(*) AS n FROM messages GROUP BY 1)
            SELECT c.campaign_id, c.name, c.kind, c.channel, coalesce(r.runs, 0), r.last_run,
                   coalesce(m.targets, 0), coalesce(m.controls, 0), coalesce(g.n, 0)
            FROM campaigns c LEFT JOIN runs r USING (campaign_id) LEFT JOIN members m USING (campaign_id)
                 LEFT JOIN msgs g USING (campaign_id)
            ORDER BY r.last_run DESC NULLS LAST
            """
        ).fetchall()
    ]
    segments = [{"segment_id": s, "description": d} for s, d in store.sql(
        "SELECT segment_id, description FROM needs_segments ORDER BY segment_id").fetchall()]
    return {"drafts": drafts, "launched": launched, "segments": segments}


def _form_defaults(ctx: Ctx) -> dict[str, str]:
    de = ctx.lang == "de"
    return {
        "subject": "{{ customer.first_name | default('Hallo') }}, " + ("ein Angebot für Sie" if de
                                                                      else "an offer for you"),
        "text": ("Hallo {{ customer.first_name | default('') }},\n\n{{ offer.name }}: "
                 "{{ track('https://shop.example.com/') }}\n\nAbmelden: {{ unsubscribe_url }}")
        if de else ("Hello {{ customer.first_name | default('') }},\n\n{{ offer.name }}: "
                    "{{ track('https://shop.example.com/') }}\n\nUnsubscribe: {{ unsubscribe_url }}"),
    }


@page("view")
def campaigns(ctx: Ctx) -> Response:
    from xrm.interact import CHANNELS, PURPOSES

    return ctx.render("campaigns.html", d=_list(ctx.store), form=_form_defaults(ctx), channels=CHANNELS,
                      purposes=PURPOSES, tiers=TIER_ORDER)


@page("campaign")
def create_campaign(ctx: Ctx) -> Response:
    from xrm.interact import campaign_from_dict

    d = definition_from_form(ctx.form, _segment_ids(ctx.store))
    campaign_from_dict(d)  # checks the template's syntax and the campaign's rules now
    if _draft(ctx.store, d["id"]) is not None:
        raise InputError(f"campaign {d['id']!r} exists already; choose another id")
    assert ctx.user is not None
    now = datetime.now(UTC).replace(tzinfo=None)
    ctx.store.sql("INSERT INTO console_campaigns VALUES (?, ?, ?, ?, ?)",
                  [d["id"], json.dumps(d), ctx.user.username, now, now])
    return ctx.redirect(f"/campaigns/{d['id']}", flash=ctx.t("campaigns.created"))


def _campaign(ctx: Ctx) -> tuple[dict[str, Any], Any]:
    from xrm.interact import campaign_from_dict

    cid = ctx.param("cid")
    d = _draft(ctx.store, cid)
    if d is None:
        raise NotFound(f"no campaign draft {cid!r} in the console; create it on the campaigns page")
    return d, campaign_from_dict(d)


def _results(store: Any, cid: str) -> dict[str, Any] | None:
    from xrm.interact import campaign_results

    if not store.sql("SELECT 1 FROM campaigns WHERE campaign_id = ?", [cid]).fetchall():
        return None
    return campaign_results(store, cid)


def _detail(ctx: Ctx, **extra: Any) -> Response:
    cid = ctx.param("cid")
    d = _draft(ctx.store, cid)
    results = _results(ctx.store, cid)
    if d is None and results is None:
        raise NotFound(f"no campaign {cid!r}; create it on the campaigns page")
    runs = [dict(zip(("run_id", "started_at", "dry_run", "audience", "summary"), r, strict=True))
            for r in ctx.store.sql(
                "SELECT run_id, started_at, dry_run, audience, CAST(summary AS VARCHAR) FROM campaign_runs "
                "WHERE campaign_id = ? ORDER BY started_at DESC LIMIT 20", [cid]).fetchall()]
    charts = {}
    if results and results["members"]["target"] + results["members"]["control"]:
        rates = [{"group": g, "rate": results["conversion_rate"][g] or 0.0} for g in ("target", "control")]
        charts["rates"] = bar_chart(rates, "group", "rate", title=ctx.t("campaigns.rate"),
                                    x_title=ctx.t("campaigns.group"), y_title=ctx.t("campaigns.rate"),
                                    sort=["target", "control"])
    return ctx.render("campaign.html", cid=cid, d=d, results=results, runs=runs, charts=charts,
                      preview=extra.get("preview"), dry=extra.get("dry"),
                      preview_customer=extra.get("preview_customer", ""))


@page("view")
def campaign_detail(ctx: Ctx) -> Response:
    return _detail(ctx)


@page("campaign")
def campaign_preview(ctx: Ctx) -> Response:
    from xrm.interact import preview

    _, campaign = _campaign(ctx)
    customer = ctx.form.get("customer", "").strip()
    if not customer:
        raise InputError("preview: name a customer key (user id), e.g. from the customer's 360 page")
    return _detail(ctx, preview=preview(ctx.store, campaign, customer), preview_customer=customer)


@page("campaign")
def campaign_dry_run(ctx: Ctx) -> Response:
    from xrm.interact import run_campaigns

    _, campaign = _campaign(ctx)
    run = run_campaigns(ctx.store, [campaign], dry_run=True)[0]
    return _detail(ctx, dry=run.as_dict())


@page("launch")
def campaign_launch(ctx: Ctx) -> Response:
    from xrm.interact import run_campaigns

    _, campaign = _campaign(ctx)
    run = run_campaigns(ctx.store, [campaign], dry_run=False)[0]
    assert ctx.user is not None
    audit(ctx.store, ctx.user.username, "launch", campaign.campaign_id,
          {"run_id": run.run_id, "outcomes": run.outcomes})
    queued = run.outcomes.get("queued", 0)
    return ctx.redirect(f"/campaigns/{campaign.campaign_id}", flash=ctx.t("campaigns.launched_msg", n=queued))
