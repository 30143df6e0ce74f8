"""The overview page: customers, active vs dropped out, tiers, segments, campaigns, alerts."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import RedirectResponse

from xrm.web._charts import TIER_ORDER, bar_chart
from xrm.web._context import PREFIX, Ctx, page

__all__ = ["ACTIVE_THRESHOLD", "overview", "root"]

ACTIVE_THRESHOLD = 0.5  # P(alive) at or above: active; below: dropped out


def _one(store: Any, sql: str, params: Any = None) -> Any:
    rows = store.sql(sql, params).fetchall()
    return rows[0] if rows else None


def overview_data(store: Any) -> dict[str, Any]:
    profiles = _one(store, "SELECT count(*) FROM profiles WHERE status = 'active'")[0]
    scored, active, clv = _one(store, (
        "SELECT count(*), count(*) FILTER (WHERE p_alive >= ?), coalesce(sum(clv), 0) FROM customer_value"
    ), [ACTIVE_THRESHOLD])
    tiers = [
        {"tier": t, "n": n, "clv": float(v or 0)}
        for t, n, v in store.sql("SELECT tier, count(*), sum(clv) FROM customer_value GROUP BY 1").fetchall()
    ]
    tiers.sort(key=lambda r: TIER_ORDER.index(r["tier"]) if r["tier"] in TIER_ORDER else 99)
    segments = [
        {"segment_id": s, "description": d, "customers": n}
        for s, d, n in store.sql(
            "SELECT segment_id, description, customers FROM needs_segments ORDER BY customers DESC"
        ).fetchall()
    ]
    campaigns = [
        dict(zip(("campaign_id", "name", "kind", "channel", "last_run", "members", "targets", "controls"),
                 r, strict=True))
        for r in store.sql(
            """
            SELECT c.campaign_id, c.name, c.kind, c.channel, max(r.started_at),
                   (SELECT count(*) FROM campaign_members m WHERE m.campaign_id = c.campaign_id),
                   (SELECT count(*) FROM campaign_members m WHERE m.campaign_id = c.campaign_id
                      AND m.grp = 'target'),
                   (SELECT count(*) FROM campaign_members m WHERE m.campaign_id = c.campaign_id
                      AND m.grp = 'control')
            FROM campaigns c LEFT JOIN campaign_runs r USING (campaign_id)
            GROUP BY ALL ORDER BY max(r.started_at) DESC NULLS LAST LIMIT 5
            """
        ).fetchall()
    ]
    alerts = {
        "rejected": _one(store, "SELECT count(*) FROM rejected_rows")[0]
        + _one(store, "SELECT count(*) FROM network_rejects")[0],
        "review": _one(store, "SELECT count(*) FROM review_queue WHERE status = 'pending'")[0],
        "blocked": _one(store, "SELECT count(*) FROM rejected_identifiers")[0],
    }
    return {"profiles": profiles, "scored": scored, "active": active, "dropped": scored - active,
            "clv_total": float(clv), "tiers": tiers, "segments": segments, "campaigns": campaigns,
            "alerts": alerts}


@page("view")
def overview(ctx: Ctx) -> Response:
    data = overview_data(ctx.store)
    chart = bar_chart(data["tiers"], "tier", "clv", title=ctx.t("overview.clv_chart"),
                      x_title=ctx.t("customer.tier"), y_title=ctx.t("customer.clv"), sort=TIER_ORDER)
    return ctx.render("overview.html", d=data, charts={"tiers": chart})


async def root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)
