"""The compiled kernels give igraph's answers: k-core numbers and the undirected merge."""

from __future__ import annotations

import igraph as ig
import numpy as np
import pytest

from xrm.exceptions import InputError
from xrm.network import network_metrics
from xrm.network._graph import PartyGraph, graph_from_arrays
from xrm.network._kernels import coreness, symmetric_adjacency, undirected_merge


def _messy_edges(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Random edges with what the product's graphs hold: self-loops, repeats, reciprocated pairs."""
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    k = m // 5
    loops = rng.integers(0, n, max(1, m // 20))
    a = np.concatenate([a, b[:k], a[:k], loops])
    b = np.concatenate([b, a[:k], b[:k], loops])
    return a, b


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_coreness_equals_igraph(seed: int, directed: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    a, b = _messy_edges(rng, n, int(rng.integers(0, 3_000)))
    g = ig.Graph(n=n, edges=list(zip(a.tolist(), b.tolist(), strict=True)), directed=directed)
    # a directed graph's k-core (igraph's mode "all") counts in- and out-edges: both ends of each
    got = coreness(*symmetric_adjacency(n, a, b))
    assert got.tolist() == g.coreness()
    assert got.dtype == np.int64


def test_coreness_of_known_shapes() -> None:
    # a 4-clique (core 3) with a tail (1) and a lone vertex with a self-loop (igraph: 2, a loop counts twice)
    a = np.array([0, 0, 0, 1, 1, 2, 3, 5])
    b = np.array([1, 2, 3, 2, 3, 3, 4, 5])
    assert coreness(*symmetric_adjacency(7, a, b)).tolist() == [3, 3, 3, 3, 1, 2, 0]
    assert coreness(*symmetric_adjacency(0, a[:0], b[:0])).tolist() == []


@pytest.mark.parametrize("seed", range(4))
def test_undirected_merge_sums_each_unordered_pair_once(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    a, b = _messy_edges(rng, n, int(rng.integers(0, 2_000)))
    order = np.lexsort((b, a))
    a, b, w = a[order], b[order], rng.choice([0.5, 1.0, 2.0], size=len(a))
    lo, hi, uw = undirected_merge(n, a, b, w)
    keys, inverse = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True)
    assert (lo * n + hi).tolist() == keys.tolist()  # one edge per pair, sorted by (lo, hi)
    assert np.allclose(uw, np.bincount(inverse, weights=w, minlength=len(keys)))


def test_analysis_coreness_is_igraphs_on_the_builds_adjacency() -> None:
    rng = np.random.default_rng(5)
    n = 2_000
    a, b = _messy_edges(rng, n, 12_000)
    pg = graph_from_arrays([str(i) for i in range(n)], a, b, np.ones(len(a)))
    assert pg.adjacency is not None
    ptr, nbr = pg.adjacency
    lists = pg.undirected.get_adjlist()  # igraph lists a self-loop twice, as the CSR does
    assert [sorted(nbr[ptr[v]:ptr[v + 1]].tolist()) for v in range(n)] == [sorted(x) for x in lists]
    got = network_metrics(pg, metrics=("coreness",))["coreness"]
    assert got.tolist() == pg.undirected.coreness()
    # a graph made without the arrays falls back to igraph's own coreness
    bare = PartyGraph(pg.names, pg.directed, pg.undirected)
    assert network_metrics(bare, metrics=("coreness",))["coreness"].tolist() == got.tolist()


def test_edge_arrays_of_different_lengths_are_refused() -> None:
    with pytest.raises(InputError, match="1 sources, 2 targets, 1 weights"):
        graph_from_arrays(["a", "b"], np.array([0]), np.array([1, 0]), np.array([1.0]))
