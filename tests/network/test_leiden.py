"""The compiled Leiden: planted communities found, igraph's modularity reached, weights and direction."""

from __future__ import annotations

import random

import igraph as ig
import numpy as np
import pytest

from xrm.network import graph_from_edges, network_metrics
from xrm.network._graph import PartyGraph, graph_from_arrays
from xrm.network._kernels import weighted_adjacency
from xrm.network._leiden import leiden


def _planted(seed: int, groups: int = 12, size: int = 40, inside: float = 0.3, across: float = 0.004):
    """Edges of a planted-partition graph (dense groups, sparse ties across) and the true groups."""
    rng = np.random.default_rng(seed)
    n = groups * size
    truth = np.repeat(np.arange(groups), size)
    a, b = np.triu_indices(n, 1)
    p = np.where(truth[a] == truth[b], inside, across)
    keep = rng.random(len(a)) < p
    return n, a[keep], b[keep], truth


def _modularity(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, membership: np.ndarray) -> float:
    g = ig.Graph(n=n, edges=list(zip(a.tolist(), b.tolist(), strict=True)))
    return float(g.modularity(membership.tolist(), weights=w.tolist()))


@pytest.mark.parametrize("seed", range(3))
def test_planted_partition_is_recovered_and_matches_igraphs_modularity(seed: int) -> None:
    n, a, b, truth = _planted(seed)
    w = np.ones(len(a))
    got = leiden(*weighted_adjacency(n, a, b, w), seed=seed)
    assert ig.compare_communities(truth.tolist(), got.tolist(), method="nmi") > 0.99
    g = ig.Graph(n=n, edges=list(zip(a.tolist(), b.tolist(), strict=True)))
    ig.set_random_number_generator(random.Random(seed))
    ref = g.community_leiden(objective_function="modularity", weights=w.tolist(), n_iterations=2)
    assert _modularity(n, a, b, w, got) >= g.modularity(ref.membership, weights=w.tolist()) - 1e-9


def test_same_seed_same_communities_and_ids_are_dense() -> None:
    n, a, b, _ = _planted(7, groups=30, size=25, inside=0.2, across=0.01)
    adj = weighted_adjacency(n, a, b, np.ones(len(a)))
    first = leiden(*adj, seed=3)
    assert leiden(*adj, seed=3).tolist() == first.tolist()
    assert sorted(set(first.tolist())) == list(range(int(first.max()) + 1))


def test_weights_decide_the_communities() -> None:
    # two triangles 0-1-2 and 3-4-5 joined by the rungs 0-3, 1-4, 2-5: with unit weights the triangles
    # are the communities; with rungs of weight 10 the rung pairs are
    a = np.array([0, 1, 0, 3, 4, 3, 0, 1, 2])
    b = np.array([1, 2, 2, 4, 5, 5, 3, 4, 5])
    unit = leiden(*weighted_adjacency(6, a, b, np.ones(9)))
    assert unit[0] == unit[1] == unit[2] != unit[3] == unit[4] == unit[5]
    heavy = leiden(*weighted_adjacency(6, a, b, np.array([1.0] * 6 + [10.0] * 3)))
    assert heavy[0] == heavy[3] and heavy[1] == heavy[4] and heavy[2] == heavy[5]
    assert len(set(heavy.tolist())) == 3


def test_directed_ties_are_symmetrised_with_weights_summed() -> None:
    # one-way mentions inside two groups, and a pair across mentioning each other: the pair's two
    # directed edges are one tie of weight 2, as the undirected graph holds it
    src = ["a", "b", "c", "x", "y", "z", "c", "x"]
    dst = ["b", "c", "a", "y", "z", "x", "x", "c"]
    pg = graph_from_edges(src, dst, ["mentions"] * len(src))
    assert pg.tie_weights is not None
    m = network_metrics(pg, metrics=("community",))["community"]
    comm = dict(zip(pg.names, m.tolist(), strict=True))
    assert comm["a"] == comm["b"] == comm["c"] != comm["x"] == comm["y"] == comm["z"]
    cx = pg.undirected.get_eid(pg.names.index("c"), pg.names.index("x"))
    assert pg.undirected.es[cx]["weight"] == 2.0


def test_graph_without_arrays_uses_igraphs_edges_with_loops_and_repeats() -> None:
    rng = np.random.default_rng(11)
    n = 600
    _, a, b, _ = _planted(11, groups=15, size=40, inside=0.15, across=0.01)
    loops = rng.integers(0, n, 30)
    a, b = np.concatenate([a, b[:200], loops]), np.concatenate([b, a[:200], loops])
    pg = graph_from_arrays([str(i) for i in range(n)], a, b, rng.choice([1.0, 2.0, 3.0], len(a)))
    got = network_metrics(pg, metrics=("community",))["community"]
    bare = PartyGraph(pg.names, pg.directed, pg.undirected)
    assert network_metrics(bare, metrics=("community",))["community"].tolist() == got.tolist()
    u = pg.undirected
    ig.set_random_number_generator(random.Random(1))
    ref = u.community_leiden(objective_function="modularity", weights="weight", n_iterations=2)
    ours = u.modularity(got.tolist(), weights="weight")
    assert ours >= u.modularity(ref.membership, weights="weight") - 0.005


def test_empty_and_edgeless_graphs() -> None:
    assert leiden(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0)).tolist() == []
    assert leiden(np.zeros(4, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0)).tolist() == [0, 1, 2]
