"""The fast graph build gives the same graphs as igraph's own collapse (the build it replaced)."""

from __future__ import annotations

import igraph as ig
import numpy as np
import pytest

from xrm.exceptions import InputError
from xrm.network import network_metrics
from xrm.network._graph import graph_from_arrays


def _reference(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple[ig.Graph, ig.Graph]:
    """Session 2's build: edges in input order, collapsed to undirected by igraph, weights summed."""
    d = ig.Graph(n=n, edges=list(zip(a.tolist(), b.tolist(), strict=True)), directed=True)
    d.es["weight"] = w.tolist()
    return d, d.as_undirected(mode="collapse", combine_edges={"weight": "sum"})


def _edges(g: ig.Graph) -> list[tuple[int, int, float]]:
    pairs = g.get_edgelist() if g.is_directed() else [tuple(sorted(e)) for e in g.get_edgelist()]
    return sorted((s, t, round(x, 9)) for (s, t), x in zip(pairs, g.es["weight"], strict=True))


def _random_edges(rng: np.random.Generator, n: int, m: int, *, distinct: bool):
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    # reciprocated pairs and self-loops on purpose: the cases the merge has to get right
    k = m // 4
    a, b = np.concatenate([a, b[:k], a[:3]]), np.concatenate([b, a[:k], a[:3]])
    if distinct:
        pairs = np.unique(np.stack([a, b], axis=1), axis=0)
        a, b = pairs[:, 0], pairs[:, 1]
    order = rng.permutation(len(a))  # arbitrary order, as a caller might hand them
    return a[order], b[order], rng.choice([0.5, 1.0, 2.0, 3.0], size=len(a))


@pytest.mark.parametrize("distinct", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_build_equals_igraph_collapse(seed: int, distinct: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    a, b, w = _random_edges(rng, n, int(rng.integers(1, 2_000)), distinct=distinct)
    ref_d, ref_u = _reference(n, a, b, w)
    pg = graph_from_arrays([str(i) for i in range(n)], a, b, w)
    assert pg.directed.vcount() == pg.undirected.vcount() == n
    assert pg.directed.is_directed() and not pg.undirected.is_directed()
    assert _edges(pg.directed) == _edges(ref_d)
    assert _edges(pg.undirected) == _edges(ref_u)
    assert pg.undirected.coreness() == ref_u.coreness()


def test_metrics_unchanged_by_the_build() -> None:
    rng = np.random.default_rng(11)
    n = 500
    a, b, w = _random_edges(rng, n, 3_000, distinct=True)
    ref_d, ref_u = _reference(n, a, b, w)
    m = network_metrics(graph_from_arrays([str(i) for i in range(n)], a, b, w),
                        metrics=("pagerank", "eigenvector", "coreness"))
    assert np.abs(m["pagerank"] - np.asarray(ref_d.pagerank(weights="weight"))).sum() < 1e-12
    assert np.allclose(m["eigenvector"], ref_u.eigenvector_centrality(scale=True, weights="weight"))
    assert m["coreness"].tolist() == ref_u.coreness()


def test_empty_and_edgeless_graphs() -> None:
    none = np.zeros(0, dtype=np.int64)
    pg = graph_from_arrays(["a", "b"], none, none, np.zeros(0))
    assert (pg.directed.vcount(), pg.directed.ecount(), pg.undirected.ecount()) == (2, 0, 0)
    assert graph_from_arrays([], none, none, np.zeros(0)).size == 0


def test_endpoint_outside_the_names_is_refused() -> None:
    with pytest.raises(InputError, match=r"vertex indices 0 \.\. 1"):
        graph_from_arrays(["a", "b"], np.array([0]), np.array([2]), np.array([1.0]))
