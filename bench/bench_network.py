"""Network metrics: xrm against networkx and networkit on the same graphs, metric by metric.

The graph: ``n`` parties, about 5 directed, weighted relationships each, 80 % of them inside
planted communities (sizes 20 to 2,000) and 20 % across, towards a few popular parties (a Zipf
draw), as referral and mention networks look. Self-loops and duplicate pairs are dropped, so
every library gets exactly the same edges.

Each (library, metric) runs in a fresh process (bench/_harness.py); building the library's graph
from the edge arrays is set-up, not timed, and is timed on its own as ``build graph``. Metrics:

* PageRank, damping 0.85, weighted, directed; dangling mass spread evenly (networkx's rule;
  networkit's ``DISTRIBUTE_SINKS``).
* eigenvector centrality and k-core on the undirected, weight-summed graph.
* communities: xrm = igraph Leiden (modularity, 2 iterations, what ``network_metrics`` runs);
  networkit ParallelLeiden; networkx Louvain (it has no Leiden of its own).
* betweenness estimated from 64 random sources.

A run that passes its time limit is written as such, not left out. networkit runs its OpenMP
threads on both cores; igraph (xrm) and networkx use one.  PageRank accuracy: xrm's L1 distance
to networkx's PageRank solved to 1e-12 on the smallest graph.

    python -m bench --only network [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench._harness import Section, machine_line, measure_python

__all__ = ["make_graph", "run"]

METRICS = ("build graph", "pagerank", "eigenvector", "coreness", "communities", "betweenness")
LIBRARIES = ("xrm", "networkit", "networkx")

_LOAD = """
import numpy as np
_g = np.load({path!r})
src, dst, w = _g["src"], _g["dst"], _g["w"]
n = int(_g["n"])
"""

_BUILD = {
    "xrm": """
from xrm.network._graph import graph_from_arrays
from xrm.network import network_metrics
def build():
    return graph_from_arrays([str(i) for i in range(n)], src, dst, w)
""",
    "networkit": """
import networkit as nk
def build():
    d = nk.Graph(n, weighted=True, directed=True)
    d.addEdges((w, (src, dst)))
    u = nk.graphtools.toUndirected(d)
    u.removeMultiEdges()
    return d, u
""",
    "networkx": """
import networkx as nx
def build():
    d = nx.DiGraph()
    d.add_nodes_from(range(n))
    d.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
    u = nx.Graph()
    u.add_nodes_from(range(n))
    for a, b, x in zip(src.tolist(), dst.tolist(), w.tolist()):
        u.add_edge(a, b, weight=u[a][b]["weight"] + x if u.has_edge(a, b) else x)
    return d, u
""",
}

_CODE: dict[str, dict[str, str]] = {
    "xrm": {
        "pagerank": "network_metrics(g, metrics=('pagerank',))",
        "eigenvector": "network_metrics(g, metrics=('eigenvector',))",
        "coreness": "network_metrics(g, metrics=('coreness',))",
        "communities": "m = network_metrics(g, metrics=('community',)); "
                       "extra = {'communities': int(m['community'].max()) + 1, "
                       "'modularity': g.undirected.modularity(m['community'].tolist(), weights='weight')}",
        "betweenness": "network_metrics(g, metrics=('betweenness',), betweenness_samples=64)",
    },
    "networkit": {
        "pagerank": "nk.centrality.PageRank(g[0], damp=0.85, tol=1e-9, "
                    "distributeSinks=nk.centrality.SinkHandling.DistributeSinks).run()",
        "eigenvector": "nk.centrality.EigenvectorCentrality(g[1]).run()",
        "coreness": "nk.centrality.CoreDecomposition(g[1]).run()",
        "communities": "p = nk.community.ParallelLeiden(g[1]); p.run(); part = p.getPartition(); "
                       "extra = {'communities': part.numberOfSubsets(), "
                       "'modularity': nk.community.Modularity().getQuality(part, g[1])}",
        "betweenness": "nk.centrality.EstimateBetweenness(g[1], 64).run()",
    },
    "networkx": {
        "pagerank": "nx.pagerank(g[0], alpha=0.85, weight='weight')",
        # Power iteration needs minutes on a disconnected graph; ARPACK on the largest component
        # (centrality is ~0 outside it) is networkx's fast path.
        "eigenvector": "nx.eigenvector_centrality_numpy("
                       "g[1].subgraph(max(nx.connected_components(g[1]), key=len)), weight='weight')",
        "coreness": "nx.core_number(g[1])",
        "communities": "c = nx.community.louvain_communities(g[1], weight='weight', seed=42); "
                       "extra = {'communities': len(c), "
                       "'modularity': nx.community.modularity(g[1], c, weight='weight')}",
        "betweenness": "nx.betweenness_centrality(g[1], k=64, seed=42, weight=None)",
    },
}

_ACCURACY = """
import numpy as np, networkx as nx
from xrm.network._graph import graph_from_arrays
from xrm.network import network_metrics
g = np.load({path!r}); src, dst, w, n = g["src"], g["dst"], g["w"], int(g["n"])
ours = network_metrics(graph_from_arrays([str(i) for i in range(n)], src, dst, w), metrics=("pagerank",))
d = nx.DiGraph(); d.add_nodes_from(range(n))
d.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
ref = nx.pagerank(d, alpha=0.85, weight="weight", tol=1e-12, max_iter=10_000)
print("@@L1@@", float(np.abs(ours["pagerank"] - np.array([ref[i] for i in range(n)])).sum()))
"""


def make_graph(n: int, path: Path, *, per_party: int = 5, seed: int = 7) -> int:
    """Write the benchmark graph of ``n`` parties to ``path`` (npz); returns its edge count."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(rng.lognormal(4.5, 1.0, size=n // 20 + 1).astype(np.int64), 20, 2_000)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    bounds = bounds[bounds < n]
    bounds = np.append(bounds, n)
    community = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    m = per_party * n
    src = rng.integers(0, n, size=m)
    inside = rng.random(m) < 0.8
    lo, hi = bounds[community[src]], bounds[community[src] + 1]
    dst = np.where(inside, lo + (rng.random(m) * (hi - lo)).astype(np.int64), 0)
    popular = rng.permutation(n)
    dst[~inside] = popular[np.minimum(rng.zipf(1.6, size=int((~inside).sum())) - 1, n - 1)]
    keep = src != dst
    pairs = np.unique(np.stack([src[keep], dst[keep]], axis=1), axis=0)
    weights = rng.choice([1.0, 1.0, 2.0, 3.0], size=len(pairs))
    np.savez(path, src=pairs[:, 0], dst=pairs[:, 1], w=weights, n=np.int64(n))
    return len(pairs)


def _cell(lib: str, metric: str, path: Path, runs: int, timeout: float) -> tuple[str, float | None, dict]:
    setup = _LOAD.format(path=str(path)) + _BUILD[lib]
    code = "g = build()" if metric == "build graph" else _CODE[lib][metric]
    if metric != "build graph":
        setup += "\ng = build()\n"
    try:
        m = measure_python(f"{lib} {metric}", code, setup=setup, runs=runs, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s", None, {}
    text = f"{m.median_s:.2f} s · {m.median_peak_mb:,.0f} MB"
    return text, m.median_s, m.extra


def run(quick: bool = False) -> Section:
    sizes = [100_000] if quick else [100_000, 1_000_000]
    runs = 1 if quick else 3
    timeout = 300.0
    lines = [
        "Same graph for every library, one fresh process per run; set-up (reading the edges, "
        "building the library's graph) untimed except in the `build graph` row. Cells: median "
        f"wall time · peak resident memory of the process, {runs} run(s). networkit uses both "
        "cores (OpenMP); igraph and networkx one. networkx has no Leiden: its row is Louvain.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="xrm-bench-net-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"g{n}.npz"
            edges = make_graph(n, path)
            lines += [f"### {n:,} parties, {edges:,} relationships", "",
                      "| metric | xrm (igraph) | networkit | networkx | xrm ÷ fastest |",
                      "|---|---:|---:|---:|---:|"]
            notes = []
            for metric in METRICS:
                cells, times = [], {}
                for lib in LIBRARIES:
                    # networkx needs minutes per metric at 1M: one run, and it may time out.
                    lib_runs = 1 if lib == "networkx" and n > 100_000 else runs
                    text, t, extra = _cell(lib, metric, path, lib_runs, timeout)
                    cells.append(text)
                    if t is not None:
                        times[lib] = t
                    if extra:
                        notes.append(f"{lib} {metric}: {extra['communities']:,} communities, "
                                     f"modularity {extra['modularity']:.3f}")
                others = [t for lib, t in times.items() if lib != "xrm"]
                ratio = (f"{times['xrm'] / min(others):.2f}×" if "xrm" in times and others else "–")
                lines.append(f"| {metric} | " + " | ".join(cells) + f" | {ratio} |")
            lines += ["", *[f"- {x}" for x in notes], ""]
            if n == sizes[0]:
                out = subprocess.run(
                    [sys.executable, "-c", _ACCURACY.format(path=str(path))], capture_output=True, text=True,
                    timeout=1800, check=True,
                )
                l1 = float(next(x for x in out.stdout.splitlines() if x.startswith("@@L1@@")).split()[1])
                verdict = "met" if l1 < 1e-6 else "NOT met"
                lines += [f"PageRank accuracy at {n:,} parties: L1 distance between xrm's PageRank and "
                          f"networkx's (tol 1e-12) = {l1:.2e}; target < 1e-6 {verdict}.", ""]
    lines += [
        "Target (issue 7): xrm within 1.5× of the fastest library on every metric at 1M parties. "
        "The ratio column says where it is met (≤ 1.50×) and where not.",
        "",
        f"Machine: {machine_line()}.",
    ]
    return Section("Network metrics: xrm, networkit and networkx", "\n".join(lines))
