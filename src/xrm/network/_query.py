"""Reads of the latest network analysis for the HTTP API and the charts: one party, its
neighbourhood, the top influencers and the communities.

Every read is one or a few indexed queries on ``network_traits`` and ``relationships`` (indexes on
src and dst), so it stays fast at a million parties; nothing rebuilds the graph.

    >>> party_network(store, "u17")["network_role"]  # doctest: +SKIP
    'influencer'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xrm.exceptions import InputError, NotFound
from xrm.network._types import REL_TYPES
from xrm.store import Store

__all__ = [
    "INFLUENCE_ORDER",
    "MAX_NEIGHBOURHOOD",
    "MAX_STEPS",
    "communities_summary",
    "latest_run",
    "neighbourhood",
    "party_network",
    "top_influencers",
]

MAX_STEPS = 3
MAX_NEIGHBOURHOOD = 500
# What "top" may rank by: the metric columns of network_traits.
INFLUENCE_ORDER = ("pagerank", "eigenvector", "betweenness", "network_value", "reach_2", "degree_in")
# A party is an "influencer" or a "broker" when its PageRank / betweenness is in this top share.
ROLE_TOP_SHARE = 0.01

_TRAIT_COLS = (
    "party_id", "degree_in", "degree_out", "pagerank", "eigenvector", "coreness", "community",
    "betweenness", "reach_1", "reach_2", "own_value", "referred_value", "influenced_value",
    "network_value", "run_id", "computed_at",
)


def _rows(store: Store, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cur = store.sql(sql, params)
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def latest_run(store: Store) -> dict[str, Any]:
    """The latest finished analysis (run id, times); NotFound before the first one."""
    rows = _rows(store, "SELECT run_id, started_at, finished_at FROM network_runs "
                        "WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1")
    if not rows:
        raise NotFound("no network analysis in the store yet; run `xrm network analyse` first")
    return rows[0]


def _check_types(types: Sequence[str] | None) -> list[str]:
    chosen = list(types or REL_TYPES)
    bad = [t for t in chosen if t not in REL_TYPES]
    if bad:
        raise InputError(f"type {bad[0]!r} is not a relationship type; use any of {', '.join(REL_TYPES)}")
    return chosen


def _role(store: Store, traits: dict[str, Any]) -> str:
    """isolated (no tie), influencer (PageRank in the top 1 %), broker (betweenness in the top
    1 %) or member: a label for people, the numbers stay beside it."""
    if not (traits.get("degree_in") or traits.get("degree_out")):
        return "isolated"
    pr_cut, bt_cut = store.sql(
        f"SELECT quantile_disc(pagerank, {1 - ROLE_TOP_SHARE}), quantile_disc(betweenness, "
        f"{1 - ROLE_TOP_SHARE}) FROM network_traits"
    ).fetchall()[0]
    if traits.get("pagerank") is not None and pr_cut is not None and traits["pagerank"] >= pr_cut:
        return "influencer"
    if (traits.get("betweenness") and bt_cut is not None and traits["betweenness"] >= bt_cut
            and traits["betweenness"] > 0):
        return "broker"
    return "member"


def party_network(store: Store, party_id: str) -> dict[str, Any]:
    """A party's network traits of the latest analysis, its roles, network role and rank."""
    latest_run(store)
    found = _rows(store, f"""
        SELECT {', '.join('t.' + c for c in _TRAIT_COLS)}, p.kind, p.name, p.roles
        FROM network_traits t LEFT JOIN parties p USING (party_id) WHERE t.party_id = ?
    """, [party_id])
    if not found:
        raise NotFound(f"party {party_id!r} is not in the latest network analysis "
                       "(unknown id, or added since: run `xrm network analyse`)")
    traits = found[0]
    rank = None
    if traits["pagerank"] is not None:
        rank = int(store.sql("SELECT count(*) + 1 FROM network_traits WHERE pagerank > ?",
                             [traits["pagerank"]]).fetchall()[0][0])
    ties = _rows(store, """
        SELECT rel_type, sum(CASE WHEN src = $p THEN 1 ELSE 0 END) AS outgoing,
               sum(CASE WHEN dst = $p THEN 1 ELSE 0 END) AS incoming
        FROM relationships WHERE src = $p OR dst = $p GROUP BY 1 ORDER BY 1
    """, {"p": party_id})
    return {**traits, "roles": list(traits["roles"] or []), "network_role": _role(store, traits),
            "pagerank_rank": rank, "relationships": ties}


def neighbourhood(
    store: Store,
    party_id: str,
    *,
    steps: int = 1,
    types: Sequence[str] | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """Parties within ``steps`` ties of ``party_id`` (either direction, only ``types``), nearest
    first, at most ``limit``; and every relationship among them.

    Breadth-first, one query per step on the src/dst indexes; a step that would pass ``limit``
    keeps its heaviest ties first and the answer says ``truncated``.
    """
    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"steps={steps}: use 1 to {MAX_STEPS}")
    if not 1 <= limit <= MAX_NEIGHBOURHOOD:
        raise InputError(f"limit={limit}: use 1 to {MAX_NEIGHBOURHOOD}")
    chosen = _check_types(types)
    known = store.sql("SELECT 1 FROM parties WHERE party_id = $p UNION ALL SELECT 1 FROM relationships "
                      "WHERE src = $p OR dst = $p LIMIT 1", {"p": party_id}).fetchall()
    if not known:
        raise NotFound(f"party {party_id!r} has no relationships and is not a known party")
    distance = {party_id: 0}
    frontier = [party_id]
    truncated = False
    for step in range(1, steps + 1):
        if not frontier or len(distance) >= limit:
            truncated = truncated or bool(frontier)
            break
        found = store.sql("""
            WITH f AS (SELECT unnest($f::VARCHAR[]) AS party_id),
            e AS (SELECT r.dst AS other, r.weight FROM relationships r JOIN f ON r.src = f.party_id
                  WHERE list_contains($t, r.rel_type)
                  UNION ALL
                  SELECT r.src, r.weight FROM relationships r JOIN f ON r.dst = f.party_id
                  WHERE list_contains($t, r.rel_type))
            SELECT other FROM e WHERE NOT list_contains($seen, other)
            GROUP BY other ORDER BY sum(weight) DESC, other
        """, {"f": frontier, "t": chosen, "seen": list(distance)}).fetchall()
        room = limit - len(distance)
        truncated = truncated or len(found) > room
        frontier = [r[0] for r in found[:room]]
        distance.update((p, step) for p in frontier)
    ids = list(distance)
    edges = _rows(store, """
        SELECT src, dst, rel_type, weight FROM relationships
        WHERE src IN (SELECT unnest($ids::VARCHAR[])) AND dst IN (SELECT unnest($ids::VARCHAR[]))
          AND list_contains($t, rel_type)
        ORDER BY src, dst, rel_type
    """, {"ids": ids, "t": chosen})
    info = {r["party_id"]: r for r in _rows(store, """
        SELECT i.party_id, p.name, p.kind, t.pagerank, t.community, t.network_value
        FROM (SELECT unnest($ids::VARCHAR[]) AS party_id) i
        LEFT JOIN parties p USING (party_id) LEFT JOIN network_traits t USING (party_id)
    """, {"ids": ids})}
    nodes = [{**info[p], "distance": d} for p, d in distance.items()]
    return {"party_id": party_id, "steps": steps, "types": chosen, "nodes": nodes, "edges": edges,
            "truncated": truncated}


def top_influencers(
    store: Store, *, by: str = "pagerank", limit: int = 20, community: int | None = None
) -> list[dict[str, Any]]:
    """The parties ranked highest by ``by`` (one of :data:`INFLUENCE_ORDER`), optionally in one
    community."""
    if by not in INFLUENCE_ORDER:
        raise InputError(f"by={by!r}: rank by one of {', '.join(INFLUENCE_ORDER)}")
    if not 1 <= limit <= 1000:
        raise InputError(f"limit={limit}: use 1 to 1000")
    latest_run(store)
    where = "WHERE t.community = ?" if community is not None else ""
    return _rows(store, f"""
        SELECT t.party_id, p.name, p.kind, p.roles, t.pagerank, t.eigenvector, t.betweenness,
               t.community, t.degree_in, t.degree_out, t.reach_2, t.network_value
        FROM network_traits t LEFT JOIN parties p USING (party_id) {where}
        ORDER BY t.{by} DESC NULLS LAST, t.party_id LIMIT {int(limit)}
    """, [community] if community is not None else None)


def communities_summary(store: Store, *, limit: int = 50) -> dict[str, Any]:
    """The largest communities: members, value, ties inside and the most influential member."""
    if not 1 <= limit <= 1000:
        raise InputError(f"limit={limit}: use 1 to 1000")
    run = latest_run(store)
    total = store.sql("SELECT count(DISTINCT community), count(community) FROM network_traits").fetchall()[0]
    rows = _rows(store, f"""
        SELECT community, count(*) AS members, sum(network_value) AS network_value,
               sum(own_value) AS own_value, avg(pagerank) AS mean_pagerank,
               arg_max(party_id, pagerank) AS leader, max(pagerank) AS leader_pagerank
        FROM network_traits WHERE community IS NOT NULL
        GROUP BY community ORDER BY members DESC, community LIMIT {int(limit)}
    """)
    return {"run_id": run["run_id"], "communities": int(total[0]), "members": int(total[1]),
            "largest": rows}
