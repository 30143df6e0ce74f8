"""Network metrics on a :class:`PartyGraph`: influence, communities, brokers, reach.

* PageRank (Page, Brin, Motwani & Winograd 1999; damping 0.85) on the credit graph, weighted;
  dangling parties spread their rank evenly, as networkx does.
* Eigenvector centrality (Bonacich 1972) and k-core number (Seidman 1983) on the undirected ties;
  k-cores by a compiled level peeling (xrm.network._kernels).
* Leiden communities (Traag, Waltman & van Eck 2019, Sci. Rep. 9:5233), modularity objective,
  weighted, directed ties symmetrised (weights summed); compiled (xrm.network._leiden).
* Betweenness (Brandes 2001): exact up to ``betweenness_exact_max`` parties, above that estimated
  from ``betweenness_samples`` random sources scaled by n / k (Brandes & Pich 2007, eq. 2).
* Reach: parties within 1 .. k steps, either direction.

    >>> from xrm.network import graph_from_edges, network_metrics
    >>> m = network_metrics(graph_from_edges(["a", "b"], ["c", "c"], ["mentions", "mentions"]))
    >>> int(m["pagerank"].argmax())  # 'c' collects the credit
    2
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np

from xrm.exceptions import InputError
from xrm.network._graph import PartyGraph

__all__ = ["METRICS", "network_metrics"]

# What ``metrics=`` may name; degrees always come (they cost nothing).
METRICS = ("pagerank", "eigenvector", "coreness", "community", "betweenness", "reach")


def _seeded(seed: int) -> Any:
    import igraph as ig

    class _Seeded:
        def __enter__(self) -> None:
            ig.set_random_number_generator(random.Random(seed))

        def __exit__(self, *exc: object) -> None:
            ig.set_random_number_generator(random)

    return _Seeded()


def network_metrics(
    pg: PartyGraph,
    *,
    damping: float = 0.85,
    reach_steps: int = 2,
    betweenness_exact_max: int = 2_000,
    betweenness_samples: int = 64,
    leiden_iterations: int = 2,
    resolution: float = 1.0,
    seed: int = 42,
    metrics: tuple[str, ...] = METRICS,
) -> dict[str, np.ndarray]:
    """Per-vertex arrays: degree_in/out, pagerank, eigenvector, coreness, community, betweenness, reach_k.

    ``metrics`` picks a subset of :data:`METRICS` (e.g. only ``("pagerank",)`` for a quick
    influence ranking); the others are left out of the result.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"metric {unknown[0]!r} is not a network metric; use any of {', '.join(METRICS)}")
    d, u = pg.directed, pg.undirected
    n = pg.size
    out: dict[str, np.ndarray] = {
        "degree_in": np.asarray(d.indegree(), dtype=np.int64),
        "degree_out": np.asarray(d.outdegree(), dtype=np.int64),
    }
    want = set(metrics)
    if n == 0:
        empty = {"pagerank": np.zeros(0), "eigenvector": np.zeros(0), "betweenness": np.zeros(0),
                 "coreness": np.zeros(0, dtype=np.int64), "community": np.zeros(0, dtype=np.int64)}
        out |= {k: v for k, v in empty.items() if k in want}
        if "reach" in want:
            out |= {f"reach_{k}": np.zeros(0, dtype=np.int64) for k in range(1, reach_steps + 1)}
        return out
    weights = "weight" if d.ecount() else None
    if "pagerank" in want:
        out["pagerank"] = np.asarray(d.pagerank(damping=damping, weights=weights, directed=True))
    if "eigenvector" in want:
        with warnings.catch_warnings():
            # igraph warns that eigenvector centrality is ~0 outside the largest component: that is
            # the answer.
            warnings.simplefilter("ignore", RuntimeWarning)
            ev = (
                u.eigenvector_centrality(scale=True, weights="weight" if u.ecount() else None)
                if u.ecount()
                else [0.0] * n
            )
        out["eigenvector"] = np.asarray(ev, dtype=float)
    if "coreness" in want:
        out["coreness"] = _coreness(pg)
    if "community" in want:
        out["community"] = _by_size(_communities(pg, resolution, leiden_iterations, seed))
    with _seeded(seed):
        if "betweenness" in want:
            if n <= betweenness_exact_max:
                bt = u.betweenness(directed=False)
            else:
                k = min(betweenness_samples, n)
                sources = random.Random(seed).sample(range(n), k)
                bt = (np.asarray(u.betweenness(directed=False, sources=sources)) * (n / k)).tolist()
            out["betweenness"] = np.asarray(bt, dtype=float)
    if "reach" in want:
        for k in range(1, reach_steps + 1):
            out[f"reach_{k}"] = np.asarray(u.neighborhood_size(order=k, mode="all"), dtype=np.int64) - 1
    return out


def _coreness(pg: PartyGraph) -> np.ndarray:
    """k-core numbers by the compiled level peeling on the CSR adjacency (igraph's own when absent).

    igraph's ``coreness()`` runs one thread over its adjacency and cost 3.9x networkit's wall time
    at 1M parties; the kernel gives the same numbers (docs/network.md, "k-core").
    """
    if pg.adjacency is None:
        return np.asarray(pg.undirected.coreness(), dtype=np.int64)
    from xrm.network import _kernels

    return _kernels.coreness(*pg.adjacency)


def _communities(pg: PartyGraph, resolution: float, iterations: int, seed: int) -> np.ndarray:
    """Leiden on the weighted CSR ties (xrm.network._leiden), from igraph's edges when absent.

    igraph's ``community_leiden`` took 18.1 s at 1M parties, 2.2x networkit's parallel Leiden; the
    compiled one reaches the same modularity in a fraction (docs/network.md, "Communities").
    """
    from xrm.network import _kernels, _leiden

    if pg.adjacency is not None and pg.tie_weights is not None:
        ptr, nbr, wt = pg.adjacency[0], pg.adjacency[1], pg.tie_weights
    else:
        u = pg.undirected
        edges = np.asarray(u.get_edgelist(), dtype=np.int64).reshape(-1, 2)
        w = np.asarray(u.es["weight"] if "weight" in u.es.attributes() else [1.0] * len(edges), dtype=float)
        ptr, nbr, wt = _kernels.weighted_adjacency(pg.size, edges[:, 0], edges[:, 1], w)
    return _leiden.leiden(ptr, nbr, wt, resolution=resolution, n_iterations=iterations, seed=seed)


def _by_size(membership: np.ndarray) -> np.ndarray:
    """Renumber communities 0, 1, 2 ... from the largest, so ids read as ranks."""
    counts = np.bincount(membership)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[membership]
