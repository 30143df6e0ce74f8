"""Network metrics: xrm against networkx and networkit on the same graphs, metric by metric.

The graph: ``n`` parties, about 5 directed, weighted relationships each, 80 % of them inside
planted communities (sizes 20 to 2,000) and 20 % across, towards a few popular parties (a Zipf
draw), as referral and mention networks look. Self-loops and duplicate pairs are dropped, so
every library gets exactly the same edges.

Each (library, metric) runs in a fresh process (bench/_harness.py); building the library's graph
from the edge arrays is set-up, not timed, and is timed on its own as ``build graph``. Importing
the libraries is set-up too: for xrm igraph and its numba kernels (``_kernels.warm()`` loads their
cached machine code, as ``import networkit`` loads its compiled library); the ``build graph`` notes
give both load times. Metrics:

* PageRank, damping 0.85, weighted, directed; dangling mass spread evenly (networkx's rule;
  networkit's ``DISTRIBUTE_SINKS``).
* eigenvector centrality and k-core on the undirected, weight-summed graph (xrm's k-core: the
  numba level peeling of ``network_metrics`` on the CSR adjacency that ``build graph`` makes).
* communities: xrm = its compiled Leiden (xrm.network._leiden: modularity, 2 iterations, one
  thread, what ``network_metrics`` runs; loading its cached machine code is inside the timed call);
  networkit ParallelLeiden; networkx Louvain (it has no Leiden of its own).
* betweenness estimated from 64 random sources.

A run that passes its time limit is written as such ("over N s"), not left out: the limit is
a ``SIGALRM`` armed after the untimed set-up, so it bounds the metric itself; networkx runs once
per cell (at 1M its metrics take minutes), and at 1M every library runs once per cell. A metric
in C (igraph, networkit) sees the alarm only when it returns. At 1M networkx builds its graphs
once in one process for all its metrics (building them takes minutes). networkit runs its OpenMP
threads on both cores; xrm's build a second thread for its numba merge, igraph and networkx one:
cells give wall and CPU seconds.
PageRank accuracy: xrm's L1 distance to networkx's PageRank solved to tol 1e-9 / n (networkx
stops when the L1 change of an iteration is below n × tol: 1e-9 at every size), at each size.

    python -m bench --only network [--quick]
    XRM_BENCH_NETWORK_SIZES=1000000 python -m bench --only network --out /tmp/net1m.md
    XRM_BENCH_NETWORK_METRICS=build,coreness XRM_BENCH_NETWORK_LIBRARIES=xrm,networkit \
        nice -n 10 python -m bench --only network

``XRM_BENCH_NETWORK_METRICS`` (names of ``METRICS``; ``build`` for ``build graph``) and
``XRM_BENCH_NETWORK_LIBRARIES`` re-run some cells quietly (``XRM_BENCH_NETWORK_RUNS``: runs per
cell at 1M, default 1); the rows and columns left out are
written as "not run", with where their last figures are (docs/network.md, "Benchmark history").
PageRank accuracy is measured only when both PageRank and networkx run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._harness import ROOT, Section, machine_line, measure_python

__all__ = ["make_graph", "run"]

METRICS = ("build graph", "pagerank", "eigenvector", "coreness", "communities", "betweenness")
LIBRARIES = ("xrm", "networkit", "networkx")
_NX_CAP = 120  # seconds per networkx metric (at 1M its PageRank alone took 36 s here unloaded)

_LOAD = """
import numpy as np
_g = np.load({path!r})
src, dst, w = _g["src"], _g["dst"], _g["w"]
n = int(_g["n"])
"""

_BUILD = {
    "xrm": """
_c0 = time.process_time()
import igraph  # imported in the set-up, as networkit is (graph_from_arrays imports it lazily)
from xrm.network import _kernels
_kernels.warm()  # loads the numba kernels' cached machine code, as networkit's import loads its library
_load_cpu = time.process_time() - _c0
from xrm.network._graph import graph_from_arrays
from xrm.network import network_metrics
names = [str(i) for i in range(n)]  # the party ids are input, as the edge arrays are: not timed
def build():
    return graph_from_arrays(names, src, dst, w)
""",
    "networkit": """
_c0 = time.process_time()
import networkit as nk
_load_cpu = time.process_time() - _c0
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
ref = nx.pagerank(d, alpha=0.85, weight="weight", tol=1e-9 / n, max_iter=10_000)
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


# Armed at the end of the untimed set-up: past ``cap`` seconds of the timed code the process
# reports the cap and its peak memory so far, and ends.
_CAP = """
import json as _json, os as _os, signal as _signal
def _over(*_):
    with open("/proc/self/status") as _st:
        _peak = next(int(x.split()[1]) for x in _st if x.startswith("VmHWM:")) / 1024
    _res = {{"seconds": {cap}, "peak_mb": _peak, "extra": {{"over": True}}}}
    print("@@BENCH@@" + _json.dumps(_res), flush=True)
    _os._exit(0)
_signal.signal(_signal.SIGALRM, _over)
_signal.alarm({cap})
"""

# networkx at 1M: one process builds the graphs once (minutes) and runs every metric on them, each
# under its own alarm (networkx is Python, so the alarm interrupts it); the peak memory is reset
# before each (``/proc/self/clear_refs``), so it is the graphs plus that metric, as in a fresh process.
# Then networkx's PageRank to tol 1e-9 / n is saved as the accuracy reference.
_NX_ONE_PROCESS = """
import json, signal, time
import numpy as np
{load}
{build}
class _Over(Exception):
    pass
def _alarm(*_):
    raise _Over()
signal.signal(signal.SIGALRM, _alarm)
def _peak():
    with open("/proc/self/status") as st:
        return next(int(x.split()[1]) for x in st if x.startswith("VmHWM:")) / 1024
def _timed(name, code, cap):
    global extra
    extra = {{}}
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t, c = time.perf_counter(), time.process_time()
    signal.alarm(cap)
    try:
        exec(code, globals())
        signal.alarm(0)
        out = {{"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c, "peak_mb": _peak(),
               "extra": extra}}
    except _Over:
        out = {{"over": True, "peak_mb": _peak()}}
    print("@@NX@@" + json.dumps({{"metric": name, **out}}), flush=True)
_timed("build graph", "g = build()", {build_cap})
for _m, _code in {codes!r}.items():
    _timed(_m, _code, {cap})
signal.alarm({cap} * 2)
try:
    ref = nx.pagerank(g[0], alpha=0.85, weight="weight", tol=1e-9 / n, max_iter=10_000)
    np.save({ref!r}, np.array([ref[i] for i in range(n)]))
except _Over:
    pass
"""

_XRM_PAGERANK = """
import numpy as np
from xrm.network._graph import graph_from_arrays
from xrm.network import network_metrics
g = np.load({path!r}); src, dst, w, n = g["src"], g["dst"], g["w"], int(g["n"])
ours = network_metrics(graph_from_arrays([str(i) for i in range(n)], src, dst, w), metrics=("pagerank",))
print("@@L1@@", float(np.abs(ours["pagerank"] - np.load({ref!r})).sum()))
"""


@dataclass
class Cell:
    text: str
    wall: float | None = None
    cpu: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt(wall: float, cpu: float, peak: float) -> str:
    return f"{wall:.2f} s (CPU {cpu:.2f}) · {peak:,.0f} MB"


def _cell(lib: str, metric: str, path: Path, runs: int, cap: int) -> Cell:
    """Median wall and CPU seconds (all threads) and peak memory of ``runs`` fresh processes."""
    setup = _LOAD.format(path=str(path)) + _BUILD[lib]
    code = "g = build()" if metric == "build graph" else _CODE[lib][metric]
    if metric != "build graph":
        setup += "\ng = build()\n"
    setup += _CAP.format(cap=cap)
    code = f"_cpu0 = time.process_time()\n{code}\nextra = {{**globals().get('extra', {{}}), " \
           "'cpu_s': time.process_time() - _cpu0, 'load_cpu_s': globals().get('_load_cpu')}"
    walls, cpus, peaks, loads, extra = [], [], [], [], {}
    for _ in range(runs):
        try:
            # The outer limit only guards against a hung set-up.
            m = measure_python(f"{lib} {metric}", code, setup=setup, runs=1, timeout=cap + 1800)
        except subprocess.TimeoutExpired:
            return Cell("set-up over 30 min")
        except RuntimeError as exc:  # e.g. killed by the kernel for memory on the shared machine
            last = str(exc).strip().splitlines()[-1]
            why = "no error text: killed?" if last.endswith("failed:") else last[:60]
            return Cell(f"failed ({why})")
        if m.extra.get("over"):
            return Cell(f"over {cap} s · {m.peak_mb[0]:,.0f} MB")
        walls.append(m.seconds[0])
        peaks.append(m.peak_mb[0])
        extra = dict(m.extra)
        cpus.append(extra.pop("cpu_s"))
        loads.append(extra.pop("load_cpu_s", None))
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    known = [x for x in loads if x is not None]
    if known:
        extra["load_cpu_s"] = statistics.median(known)
    return Cell(_fmt(wall, cpu, statistics.median(peaks)), wall, cpu, extra)


def _networkx_1m(path: Path, ref: Path, cap: int) -> dict[str, Cell]:
    script = _NX_ONE_PROCESS.format(load=_LOAD.format(path=str(path)), build=_BUILD["networkx"],
                                    build_cap=1800, cap=cap, codes=_CODE["networkx"], ref=str(ref))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         timeout=1800 + 10 * cap, check=False)
    cells = {}
    for line in out.stdout.splitlines():
        if line.startswith("@@NX@@"):
            r = json.loads(line.removeprefix("@@NX@@"))
            cells[r["metric"]] = (Cell(f"over {cap} s · {r['peak_mb']:,.0f} MB") if r.get("over") else
                                  Cell(_fmt(r["seconds"], r["cpu_s"], r["peak_mb"]), r["seconds"],
                                       r["cpu_s"], r["extra"]))
    why = out.stderr.strip().splitlines()[-1][:80] if out.stderr.strip() else f"exit {out.returncode}"
    for m in METRICS:
        cells.setdefault(m, Cell(f"failed ({why})"))
    return cells


def _chosen(var: str, known: tuple[str, ...], alias: dict[str, str]) -> tuple[str, ...]:
    """The names in environment variable ``var`` (comma-separated), all of ``known`` when unset."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return known
    names = [alias.get(x.strip(), x.strip()) for x in raw.split(",") if x.strip()]
    bad = [x for x in names if x not in known]
    if bad:
        raise ValueError(f"{var}: {bad[0]!r} is not one of {', '.join(known)}")
    return tuple(x for x in known if x in names)


def _ratio(xrm: float | None, others: list[float | None]) -> str:
    known = [t for t in others if t is not None]
    return f"{xrm / min(known):.2f}×" if xrm is not None and known else "–"


def run(quick: bool = False) -> Section:
    sizes = [100_000] if quick else [100_000, 1_000_000]
    if os.environ.get("XRM_BENCH_NETWORK_SIZES"):  # e.g. "1000000": one size per run, run side by side
        sizes = [int(x) for x in os.environ["XRM_BENCH_NETWORK_SIZES"].split(",")]
    runs = 1 if quick else 3
    big_runs = int(os.environ.get("XRM_BENCH_NETWORK_RUNS", "1"))  # xrm and networkit runs per cell at 1M
    metrics = _chosen("XRM_BENCH_NETWORK_METRICS", METRICS,
                      {"build": "build graph", "community": "communities"})
    libraries = _chosen("XRM_BENCH_NETWORK_LIBRARIES", LIBRARIES, {})
    if "xrm" not in libraries:
        raise ValueError("XRM_BENCH_NETWORK_LIBRARIES must include xrm (the ratios are xrm's)")
    skipped = "not run (last figures: docs/network.md, Benchmark history)"
    lines = [
        "Same graph for every library; set-up (reading the edges, building the library's graph) "
        "untimed except in the `build graph` row. Cells: median wall time (CPU seconds of all "
        "threads) · peak resident memory. xrm and networkit: one fresh process per run, "
        f"{runs} run(s) per cell at 100k and {big_runs} at 1M. networkx: 1 run; at 1M one process builds "
        "its graphs once and runs every metric on them (peak memory reset before each). networkx "
        f"metrics are capped at {_NX_CAP} s (\"over N s\", with the memory reached by then), the "
        "others at 300 s. networkit uses both cores (OpenMP), xrm's graph build a second thread (its "
        "numba merge, while igraph converts edges); igraph and networkx one, "
        "so on a loaded 2-core machine the wall ratio favours networkit and the CPU ratio is the "
        "steadier one. networkx has no Leiden: its row is Louvain.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="xrm-bench-net-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"g{n}.npz"
            ref = Path(tmp) / f"pagerank{n}.npy"
            edges = make_graph(n, path)
            lines += [f"### {n:,} parties, {edges:,} relationships", "", f"Started: {machine_line()}.", "",
                      "| metric | xrm (igraph, numba) | networkit | networkx | xrm ÷ fastest (wall) | "
                      "xrm ÷ fastest (CPU) |",
                      "|---|---:|---:|---:|---:|---:|"]
            notes = []
            big = n > 100_000
            nx_cells = _networkx_1m(path, ref, _NX_CAP) if big and "networkx" in libraries else {}
            for metric in METRICS:
                cells: dict[str, Cell] = {}
                if metric not in metrics:
                    lines.append(f"| {metric} | {skipped} | | | | |")
                    continue
                for lib in LIBRARIES:
                    if lib not in libraries:
                        cells[lib] = Cell(skipped)
                    elif lib == "networkx" and big:
                        cells[lib] = nx_cells[metric]
                    else:
                        nx = lib == "networkx"
                        lib_runs, cap = (1, _NX_CAP) if nx else (big_runs if big else runs, 300)
                        cells[lib] = _cell(lib, metric, path, lib_runs, cap)
                    print(f"   {n:,} {metric} {lib}: {cells[lib].text} (load {os.getloadavg()[0]:.1f})",
                          flush=True)
                    if metric == "build graph" and cells[lib].extra.get("load_cpu_s") is not None:
                        what = "igraph and the numba kernels (`_kernels.warm()`)" if lib == "xrm" else lib
                        notes.append(f"{lib} set-up (untimed, median): importing {what} "
                                     f"{cells[lib].extra['load_cpu_s']:.2f} CPU s")
                    if "communities" in cells[lib].extra:
                        e = cells[lib].extra
                        notes.append(f"{lib} {metric}: {e['communities']:,} communities, "
                                     f"modularity {e['modularity']:.3f}")
                others = [cells[lib] for lib in LIBRARIES if lib != "xrm"]
                lines.append(f"| {metric} | " + " | ".join(cells[lib].text for lib in LIBRARIES)
                             + f" | {_ratio(cells['xrm'].wall, [c.wall for c in others])}"
                             + f" | {_ratio(cells['xrm'].cpu, [c.cpu for c in others])} |")
            lines += ["", *[f"- {x}" for x in notes], f"- finished: {machine_line()}", ""]
            if "pagerank" not in metrics or "networkx" not in libraries:
                lines += [f"PageRank accuracy at {n:,} parties: not measured in this run (PageRank or "
                          "networkx left out); last figure in docs/network.md, Benchmark history.", ""]
                continue
            if big:
                script = _XRM_PAGERANK.format(path=str(path), ref=str(ref))
                reference = "networkx's PageRank (tol 1e-9 / n) from the networkx process above"
            else:
                script = _ACCURACY.format(path=str(path))
                reference = "networkx's PageRank (tol 1e-9 / n)"
            if big and not ref.exists():
                lines += [f"PageRank accuracy at {n:,} parties: not measured ({reference} passed its "
                          f"limit of {2 * _NX_CAP} s).", ""]
                continue
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                 timeout=1800, check=True, cwd=ROOT)
            l1 = float(next(x for x in out.stdout.splitlines() if x.startswith("@@L1@@")).split()[1])
            verdict = "met" if l1 < 1e-6 else "NOT met"
            lines += [f"PageRank accuracy at {n:,} parties: L1 distance between xrm's PageRank and "
                      f"{reference} = {l1:.2e}; target < 1e-6 {verdict}.", ""]
    lines += [
        "Target (issue 7): xrm within 1.5× of the fastest library on every metric at 1M parties. "
        "The ratio columns say where it is met (≤ 1.50×) and where not.",
        "",
        f"Machine: {machine_line()}.",
    ]
    return Section("Network metrics: xrm, networkit and networkx", "\n".join(lines))
