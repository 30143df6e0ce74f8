"""The party graph in igraph: built from the relationships table, edges in the credit direction.

Each stored relationship becomes an edge along which influence flows (``A mentions B``: A -> B;
``A referred B``: B -> A); symmetric types give both directions.  Parallel edges of several types
are merged with their weights summed.

    >>> from xrm.network import graph_from_edges
    >>> pg = graph_from_edges(["a", "b"], ["b", "c"], ["mentions", "mentions"])
    >>> pg.names, pg.directed.ecount()
    (['a', 'b', 'c'], 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from xrm.exceptions import InputError
from xrm.network._types import REL_TYPES, SYMMETRIC_TYPES, credit_flows_to_dst
from xrm.store import Store

if TYPE_CHECKING:
    import igraph as ig

__all__ = ["PartyGraph", "graph_from_arrays", "graph_from_edges", "load_graph"]


@dataclass
class PartyGraph:
    """Vertex ``i`` is party ``names[i]``; ``directed`` carries credit, ``undirected`` ties."""

    names: list[str]
    directed: ig.Graph
    undirected: ig.Graph

    @property
    def size(self) -> int:
        return len(self.names)


def graph_from_arrays(names: list[str], a: np.ndarray, b: np.ndarray, w: np.ndarray) -> PartyGraph:
    """A graph over ``names`` from edge arrays of vertex indices (credit direction) and weights.

    The edges enter igraph as a list of int pairs: its abi3 wheel converts a numpy array or a
    memoryview to nested lists first, which measured slower; collapsing before the weights exist
    and summing them in numpy measured no faster either (docs/network.md, "Graph build").
    """
    import igraph as ig

    directed = ig.Graph(n=len(names), edges=list(zip(a.tolist(), b.tolist(), strict=True)), directed=True)
    directed.es["weight"] = w.astype(float).tolist()
    undirected = directed.as_undirected(mode="collapse", combine_edges={"weight": "sum"})
    return PartyGraph(names, directed, undirected)


def graph_from_edges(
    src: Sequence[str],
    dst: Sequence[str],
    rel_type: Sequence[str],
    weight: Sequence[float] | None = None,
) -> PartyGraph:
    """A graph from relationship columns held in memory (tests, small networks)."""
    weights = list(weight) if weight is not None else [1.0] * len(src)
    names = sorted(set(src) | set(dst))
    index = {n: i for i, n in enumerate(names)}
    merged: dict[tuple[int, int], float] = {}
    for s, d, t, w in zip(src, dst, rel_type, weights, strict=True):
        if t not in REL_TYPES:
            raise InputError(f"rel_type {t!r} is not a relationship type (one of: {', '.join(REL_TYPES)})")
        i, j = index[s], index[d]
        pairs = [(i, j), (j, i)] if t in SYMMETRIC_TYPES else [(i, j) if credit_flows_to_dst(t) else (j, i)]
        for p in pairs:
            merged[p] = merged.get(p, 0.0) + float(w)
    keys = list(merged)
    a = np.array([k[0] for k in keys], dtype=np.int64)
    b = np.array([k[1] for k in keys], dtype=np.int64)
    return graph_from_arrays(names, a, b, np.array([merged[k] for k in keys], dtype=float))


def load_graph(store: Store, types: Sequence[str] | None = None) -> PartyGraph:
    """The graph of the stored relationships (all types, or those named)."""
    chosen = tuple(types) if types else REL_TYPES
    bad = [t for t in chosen if t not in REL_TYPES]
    if bad:
        raise InputError(f"types {bad} are not relationship types (known: {', '.join(REL_TYPES)})")
    against = [t for t in chosen if not credit_flows_to_dst(t)]
    sym = [t for t in chosen if t in SYMMETRIC_TYPES]
    params: list[Any] = [list(chosen), against or [""], sym or [""]]
    cur = store.con.cursor()
    try:
        cur.execute(
            """
        CREATE OR REPLACE TEMP TABLE _net_v AS
        SELECT party_id, (row_number() OVER (ORDER BY party_id) - 1)::BIGINT AS idx FROM (
            SELECT src AS party_id FROM relationships WHERE list_contains($1, rel_type)
            UNION SELECT dst FROM relationships WHERE list_contains($1, rel_type))
        """,
            params[:1],
        )
        ids = cur.execute("SELECT party_id FROM _net_v ORDER BY idx").fetchnumpy()["party_id"]
        names = cast(list[str], ids.tolist())  # VARCHAR comes back as an object array of str
        arrays = cur.execute(
            """
        WITH e AS (
            SELECT CASE WHEN list_contains($2, rel_type) THEN dst ELSE src END AS a,
                   CASE WHEN list_contains($2, rel_type) THEN src ELSE dst END AS b, weight
            FROM relationships WHERE list_contains($1, rel_type)
            UNION ALL
            SELECT dst, src, weight FROM relationships WHERE list_contains($3, rel_type))
        SELECT va.idx AS a, vb.idx AS b, sum(e.weight) AS w
        FROM e JOIN _net_v va ON va.party_id = e.a JOIN _net_v vb ON vb.party_id = e.b
        GROUP BY 1, 2
        """,
            params,
        ).fetchnumpy()
        cur.execute("DROP TABLE IF EXISTS _net_v")
    finally:
        cur.close()
    return graph_from_arrays(names, np.asarray(arrays["a"]), np.asarray(arrays["b"]), np.asarray(arrays["w"]))
