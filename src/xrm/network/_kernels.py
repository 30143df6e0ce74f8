"""Compiled graph kernels (numba) over numpy edge arrays: the undirected merge and k-core peeling.

Why compiled: both are O(m) loops that numpy can only express with sorts (O(m log m)) or many
vectorised rounds, and igraph's single-threaded ``coreness()`` grew 14x for 10x the graph at 1M
parties (docs/network.md, "k-core"). The kernels run without the GIL (``nogil``) and are cached on
disk (``cache=True``): the first call in a fresh process loads the machine code from
``__pycache__`` (about 0.1 s); with no cache it compiles (seconds, once per installation).

This module imports numba at the top; callers import it lazily, as they do igraph, so that the
CLI and the API start without it.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["coreness", "symmetric_adjacency", "ties", "undirected_merge", "warm", "weighted_adjacency"]

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _undirected_merge(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple:  # pragma: no cover
    m = len(a)
    outptr = np.zeros(n + 1, dtype=np.int64)
    inptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(m):
        outptr[a[i] + 1] += 1
        inptr[b[i] + 1] += 1
    for v in range(n):
        outptr[v + 1] += outptr[v]
        inptr[v + 1] += inptr[v]
    # the transpose: sources of each vertex's in-edges, ascending because the edges come sorted
    insrc = np.empty(m, dtype=a.dtype)
    inw = np.empty(m, dtype=w.dtype)
    fill = inptr[:-1].copy()
    for i in range(m):
        k = fill[b[i]]
        insrc[k] = a[i]
        inw[k] = w[i]
        fill[b[i]] += 1
    lo = np.empty(m, dtype=a.dtype)
    hi = np.empty(m, dtype=a.dtype)
    uw = np.empty(m, dtype=w.dtype)
    k = 0
    for v in range(n):
        # neighbours u >= v: out-edges v -> u (u >= v) merged with in-edges u -> v (u > v); both
        # lists ascending, so one merge pass; equal neighbours (reciprocated or repeated) sum
        i, iend = outptr[v], outptr[v + 1]
        while i < iend and b[i] < v:
            i += 1
        j, jend = inptr[v], inptr[v + 1]
        while j < jend and insrc[j] <= v:
            j += 1
        while i < iend or j < jend:
            u = b[i] if j == jend or (i < iend and b[i] <= insrc[j]) else insrc[j]
            s = 0.0
            while i < iend and b[i] == u:
                s += w[i]
                i += 1
            while j < jend and insrc[j] == u:
                s += inw[j]
                j += 1
            lo[k] = v
            hi[k] = u
            uw[k] = s
            k += 1
    return lo[:k], hi[:k], uw[:k]


def undirected_merge(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """One ``(lo, hi)`` edge per unordered pair of the directed edges, weights summed, by (lo, hi).

    ``a``, ``b`` must be sorted by ``(a, b)`` (repeats allowed). O(n + m), no sort: the in-edges
    are bucketed (a counting sort) and each vertex's upper neighbours merged from its two lists.
    """
    return tuple(_undirected_merge(n, a, b, w))


@_jit
def _symmetric_adjacency(n: int, lo: np.ndarray, hi: np.ndarray) -> tuple:  # pragma: no cover
    ptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(len(lo)):
        ptr[lo[i] + 1] += 1
        ptr[hi[i] + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    nbr = np.empty(ptr[n], dtype=np.int32)
    fill = ptr[:-1].copy()
    for i in range(len(lo)):
        x, y = lo[i], hi[i]
        nbr[fill[x]] = y
        fill[x] += 1
        nbr[fill[y]] = x  # a self-loop is listed twice, as igraph lists it (degree 2)
        fill[y] += 1
    return ptr, nbr


def symmetric_adjacency(n: int, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, neighbours)`` of the edges taken both ways (a self-loop twice); n < 2**31."""
    return tuple(_symmetric_adjacency(n, lo, hi))  # type: ignore[return-value]


@_jit
def _weighted_adjacency(n: int, lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> tuple:  # pragma: no cover
    ptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(len(lo)):
        ptr[lo[i] + 1] += 1
        ptr[hi[i] + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    nbr = np.empty(ptr[n], dtype=np.int32)
    wt = np.empty(ptr[n], dtype=np.float64)
    fill = ptr[:-1].copy()
    for i in range(len(lo)):
        x, y = lo[i], hi[i]
        nbr[fill[x]] = y
        wt[fill[x]] = w[i]
        fill[x] += 1
        nbr[fill[y]] = x
        wt[fill[y]] = w[i]
        fill[y] += 1
    return ptr, nbr, wt


def weighted_adjacency(n: int, lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """CSR ``(indptr, neighbours, weights)`` of undirected edges, each listed both ways (a self-loop
    twice, with its weight each time): :func:`symmetric_adjacency` with the weights, for Leiden."""
    return tuple(_weighted_adjacency(n, np.asarray(lo), np.asarray(hi), np.asarray(w, dtype=np.float64)))


@_jit
def _ties(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple:  # pragma: no cover
    lo, hi, uw = _undirected_merge(n, a, b, w)
    ptr, nbr, wt = _weighted_adjacency(n, lo, hi, uw)
    return lo, hi, uw, ptr, nbr, wt


def ties(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`undirected_merge` and the :func:`weighted_adjacency` of its result, in one call.

    One compiled call, so that a worker thread runs both without taking the GIL in between (the
    graph build's main thread holds it while igraph converts edges).
    """
    return tuple(_ties(n, a, b, w))


@_jit
def _coreness(ptr: np.ndarray, nbr: np.ndarray) -> np.ndarray:  # pragma: no cover
    n = len(ptr) - 1
    deg = np.empty(n, dtype=np.int32)
    for v in range(n):
        deg[v] = ptr[v + 1] - ptr[v]
    queue = np.empty(n, dtype=np.int32)
    done = 0
    k = 0
    while done < n:
        # level k: every vertex now of degree k is peeled, and each neighbour that falls to k with it
        head = tail = 0
        for v in range(n):
            if deg[v] == k:
                queue[tail] = v
                tail += 1
        while head < tail:
            v = queue[head]
            head += 1
            for j in range(ptr[v], ptr[v + 1]):
                u = nbr[j]
                du = deg[u]
                if du > k:
                    deg[u] = du - 1
                    if du - 1 == k:
                        queue[tail] = u
                        tail += 1
        done += tail
        k += 1
    return deg


def coreness(ptr: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """k-core number of every vertex of the CSR adjacency ``(ptr, nbr)``.

    Peeled level by level (k = 0, 1, 2 ...: every vertex of degree k goes, with each neighbour
    that falls to k), as ParK does (Dasari, Ranjan & Zubair 2014): O(k_max n + m) and scans memory
    in order, 2.5x faster at 1M parties than Batagelj & Zaversnik's bucket swaps, which igraph
    runs. Degrees are row lengths, so a self-loop listed twice counts 2 and is never peeled away
    (it stays with its vertex): igraph's ``coreness()`` on the same graph.
    """
    return np.asarray(_coreness(ptr, nbr), dtype=np.int64)


def warm() -> None:
    """Load (or compile) every kernel for the argument types the callers pass: once per process.

    The first call of a numba function in a process loads its machine code (LLVM, about 0.3 s of
    CPU); done here, on the caller's thread, before :func:`undirected_merge` runs on a worker.
    """
    global _warm
    if _warm:
        return
    i64, f64 = np.zeros(1, dtype=np.int64), np.ones(1)
    *_, ptr, nbr, _wt = ties(1, i64, i64, f64)
    coreness(ptr, nbr)
    _warm = True


_warm = False
