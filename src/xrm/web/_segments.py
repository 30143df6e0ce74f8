"""Segments and value: needs segments with sizes and value shares, the tier pyramid, distributions."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response

from xrm.web._charts import TIER_ORDER, histogram, pyramid
from xrm.web._context import Ctx, page

__all__ = ["segments", "segments_data"]


def _binned(store: Any, column: str, lo: float, hi: float, bins: int) -> list[dict[str, Any]]:
    width = (hi - lo) / bins if hi > lo else 1.0
    rows = store.sql(
        f"""
        SELECT least(floor(({column} - $lo) / $w), $b - 1) AS k, count(*)
        FROM customer_value WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1
        """,
        {"lo": lo, "w": width, "b": bins},
    ).fetchall()
    return [{"bin_start": lo + k * width, "bin_end": lo + (k + 1) * width, "n": n} for k, n in rows]


def segments_data(store: Any) -> dict[str, Any]:
    total = store.sql("SELECT coalesce(sum(clv), 0), count(*) FROM customer_value").fetchall()[0]
    segs = []
    for sid, desc, n, centroid, value in store.sql(
        """
        SELECT s.segment_id, s.description, s.customers, CAST(s.centroid AS VARCHAR),
               (SELECT sum(v.clv) FROM customer_needs c JOIN customer_value v USING (customer_id)
                WHERE c.segment_id = s.segment_id)
        FROM needs_segments s ORDER BY s.customers DESC
        """
    ).fetchall():
        c = json.loads(centroid) if centroid else {}
        value = float(value or 0)
        segs.append({"segment_id": sid, "description": desc, "customers": n,
                     "value": value, "value_share": value / total[0] if total[0] else None,
                     "customer_share": n / total[1] if total[1] else None,
                     "online_share": c.get("online_share"), "price_index": c.get("price_index"),
                     "purchases_per_month": c.get("purchases_per_month")})
    tiers = {t: {"tier": t, "n": 0, "clv": 0.0} for t in TIER_ORDER}
    for t, n, clv in store.sql("SELECT tier, count(*), sum(clv) FROM customer_value GROUP BY 1").fetchall():
        tiers[t] = {"tier": t, "n": n, "clv": float(clv or 0)}
    rows = [r for r in tiers.values() if r["n"] or r["tier"] in TIER_ORDER]
    for r in rows:
        r["label"] = f"{r['tier']} · {r['n']:,}"
        r["value_share"] = r["clv"] / total[0] if total[0] else None
    hi = store.sql("SELECT quantile_cont(clv, 0.99) FROM customer_value").fetchall()[0][0] or 1.0
    return {"segments": segs, "tiers": rows, "clv_total": float(total[0]), "customers": total[1],
            "clv_bins": _binned(store, f"least(clv, {float(hi)!r})", 0.0, float(hi), 30),
            "palive_bins": _binned(store, "p_alive", 0.0, 1.0, 20)}


@page("view")
def segments(ctx: Ctx) -> Response:
    d = segments_data(ctx.store)
    charts = {
        "pyramid": pyramid([r for r in d["tiers"] if r["n"]], title=ctx.t("segments.pyramid"),
                           count_title=ctx.t("segments.size")),
        "clv": histogram(d["clv_bins"], "clv", title=ctx.t("segments.clv_hist"),
                         x_title=ctx.t("customer.clv"), y_title=ctx.t("segments.size")),
        "palive": histogram(d["palive_bins"], "p_alive", title=ctx.t("segments.palive_hist"),
                            x_title=ctx.t("customer.p_alive"), y_title=ctx.t("segments.size")),
    }
    return ctx.render("segments.html", d=d, charts=charts)
