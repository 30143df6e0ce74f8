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

    Repeated ``(a, b)`` pairs stay parallel edges of the directed graph; the undirected graph has
    one edge per unordered pair, weights summed (what ``as_undirected(combine_edges="sum")`` gives).
    Why it is built this way (docs/network.md, "Graph build"): igraph's collapse to undirected cost
    more than building the undirected graph afresh from pairs merged in numpy; igraph builds its
    index about twice as fast from edges sorted by source; and the edges are handed over as a lazy
    ``zip`` of two ``tolist()`` (the abi3 wheel converts a numpy array or memoryview to nested lists
    first, and a materialised list of 5M tuples costs as much again as the conversion).
    """
    import igraph as ig

    n = len(names)
    a, b, w, key = _sorted_edges(n, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                                 np.asarray(w, dtype=float))
    directed = ig.Graph(n=n, edges=zip(a.tolist(), b.tolist(), strict=True), directed=True)
    directed.es["weight"] = w.tolist()
    lo, hi, uw = _undirected_edges(n, a, b, w, key)
    undirected = ig.Graph(n=n, edges=zip(lo.tolist(), hi.tolist(), strict=True), directed=False)
    undirected.es["weight"] = uw.tolist()
    return PartyGraph(names, directed, undirected)


def _sorted_edges(
    n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The edges ordered by ``(a, b)`` and their keys ``a * n + b``; one O(m) check when already so."""
    if len(a) and (min(int(a.min()), int(b.min())) < 0 or max(int(a.max()), int(b.max())) >= n):
        raise InputError(f"edge endpoints must be vertex indices 0 .. {n - 1} (one per name)")
    key = a * n + b
    if len(key) > 1 and not bool((key[1:] >= key[:-1]).all()):
        order = np.argsort(key, kind="stable")
        a, b, w, key = a[order], b[order], w[order], key[order]
    return a, b, w, key


def _undirected_edges(
    n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``(lo, hi)`` edge per unordered pair of the sorted directed edges, weights summed.

    With distinct directed pairs (what :func:`load_graph` hands over) only a reciprocated pair
    merges: each backward edge ``b -> a`` (a > b) is looked up among the sorted forward keys (only
    the backward half is sorted). Repeated pairs take the general path: ``np.unique`` of the
    unordered keys.
    """
    if len(key) > 1 and bool((key[1:] == key[:-1]).any()):
        uniq, inverse = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True)
        return uniq // n, uniq % n, np.bincount(inverse, weights=w, minlength=len(uniq))
    fwd = a <= b
    back = ~fwd
    fkey, fw = key[fwd], w[fwd].copy()
    ba, bb, bw = a[back], b[back], w[back]
    bkey = bb * n + ba
    order = np.argsort(bkey)  # sorted needles: searchsorted ~3x faster
    ba, bb, bw, bkey = ba[order], bb[order], bw[order], bkey[order]
    hit = np.zeros(len(bkey), dtype=bool)
    if len(fkey):
        pos = np.minimum(np.searchsorted(fkey, bkey), len(fkey) - 1)
        hit = fkey[pos] == bkey
        fw[pos[hit]] += bw[hit]  # distinct keys: each forward edge is hit at most once
    miss = ~hit
    return (np.concatenate([a[fwd], bb[miss]]), np.concatenate([b[fwd], ba[miss]]),
            np.concatenate([fw, bw[miss]]))


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
