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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
    """Vertex ``i`` is party ``names[i]``; ``directed`` carries credit, ``undirected`` ties.

    ``adjacency`` is the undirected graph as CSR arrays ``(indptr, neighbours)`` (a self-loop listed
    twice, as igraph lists it), for the compiled kernels (k-core) that need no igraph, and
    ``tie_weights`` the weight of each of its entries (Leiden); ``None`` when the graph was made
    otherwise.
    """

    names: list[str]
    directed: ig.Graph
    undirected: ig.Graph
    adjacency: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    tie_weights: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.names)


def graph_from_arrays(names: list[str], a: np.ndarray, b: np.ndarray, w: np.ndarray) -> PartyGraph:
    """A graph over ``names`` from edge arrays of vertex indices (credit direction) and weights.

    Repeated ``(a, b)`` pairs stay parallel edges of the directed graph; the undirected graph has
    one edge per unordered pair, weights summed (what ``as_undirected(combine_edges="sum")`` gives).
    Why it is built this way (docs/network.md, "Graph build"): igraph builds its index about twice
    as fast from edges sorted by source; the edges are handed over as a lazy ``zip`` of two
    ``tolist()`` (the abi3 wheel converts a numpy array or memoryview to nested lists first); and
    the undirected pairs are merged, and the undirected CSR adjacency built, by compiled O(m)
    kernels without the GIL on a second thread, while igraph (which holds the GIL throughout)
    converts the directed edges.
    """
    import igraph as ig

    from xrm.network import _kernels

    n = len(names)
    a, b, w = _sorted_edges(n, a, b, w)
    _kernels.warm()  # loads the compiled kernels here, not on the worker thread (it needs the GIL)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xrm-graph") as pool:
        merging = pool.submit(_kernels.ties, n, a, b, w)
        directed = ig.Graph(n=n, edges=zip(a.tolist(), b.tolist(), strict=True), directed=True)
        directed.es["weight"] = w.tolist()
        lo, hi, uw, ptr, nbr, wt = merging.result()
    undirected = ig.Graph(n=n, edges=zip(lo.tolist(), hi.tolist(), strict=True), directed=False)
    undirected.es["weight"] = uw.tolist()
    return PartyGraph(names, directed, undirected, (ptr, nbr), wt)


def _sorted_edges(
    n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges ordered by ``(a, b)``, as contiguous int64 / float64; one O(m) check when already so."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not (len(a) == len(b) == len(w)):
        raise InputError(
            f"edge arrays differ in length: {len(a)} sources, {len(b)} targets, {len(w)} weights"
        )
    if len(a) and (min(int(a.min()), int(b.min())) < 0 or max(int(a.max()), int(b.max())) >= n):
        raise InputError(f"edge endpoints must be vertex indices 0 .. {n - 1} (one per name)")
    key = a * n + b
    if len(key) > 1 and not bool((key[1:] >= key[:-1]).all()):
        order = np.argsort(key, kind="stable")
        a, b, w = a[order], b[order], w[order]
    return a, b, w


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
