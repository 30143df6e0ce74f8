"""Degree and PageRank of the party graph by iterative joins, as Ibis expressions (DuckDB and Spark).

The same graph as :func:`~xrm.network.load_graph` (credit direction, symmetric types both ways,
parallel edges merged with their weights summed) and the same PageRank as
:func:`~xrm.network.network_metrics` (Page et al. 1999, damping 0.85, weighted; dangling parties
spread their rank evenly, as igraph and networkx do), computed as power iteration in the engine:

    PR_{k+1}(v) = (1 - d) / N + d * (sum_{u -> v} PR_k(u) w_uv / W_u + D_k / N)

where ``W_u`` is ``u``'s out-weight and ``D_k`` the rank held by parties without out-edges.  Each
round is one join and one aggregate over the edges; the graph never leaves the engine.

    >>> ranks, info = party_pagerank(engine, party_edges(engine.table("relationships")))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ibis

from xrm.exceptions import InputError
from xrm.network._types import _CREDIT_TO_SRC, REL_TYPES, SYMMETRIC_TYPES

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["party_degrees", "party_edges", "party_nodes", "party_pagerank"]


def _chosen(types: Sequence[str] | None) -> list[str]:
    chosen = list(types) if types else list(REL_TYPES)
    bad = [t for t in chosen if t not in REL_TYPES]
    if bad:
        raise InputError(f"types {bad} are not relationship types (known: {', '.join(REL_TYPES)})")
    return chosen


def party_nodes(relationships: ir.Table, types: Sequence[str] | None = None) -> ir.Table:
    """Every party in a relationship of the chosen types: ``party_id``."""
    r = relationships.filter(relationships.rel_type.isin(_chosen(types)))
    return r.select(party_id=r.src).union(r.select(party_id=r.dst)).distinct()


def party_edges(relationships: ir.Table, types: Sequence[str] | None = None) -> ir.Table:
    """Directed edges in the credit direction, merged: ``(a, b, w)``."""
    r = relationships.filter(relationships.rel_type.isin(_chosen(types)))
    against = r.rel_type.isin(sorted(_CREDIT_TO_SRC))
    w = r.weight.cast("float64")
    e = r.select(a=ibis.ifelse(against, r.dst, r.src), b=ibis.ifelse(against, r.src, r.dst), w=w)
    sym = r.filter(r.rel_type.isin(sorted(SYMMETRIC_TYPES)))
    e = e.union(sym.select(a=sym.dst, b=sym.src, w=sym.weight.cast("float64")), distinct=False)
    return e.group_by(["a", "b"]).aggregate(w=e.w.sum())


def party_degrees(nodes: ir.Table, edges: ir.Table) -> ir.Table:
    """``(party_id, degree_in, degree_out)`` in the merged directed graph."""
    outs = edges.group_by("a").aggregate(degree_out=edges.count())
    ins = edges.group_by("b").aggregate(degree_in=edges.count())
    t = nodes.left_join(outs, nodes.party_id == outs.a)
    t = t.select(party_id=t.party_id, degree_out=t.degree_out)
    t = t.left_join(ins, t.party_id == ins.b)
    return t.select(
        party_id=t.party_id,
        degree_in=t.degree_in.fill_null(0).cast("int64"),
        degree_out=t.degree_out.fill_null(0).cast("int64"),
    )


def party_pagerank(
    engine: Any,
    nodes: ir.Table,
    edges: ir.Table,
    *,
    damping: float = 0.85,
    tol: float = 1e-9,
    max_rounds: int = 100,
) -> tuple[ir.Table, dict[str, Any]]:
    """``(party_id, pagerank)`` and ``{'rounds', 'delta', 'parties', 'converged'}``; stops when the
    L1 change of a round is below ``tol`` or after ``max_rounds`` rounds (``tol=0``: exactly
    ``max_rounds`` rounds, without measuring the change).

    ``engine`` is a :class:`~xrm.store.BatchEngine`: it caches each round's ranks.
    """
    if not 0.0 < damping < 1.0:
        raise InputError(f"damping = {damping!r} must be between 0 and 1 (0.85 is usual)")
    nodes = engine.cache(nodes.select("party_id"))
    n = int(nodes.count().to_pyarrow().as_py())
    if n == 0:
        return nodes.mutate(pagerank=ibis.literal(0.0)), {"rounds": 0, "delta": 0.0, "parties": 0,
                                                          "converged": True}
    wout = edges.group_by("a").aggregate(wout=edges.w.sum())
    ew = edges.join(wout, "a")
    ew = engine.cache(ew.select(a=ew.a, b=ew.b, p=ew.w / ew.wout))
    sources = engine.cache(wout.select(src=wout.a))
    base = (1.0 - damping) / n
    ranks = engine.cache(nodes.mutate(pagerank=ibis.literal(1.0 / n)))
    delta = float("inf")
    rounds = 0
    while rounds < max_rounds and delta >= tol:
        rounds += 1
        dangling = ranks.filter(~ranks.party_id.isin(sources.src)).pagerank.sum().fill_null(0.0)
        flow = ew.join(ranks, ew.a == ranks.party_id)
        flow = flow.group_by(flow.b).aggregate(s=(flow.pagerank * flow.p).sum())
        t = nodes.left_join(flow, nodes.party_id == flow.b)
        new = engine.cache(
            t.select(
                party_id=t.party_id,
                pagerank=base + damping * (t.s.fill_null(0.0) + dangling.as_scalar() / n),
            )
        )
        if tol > 0:  # one more job per round: skipped when a fixed number of rounds is asked for
            d = new.join(ranks, "party_id")
            delta = float(d.select(x=(d.pagerank - d.pagerank_right).abs()).x.sum().to_pyarrow().as_py())
        engine.release(ranks)
        ranks = new
    engine.release(ew, sources)
    return ranks, {"rounds": rounds, "delta": delta if tol > 0 else None, "parties": n,
                   "converged": delta < tol}
