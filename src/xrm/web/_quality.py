"""Data quality: rejected rows with reasons, the identity review queue, blocked identifiers."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from xrm.exceptions import InputError, NotYetImplemented
from xrm.web._audit import audit
from xrm.web._context import Ctx, page
from xrm.web._customers import _identify

__all__ = ["quality", "quality_data", "review_decide"]


def _rows(store: Any, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cur = store.sql(sql, params)
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def quality_data(store: Any) -> dict[str, Any]:
    try:
        review: list[dict[str, Any]] | None = _identify("review_items")(store, "pending", 30)
    except NotYetImplemented:
        review = None
    return {
        "rejected_by_reason": _rows(store, """
            SELECT file, field, reason, count(*) AS n FROM rejected_rows GROUP BY ALL ORDER BY n DESC LIMIT 20
        """),
        "rejected": _rows(store, """
            SELECT file, line, field, value, reason FROM rejected_rows ORDER BY rejected_at DESC, file, line
            LIMIT 50
        """),
        "network_rejects": _rows(store, """
            SELECT file, line, field, value, reason FROM network_rejects ORDER BY rejected_at DESC LIMIT 20
        """),
        "review": review,
        "review_pending": store.sql(
            "SELECT count(*) FROM review_queue WHERE status = 'pending'").fetchall()[0][0],
        "blocked": _rows(store, """
            SELECT id_type, id_value, reason, n_seen FROM rejected_identifiers ORDER BY n_seen DESC NULLS LAST
            LIMIT 50
        """),
        "dropped": _rows(store, """
            SELECT regexp_extract(reason, '^([^:(]+(: [^,(:]+)?)', 1) AS reason, count(*) AS n
            FROM identity_links WHERE status = 'dropped' GROUP BY 1 ORDER BY 2 DESC LIMIT 20
        """),
    }


@page("view")
def quality(ctx: Ctx) -> Response:
    return ctx.render("quality.html", d=quality_data(ctx.store))


@page("decide")
def review_decide(ctx: Ctx) -> Response:
    decision = ctx.form.get("decision", "")
    if decision not in ("accepted", "rejected"):
        raise InputError(f"decision = {decision!r}: use accepted or rejected")
    a, b = ctx.form.get("record_a", ""), ctx.form.get("record_b", "")
    assert ctx.user is not None
    reason = ctx.form.get("reason", "").strip() or f"checked in the console by {ctx.user.username}"
    decide = _identify("decide_review")
    result = decide(ctx.store, a, b, decision, reason=reason, decided_by=ctx.user.username)
    audit(ctx.store, ctx.user.username, "review", f"{a} {b}", {"decision": decision, "reason": reason})
    word = ctx.t("quality.accept" if result.get("decision") == "accepted" else "quality.reject")
    return ctx.redirect("/quality", flash=ctx.t("quality.decided", decision=word))
