"""Network metrics on graphs small enough to check by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xrm.exceptions import InputError
from xrm.network import graph_from_edges, network_metrics


def _two_cliques_and_bridge():
    a = [f"a{i}" for i in range(5)]
    b = [f"b{i}" for i in range(5)]
    edges = [*itertools.combinations(a, 2), *itertools.combinations(b, 2), ("a0", "x"), ("x", "b0")]
    return graph_from_edges([s for s, _ in edges], [d for _, d in edges], ["colleague"] * len(edges))


def test_star_pagerank_puts_the_centre_first():
    leaves = [f"leaf{i}" for i in range(6)]
    pg = graph_from_edges(leaves, ["hub"] * 6, ["mentions"] * 6)
    pr = network_metrics(pg)["pagerank"]
    hub = pg.names.index("hub")
    assert int(np.argmax(pr)) == hub
    assert pr.sum() == pytest.approx(1.0)
    # leaves are symmetric: equal rank, each below the hub
    leaf_pr = [pr[pg.names.index(n)] for n in leaves]
    assert max(leaf_pr) - min(leaf_pr) < 1e-12 and max(leaf_pr) < pr[hub]


def test_pagerank_matches_the_power_iteration_definition():
    # Page et al. (1999): r = (1-d)/n + d * (M r + dangling mass / n), computed here by hand.
    src, dst = ["a", "a", "b", "c", "d"], ["b", "c", "c", "a", "c"]
    pg = graph_from_edges(src, dst, ["follows"] * 5)
    n, d = pg.size, 0.85
    idx = {v: i for i, v in enumerate(pg.names)}
    out = np.zeros(n)
    for s in src:
        out[idx[s]] += 1
    r = np.full(n, 1 / n)
    for _ in range(200):
        nxt = np.full(n, (1 - d) / n) + d * r[out == 0].sum() / n
        for s, t in zip(src, dst, strict=True):
            nxt[idx[t]] += d * r[idx[s]] / out[idx[s]]
        r = nxt
    assert np.abs(network_metrics(pg)["pagerank"] - r).sum() < 1e-6


def test_referral_credit_flows_to_the_referrer():
    pg = graph_from_edges(["ref"] * 3, ["f1", "f2", "f3"], ["referred"] * 3)
    pr = network_metrics(pg)["pagerank"]
    assert pg.names[int(np.argmax(pr))] == "ref"


def test_two_cliques_two_communities_and_the_bridge_is_the_top_broker():
    pg = _two_cliques_and_bridge()
    m = network_metrics(pg)
    comm = dict(zip(pg.names, m["community"], strict=True))
    assert len({comm[f"a{i}"] for i in range(5)}) == 1
    assert len({comm[f"b{i}"] for i in range(5)}) == 1
    assert comm["a1"] != comm["b1"]
    assert pg.names[int(np.argmax(m["betweenness"]))] == "x"
    # x lies on every shortest path between the 5 + 5 clique members and ... by hand: 25 pairs
    assert m["betweenness"][pg.names.index("x")] == pytest.approx(25.0)
    assert m["coreness"][pg.names.index("a1")] == 4 and m["coreness"][pg.names.index("x")] == 2


def test_sampled_betweenness_still_finds_the_bridge():
    pg = _two_cliques_and_bridge()
    m = network_metrics(pg, betweenness_exact_max=3, betweenness_samples=11)
    # all 11 vertices sampled: the estimate equals the exact value
    assert m["betweenness"][pg.names.index("x")] == pytest.approx(25.0)


def test_reach_within_k_steps():
    # a path a - b - c - d, plus e hanging off b
    pg = graph_from_edges(["a", "b", "c", "b"], ["b", "c", "d", "e"], ["household"] * 4)
    m = network_metrics(pg, reach_steps=3)
    reach = {k: dict(zip(pg.names, m[f"reach_{k}"], strict=True)) for k in (1, 2, 3)}
    assert reach[1]["a"] == 1 and reach[2]["a"] == 3 and reach[3]["a"] == 4
    assert reach[1]["b"] == 3 and reach[2]["b"] == 4


def test_symmetric_types_give_both_directions():
    pg = graph_from_edges(["a"], ["b"], ["household"])
    assert sorted(pg.directed.get_edgelist()) == [(0, 1), (1, 0)]


def test_metrics_subset_and_unknown_metric() -> None:
    pg = graph_from_edges(["a", "b", "c"], ["c", "c", "a"], ["mentions", "mentions", "referred"])
    only = network_metrics(pg, metrics=("pagerank",))
    assert set(only) == {"degree_in", "degree_out", "pagerank"}
    assert np.allclose(only["pagerank"], network_metrics(pg)["pagerank"])
    with pytest.raises(InputError, match="not a network metric"):
        network_metrics(pg, metrics=("pagerankk",))
