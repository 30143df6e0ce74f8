"""The network over HTTP (read scope): a party's traits and neighbourhood, top influencers,
communities, Return on Network: GET /v1/network/...

Reads the latest ``xrm network analyse`` (the graph is not rebuilt per request). A party's traits,
its neighbourhood and the influencer list name people: each writes an audit row first
(``network.party.read``, ``network.neighbourhood.read``, ``network.influencers.read``; purpose from
``X-Xrm-Purpose`` or ``?purpose=``). Communities and Return on Network are aggregates.

    >>> httpx.get(f"{url}/v1/network/parties/u17/neighbourhood?steps=2", headers=h)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from xrm.api._auth import audit, purpose_of
from xrm.network import REL_TYPES
from xrm.network._query import (
    INFLUENCE_ORDER,
    MAX_NEIGHBOURHOOD,
    MAX_STEPS,
    communities_summary,
    latest_run,
    neighbourhood,
    party_network,
    top_influencers,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/network", tags=["network"])
Purpose = Annotated[str | None, Depends(purpose_of)]


@router.get("/parties/{party_id}", summary="A party's network traits, role and network value")
def get_party(request: Request, party_id: str, purpose: Purpose = None) -> dict[str, Any]:
    """PageRank (and its rank), eigenvector, k-core, community, betweenness, reach, own /
    referred / influenced / network value, the party's roles and network role (influencer,
    broker, member, isolated), and its relationships by type."""
    audit(request, "network.party.read", party_id, purpose)
    return party_network(request.app.state.store, party_id)


@router.get("/parties/{party_id}/neighbourhood", summary="Parties within k steps, and their ties")
def get_neighbourhood(
    request: Request,
    party_id: str,
    steps: Annotated[int, Query(ge=1, le=MAX_STEPS, description="Ties away from the party.")] = 1,
    type: Annotated[
        list[str] | None,
        Query(description=f"Relationship types to follow (repeatable; default all): {', '.join(REL_TYPES)}"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_NEIGHBOURHOOD, description="Most parties returned, nearest first.")
    ] = 200,
    purpose: Purpose = None,
) -> dict[str, Any]:
    """Nodes (distance, name, PageRank, community, network value) and every relationship among
    them; ``truncated`` when ``limit`` cut the neighbourhood short."""
    audit(request, "network.neighbourhood.read", party_id, purpose)
    return neighbourhood(request.app.state.store, party_id, steps=steps, types=type, limit=limit)


@router.get("/influencers", summary="The top parties by PageRank (or another measure)")
def get_influencers(
    request: Request,
    by: Annotated[str, Query(description=f"Rank by one of: {', '.join(INFLUENCE_ORDER)}.")] = "pagerank",
    community: Annotated[int | None, Query(description="Only this community.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    purpose: Purpose = None,
) -> dict[str, Any]:
    store = request.app.state.store
    rows = top_influencers(store, by=by, limit=limit, community=community)
    audit(request, "network.influencers.read", ",".join(r["party_id"] for r in rows) or None, purpose)
    return {"run_id": latest_run(store)["run_id"], "by": by, "influencers": rows}


@router.get("/communities", summary="Communities: members, value, most influential member")
def get_communities(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000, description="Largest first.")] = 50
) -> dict[str, Any]:
    return communities_summary(request.app.state.store, limit=limit)


@router.get("/return-on-network", summary="Return on Network by relationship type and community")
def get_return_on_network(
    request: Request, communities: Annotated[int, Query(ge=1, le=1000)] = 20
) -> dict[str, Any]:
    """Value generated through relationships against the cost of keeping them (the economics in
    network.toml), in total, by relationship type and for the top communities."""
    from xrm.network import return_on_network

    store = request.app.state.store
    latest_run(store)  # 404 before the first analysis, as the other reads
    return return_on_network(store, top_communities=communities)
