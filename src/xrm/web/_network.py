"""Network: influencers, communities, a drawn neighbourhood, conversations and sentiment over time."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from xrm.web._charts import line_chart
from xrm.web._context import Ctx, page
from xrm.web._customers import neighbourhood

__all__ = ["network", "network_data"]


def _rows(store: Any, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cur = store.sql(sql, params)
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def network_data(store: Any) -> dict[str, Any]:
    influencers = _rows(store, """
        SELECT t.party_id, p.name, p.kind, t.pagerank, t.degree_in, t.degree_out, t.community,
               t.reach_2, t.network_value
        FROM network_traits t LEFT JOIN parties p USING (party_id)
        ORDER BY t.pagerank DESC NULLS LAST LIMIT 15
    """)
    communities = _rows(store, """
        SELECT community, count(*) AS members, sum(network_value) AS network_value,
               arg_max(party_id, pagerank) AS leader
        FROM network_traits WHERE community IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 15
    """)
    rel_types = _rows(store, "SELECT rel_type, count(*) AS n FROM relationships GROUP BY 1 ORDER BY 2 DESC")
    sentiment = _rows(store, """
        SELECT date_trunc('week', ts) AS week, coalesce(lang, '?') AS lang, avg(sentiment) AS sentiment,
               count(*) AS posts
        FROM posts GROUP BY ALL ORDER BY 1
    """)
    conversations = None
    if sentiment:
        from xrm.network import conversation_report

        conversations = conversation_report(store, top=8)
    return {"influencers": influencers, "communities": communities, "rel_types": rel_types,
            "sentiment": sentiment, "conversations": conversations}


@page("view")
def network(ctx: Ctx) -> Response:
    d = network_data(ctx.store)
    top = d["influencers"][0]["party_id"] if d["influencers"] else ""
    party = ctx.query.get("party", "").strip() or top
    charts: dict[str, Any] = {}
    if party:
        graph = neighbourhood(ctx.store, party, ctx.t)
        if graph:
            charts["graph"] = graph
    if d["sentiment"]:
        values = [{**r, "week": r["week"].isoformat()} for r in d["sentiment"]]
        charts["sentiment"] = line_chart(values, "week", "sentiment", colour="lang",
                                         title=ctx.t("network.sentiment"))
    return ctx.render("network.html", d=d, party=party, charts=charts)
