"""The recommendation signals: popularity, repeat purchase, co-occurrence ("bought X, then Y"), ALS.

Each is fitted on :class:`~xrm.customize.Baskets`.  ``score`` gives a dense ``len(users) x n_items``
array (small catalogues, explanations); at scale the blend asks each signal only for its own
candidates (``top_items``, a sparse row) and for values at given (customer, item) pairs, so that
memory stays bounded and time linear in customers (issue 6: 1M customers x 100k items).

    >>> repeat = RepeatPurchase().fit(data)   # doctest: +SKIP
    >>> repeat.score(np.array([0, 1]))        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from xrm.customize._baskets import Baskets

if TYPE_CHECKING:
    from implicit.cpu.als import AlternatingLeastSquares

__all__ = ["ALSSignal", "CoOccurrence", "Popularity", "RepeatPurchase"]


def _users_items(data: Baskets, values: np.ndarray) -> sp.csr_matrix:
    """Sum ``values`` per (customer, item) into a CSR matrix."""
    m = sp.coo_matrix(
        (values, (data.user, data.item)), shape=(data.n_users, data.n_items), dtype=np.float64
    ).tocsr()
    m.sum_duplicates()
    return m


def _dense_rows(m: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Rows of ``m`` for ``users`` as a dense array; unknown customers (-1) get zeros."""
    out = np.zeros((len(users), m.shape[1]), dtype=np.float32)
    known = users >= 0
    if known.any():
        out[known] = m[users[known]].toarray()
    return out


def take_rows(m: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """Rows of ``m`` for ``users`` as a CSR matrix with sorted indices; unknown customers (-1) get
    empty rows.  (Plain ``m[users]`` would give -1 the last row.)"""
    return take_rows_at(m, users)[0]


def take_rows_at(m: sp.csr_matrix, users: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`take_rows` and, per stored entry of the result, its position in ``m.data`` (to read
    matrices of the same sparsity pattern at the same places)."""
    if not m.has_sorted_indices:
        m.sort_indices()
    users = np.asarray(users, dtype=np.int64)
    known = users >= 0
    safe = np.where(known, users, 0)
    start = m.indptr[safe]
    length = np.where(known, m.indptr[safe + 1] - start, 0).astype(np.int64)
    indptr = np.r_[0, np.cumsum(length)]
    at = np.repeat(start - indptr[:-1], length) + np.arange(indptr[-1])
    out = sp.csr_matrix((m.data[at], m.indices[at], indptr), shape=(len(users), m.shape[1]))
    out.has_sorted_indices = True
    return out, at


def pair_positions(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Positions in ``m.data`` (sorted indices) of the entries at ``(rows, cols)``; -1 where none.

    One sorted search over the matrix's (row, column) keys: ``m`` here is a batch's few rows, so
    the keys stay in cache (the whole 1M-customer matrix would not).
    """
    n_cols = m.shape[1]
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_cols + m.indices
    want = rows.astype(np.int64) * n_cols + cols
    if len(keys) == 0:
        return np.full(len(want), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where(keys[pos] == want, pos, -1)


def pair_lookup(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of ``m`` (sorted indices) at ``(rows, cols)``; 0 where ``m`` has no entry."""
    pos = pair_positions(m, rows, cols)
    out = np.zeros(len(pos), dtype=np.float32)
    hit = pos >= 0
    out[hit] = m.data[pos[hit]]
    return out


def row_top(m: sp.csr_matrix, n: int, max_cells: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``m``, its ``n`` largest stored entries as (row, column) arrays (unordered).

    Rows are padded to the longest and cut with ``argpartition``: linear, unlike a sort of all
    entries; rows are taken a slice at a time so the padded block stays under ``max_cells``.
    """
    lengths = np.diff(m.indptr).astype(np.int64)
    rows_out, cols_out = [], []
    lo, n_rows = 0, m.shape[0]
    while lo < n_rows:
        longest = max(int(lengths[lo:].max(initial=1)), 1)
        hi = min(n_rows, lo + max(1, max_cells // longest))
        ln = lengths[lo:hi]
        width = int(ln.max(initial=0))
        a, b = m.indptr[lo], m.indptr[hi]
        row = np.repeat(np.arange(lo, hi), ln)
        if width <= n:
            rows_out.append(row)
            cols_out.append(m.indices[a:b])
        else:
            offset = np.arange(b - a) - np.repeat(m.indptr[lo:hi] - a, ln)
            pad = np.full((hi - lo, width), -np.inf, dtype=np.float32)
            pad[row - lo, offset] = m.data[a:b]
            pick = np.argpartition(-pad, n - 1, axis=1)[:, :n]
            ok = pick < ln[:, None]
            r = np.broadcast_to(np.arange(lo, hi)[:, None], pick.shape)[ok]
            rows_out.append(r)
            cols_out.append(m.indices[m.indptr[r] + pick[ok]])
        lo = hi
    if not rows_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    return np.concatenate(rows_out).astype(np.int64), np.concatenate(cols_out)


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a diff: ``np.unique`` hashes, slower on 10^7+ keys)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


class Popularity:
    """Share of customers who bought each item: the fallback for customers without history."""

    def fit(self, data: Baskets) -> Popularity:
        pairs = _distinct(data.user.astype(np.int64) * data.n_items + data.item)
        buyers = np.bincount(pairs % data.n_items, minlength=data.n_items).astype(np.float64)
        self.buyers = buyers
        self.share = (buyers / max(data.n_users, 1)).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.share, (len(users), len(self.share))).copy()

    def top_items(self, n: int) -> np.ndarray:
        """The ``n`` items bought by the most customers (everyone's popularity candidates)."""
        n = min(n, len(self.buyers))
        return np.argsort(-self.buyers, kind="stable")[:n]


class RepeatPurchase:
    """Time-decayed share of a customer's baskets that held the item: P(it is in the next basket).

    score(u, i) = sum over u's baskets b holding i of decay^age(b) / sum over all u's baskets of
    decay^age(b), with age 0 for the latest basket (personal item frequency with recency decay,
    as in TIFU-KNN's personal component: Hu et al. 2020, "Modeling Personalized Item Frequency
    Information for Next-basket Recommendation", SIGIR, eq. 1-3).
    """

    def __init__(self, decay: float = 0.9) -> None:
        if not 0 < decay <= 1:
            raise ValueError(f"decay = {decay} must be in (0, 1]")
        self.decay = decay

    def fit(self, data: Baskets) -> RepeatPurchase:
        age = data.n_baskets[data.user] - 1 - data.ordinal
        weights = self.decay ** age.astype(np.float64)
        b = data.n_baskets.astype(np.float64)
        norm = b if self.decay == 1 else (1 - self.decay**b) / (1 - self.decay)
        m = _users_items(data, weights)
        m = sp.diags(1 / np.maximum(norm, 1e-12)) @ m
        self.matrix = m.tocsr().astype(np.float32)
        self.counts = _users_items(data, np.ones(len(data.user)))
        # Per customer x item: first and last purchase day (for cycles and explanations).
        order = np.lexsort((data.t, data.item, data.user))
        key = data.user[order].astype(np.int64) * data.n_items + data.item[order]
        starts = np.r_[True, key[1:] != key[:-1]]
        ends = np.r_[key[1:] != key[:-1], True]
        self.cycle_user = data.user[order][starts]
        self.cycle_item = data.item[order][starts]
        self.cycle_first = data.t[order][starts]
        self.cycle_last = data.t[order][ends]
        self.cycle_n = np.diff(np.r_[np.flatnonzero(starts), len(key)])
        last_ord = data.ordinal[order][ends]
        b_u = data.n_baskets[self.cycle_user]
        shape = self.counts.shape
        # Recency: 1 / (1 + baskets since the last purchase); frequency: plain share of baskets.
        self.recency = sp.csr_matrix(
            (1.0 / (b_u - last_ord), (self.cycle_user, self.cycle_item)), shape=shape, dtype=np.float32
        )
        self.frequency = sp.csr_matrix(
            (self.cycle_n / b_u, (self.cycle_user, self.cycle_item)), shape=shape, dtype=np.float32
        )
        # Item repeat rate: of the customers who bought it, the share who bought it again (shrunk).
        again = np.bincount(self.cycle_item, weights=self.cycle_n >= 2, minlength=data.n_items)
        buyers = np.bincount(self.cycle_item, minlength=data.n_items)
        self.item_repeat_rate = ((again + 1) / (buyers + 4)).astype(np.float32)
        for m in (self.matrix, self.recency, self.frequency):
            m.sort_indices()  # pair_lookup searches them
        # One search then reads all three when they hold the same (customer, item) pairs.
        self.same_pattern = all(
            np.array_equal(self.matrix.indptr, m.indptr) and np.array_equal(self.matrix.indices, m.indices)
            for m in (self.recency, self.frequency)
        )
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return _dense_rows(self.matrix, users)


class CoOccurrence:
    """Directed item-to-item co-occurrence: P(y bought in the same or a later basket | x bought).

    C[x, y] counts customers whose first purchase of x came no later than their first purchase
    of y; P(y | x) = C[x, y] / (buyers(x) + shrink), keeping the ``neighbours`` strongest y per x.
    A customer's score for y sums P(y | x) over the items x they bought, each weighted by its
    repeat-purchase share (item-based top-N: Deshpande & Karypis 2004, ACM TOIS 22(1), §3).
    """

    def __init__(
        self, neighbours: int = 100, shrink: float = 5.0, max_items_per_user: int = 200,
        chunk_pairs: int = 20_000_000,
    ) -> None:
        self.neighbours = neighbours
        self.shrink = shrink
        self.max_items_per_user = max_items_per_user
        self.chunk_pairs = chunk_pairs

    def fit(self, data: Baskets, weights: sp.csr_matrix | None = None) -> CoOccurrence:
        self.counts: sp.csr_matrix | None
        self.counts, self.buyers = self._pair_counts(data)
        self._weights = weights
        return self._prune()

    def update(self, old: Baskets, new: Baskets, users: np.ndarray, weights: sp.csr_matrix | None = None
               ) -> CoOccurrence:
        """Refit after ``users``' histories changed from ``old`` to ``new`` (all else equal).

        Counts add up over customers, so this equals a fit on ``new``, at the cost of ``users``
        alone: the blend fits on held-out data to learn its weights, then updates the few
        validation customers instead of counting a million customers' pairs twice.
        """
        if self.counts is None:
            raise ValueError("CoOccurrence.update after release(): fit again")
        chosen = np.zeros(new.n_users, dtype=bool)
        chosen[users] = True
        minus, minus_b = self._pair_counts(_subset(old, chosen))
        plus, plus_b = self._pair_counts(_subset(new, chosen))
        self.counts = self.counts - minus + plus
        self.counts.eliminate_zeros()
        self.buyers = self.buyers - minus_b + plus_b
        self._weights = weights
        return self._prune()

    def release(self) -> None:
        """Drop the full pair counts (only :meth:`update` needs them; 10^8 pairs at 1M customers)."""
        self.counts = None

    def _prune(self) -> CoOccurrence:
        assert self.counts is not None
        # A row's scale (1 / buyers) keeps its order: prune the counts, then scale what is left
        # (no float64 copy of 10^8 pairs at 1M customers).
        top = _top_per_row(self.counts, self.neighbours)
        prob = sp.diags(1 / (self.buyers + self.shrink)) @ top.astype(np.float64)
        self.matrix = prob.tocsr().astype(np.float32)
        self.matrix.sort_indices()
        return self

    def _pair_counts(self, data: Baskets) -> tuple[sp.csr_matrix, np.ndarray]:
        """C[x, y] over ``data``'s customers, and each item's number of (capped) first buyers."""
        n_items = data.n_items
        # First-purchase ordinal of each (customer, item), most recent items first when capped.
        order = np.lexsort((data.ordinal, data.item, data.user))
        key = data.user[order].astype(np.int64) * n_items + data.item[order]
        first = np.r_[True, key[1:] != key[:-1]]
        u, i, f = data.user[order][first], data.item[order][first], data.ordinal[order][first]
        by = np.lexsort((-f, u))
        u, i, f = u[by], i[by], f[by]
        starts = np.r_[0, np.flatnonzero(np.diff(u)) + 1] if len(u) else np.zeros(0, dtype=np.int64)
        sizes = np.diff(np.r_[starts, len(u)])
        keep_n = np.minimum(sizes, self.max_items_per_user)
        pos = np.arange(len(u)) - np.repeat(starts, sizes)
        kept = pos < np.repeat(keep_n, sizes)
        u, i, f = u[kept], i[kept], f[kept]
        starts = np.r_[0, np.cumsum(keep_n)[:-1]].astype(np.int64)
        parts: list[sp.csr_matrix] = []
        lo = 0
        n_users = len(keep_n)
        while lo < n_users:
            # Chunks of customers whose pair count stays under chunk_pairs.
            pair_cum = np.cumsum(keep_n[lo:].astype(np.int64) ** 2)
            hi = lo + max(1, int(np.searchsorted(pair_cum, self.chunk_pairs)))
            s, k = starts[lo:hi], keep_n[lo:hi].astype(np.int64)
            rows = np.arange(s[0], s[-1] + k[-1])
            row_k = np.repeat(k, k)
            row_start = np.repeat(s, k)
            a = np.repeat(rows, row_k)
            offs = np.arange(len(a)) - np.repeat(np.r_[0, np.cumsum(row_k)[:-1]], row_k)
            b = np.repeat(row_start, row_k) + offs
            ok = (a != b) & (f[a] <= f[b])
            a, b = a[ok], b[ok]
            parts.append(sp.coo_matrix(
                (np.ones(len(a), dtype=np.float32), (i[a], i[b])), shape=(n_items, n_items)
            ).tocsr())
            lo = hi
            # Pairwise sums keep the additions few and the partial matrices small.
            while len(parts) >= 2 and parts[-1].nnz >= parts[-2].nnz // 2:
                top = parts.pop()
                parts[-1] = parts[-1] + top
        counts = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        for part in parts:
            counts = counts + part
        buyers = np.bincount(i, minlength=n_items).astype(np.float64)
        return counts, buyers

    def score(self, users: np.ndarray, weights: sp.csr_matrix | None = None) -> np.ndarray:
        w = weights if weights is not None else self._weights
        if w is None:
            raise ValueError("CoOccurrence.score needs the customers' item weights (a RepeatPurchase matrix)")
        out = np.zeros((len(users), self.matrix.shape[1]), dtype=np.float32)
        known = users >= 0
        if known.any():
            out[known] = (w[users[known]] @ self.matrix).toarray()
        return out

    def strongest_source(self, history: np.ndarray, weights: np.ndarray, target: int) -> tuple[int, float]:
        """Which bought item contributes most to ``target`` (for the explanation)."""
        col = self.matrix[history, target].toarray().ravel() * weights
        j = int(np.argmax(col)) if len(col) else 0
        return (int(history[j]), float(col[j])) if len(col) else (-1, 0.0)


def _subset(data: Baskets, chosen: np.ndarray) -> Baskets:
    """``data`` restricted to the customers marked in ``chosen`` (same codes)."""
    keep = chosen[data.user]
    return Baskets(customers=data.customers, items=data.items, user=data.user[keep], item=data.item[keep],
                   ordinal=data.ordinal[keep], t=data.t[keep], n_baskets=data.n_baskets,
                   last_t=data.last_t)


def _top_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (in place order, so indices stay sorted)."""
    m.sort_indices()
    lengths = np.diff(m.indptr)
    if lengths.max(initial=0) <= n:
        return m
    keep = np.zeros(len(m.data), dtype=bool)
    for r in np.flatnonzero(lengths > 0):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi - lo <= n:
            keep[lo:hi] = True
        else:
            keep[lo + np.argpartition(-m.data[lo:hi], n)[:n]] = True
    indptr = np.r_[0, np.cumsum(np.minimum(lengths, n))]
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)


class ALSSignal:
    """Collaborative filtering on implicit feedback: the ``implicit`` library's ALS (CPU).

    Confidence 1 + alpha * log1p(times bought), as in Hu, Koren & Volinsky 2008, "Collaborative
    Filtering for Implicit Feedback Datasets", ICDM, eq. 6 (log variant).

    Its candidates (each customer's top items by u . v) are exact up to ``exact_items`` items; above
    that, a brute-force pass over 1M x 100k cells would take most of the build, so customers are
    grouped by the direction of their factors (spherical k-means; a customer's ranking depends only
    on that direction) and each customer ranks exactly the ``cluster_items`` best items of its
    group's centre, an inverted-file search as in Jégou et al. 2011 (IEEE TPAMI 33(1), §III.A).

    Above ``fit_users`` customers, the item factors are learned on a random ``fit_users`` of them
    and every customer's factors are then solved once against those item factors (fold-in, Hu et
    al. eq. 4): an ALS sweep costs as much per customer as per item, and a million customers add
    little to what 200k say about 100k items.
    """

    def __init__(
        self, factors: int = 64, iterations: int = 15, regularization: float = 0.05,
        alpha: float = 10.0, random_state: int = 0, threads: int = 2,
        exact_items: int = 20_000, clusters: int = 0, cluster_items: int = 2000,
        fit_users: int = 200_000,
    ) -> None:
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.random_state = random_state
        self.threads = threads
        self.exact_items = exact_items
        self.clusters = clusters  # 0: about sqrt(customers), at most 2048
        self.cluster_items = cluster_items
        self.fit_users = fit_users
        self.model: AlternatingLeastSquares | None = None
        self._table: np.ndarray | None = None

    def fit(self, data: Baskets) -> ALSSignal:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        confidence = _confidence(data)
        sample = None
        if self.fit_users and data.n_users > self.fit_users:
            rng = np.random.default_rng(self.random_state)
            sample = np.sort(rng.choice(data.n_users, size=self.fit_users, replace=False))
        # implicit parallelises itself; a multi-threaded BLAS underneath only slows it down.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors, iterations=self.iterations, regularization=self.regularization,
                alpha=self.alpha, random_state=self.random_state, num_threads=self.threads,
            )
            model.fit(confidence if sample is None else confidence[sample], show_progress=False)
            if sample is not None:
                factors = np.empty((data.n_users, self.factors), dtype=np.float32)
                for lo in range(0, data.n_users, 100_000):
                    hi = min(lo + 100_000, data.n_users)
                    factors[lo:hi] = model.recalculate_user(np.arange(lo, hi), confidence[lo:hi])
                model.user_factors = factors
        self.model = model
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self._table = None
        return self

    def refit_users(self, data: Baskets, users: np.ndarray) -> ALSSignal:
        """Recompute ``users``' factors on ``data`` with the item factors held (one exact solve each)."""
        if self.model is None:
            raise ValueError("ALSSignal.refit_users needs a fitted model")
        from threadpoolctl import threadpool_limits

        rows = take_rows(_confidence(data), users)
        with threadpool_limits(1, "blas"):
            self.model.partial_fit_users(np.asarray(users), rows)
        self.user_factors = np.asarray(self.model.user_factors, dtype=np.float32)
        self._table = None
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), self.item_factors.shape[0]), dtype=np.float32)
        known = users >= 0
        if known.any():
            out[known] = self.user_factors[users[known]] @ self.item_factors.T
        return out

    def pair_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """u . v for each (customer, item) pair; 0 for unknown customers (-1)."""
        known = users >= 0
        out = np.zeros(len(users), dtype=np.float32)
        if known.any():
            u, v = self.user_factors[users[known]], self.item_factors[items[known]]
            out[known] = np.einsum("ij,ij->i", u, v)
        return out

    def top_items(self, users: np.ndarray, n: int) -> np.ndarray:
        """``len(users) x n`` item codes, each customer's ALS candidates (unordered; rows of
        unknown customers are -1).  From the all-customer table when :meth:`index` built one."""
        n = min(n, self.item_factors.shape[0])
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), n), -1, dtype=np.int32)
        known = users >= 0
        if self._table is not None and self._table.shape[1] >= n:
            out[known] = self._table[users[known], :n]
            return out
        out[known] = self._exact(self.user_factors[users[known]], n)
        return out

    def _exact(self, factors: np.ndarray, n: int, block: int = 256) -> np.ndarray:
        out = np.empty((len(factors), n), dtype=np.int32)
        for lo in range(0, len(factors), block):
            s = factors[lo : lo + block] @ self.item_factors.T
            out[lo : lo + block] = np.argpartition(-s, n - 1, axis=1)[:, :n]
        return out

    def index(self, n: int, progress: Callable[[int], None] | None = None) -> dict[str, float]:
        """Compute every customer's ``n`` candidates at once (``top_items`` then reads the table).

        Exact for catalogues up to ``exact_items``; else grouped by cluster (see the class doc).
        ``progress(customers_done)`` is called as it goes.  Returns what it did, for the timings.
        """
        n_users, n_items = self.user_factors.shape[0], self.item_factors.shape[0]
        n = min(n, n_items)
        table = np.empty((n_users, n), dtype=np.int32)
        if n_items <= self.exact_items or n_items <= self.cluster_items:
            step = 8192
            for lo in range(0, n_users, step):
                table[lo : lo + step] = self._exact(self.user_factors[lo : lo + step], n)
                if progress:
                    progress(min(lo + step, n_users))
            self._table = table
            return {"als_exact": 1.0}
        centres = self._centres()
        # Each cluster's candidate items: the best cluster_items for its centre.
        m = self.cluster_items
        cand = np.empty((len(centres), m), dtype=np.int32)
        for lo in range(0, len(centres), 256):
            s = centres[lo : lo + 256] @ self.item_factors.T
            cand[lo : lo + 256] = np.argpartition(-s, m - 1, axis=1)[:, :m]
        assign = self._assign(self.user_factors, centres)
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(len(centres) + 1))
        done = 0
        for c in range(len(centres)):
            members = order[bounds[c] : bounds[c + 1]]
            if len(members) == 0:
                continue
            v = self.item_factors[cand[c]]
            for lo in range(0, len(members), 4096):
                who = members[lo : lo + 4096]
                s = self.user_factors[who] @ v.T
                table[who] = cand[c][np.argpartition(-s, n - 1, axis=1)[:, :n]]
            done += len(members)
            if progress:
                progress(done)
        self._table = table
        return {"als_exact": 0.0, "als_clusters": float(len(centres))}

    def _centres(self, sample: int = 100_000, rounds: int = 8) -> np.ndarray:
        """Spherical k-means on a sample of the customers' normalised factors."""
        rng = np.random.default_rng(self.random_state)
        n_users = self.user_factors.shape[0]
        k = self.clusters or int(min(2048, max(16, np.sqrt(n_users))))
        pick = rng.choice(n_users, size=min(sample, n_users), replace=False)
        x = _normalise(self.user_factors[pick])
        centres = x[rng.choice(len(x), size=min(k, len(x)), replace=False)]
        for _ in range(rounds):
            a = self._assign(x, centres)
            sums = np.zeros_like(centres)
            np.add.at(sums, a, x)
            empty = np.bincount(a, minlength=len(centres)) == 0
            sums[empty] = centres[empty]
            centres = _normalise(sums)
        return centres

    @staticmethod
    def _assign(x: np.ndarray, centres: np.ndarray, block: int = 65_536) -> np.ndarray:
        out = np.empty(len(x), dtype=np.int64)
        for lo in range(0, len(x), block):
            out[lo : lo + block] = np.argmax(x[lo : lo + block] @ centres.T, axis=1)
        return out

    def candidate_recall(self, n: int, users: int = 2000) -> float:
        """Share of the exact top-``n`` that the table holds, over a sample of customers."""
        if self._table is None:
            return 1.0
        rng = np.random.default_rng(self.random_state + 1)
        n_users = self.user_factors.shape[0]
        who = rng.choice(n_users, size=min(users, n_users), replace=False)
        exact = self._exact(self.user_factors[who], n)
        got = self._table[who, :n]
        return float(np.mean([len(np.intersect1d(a, b)) / n for a, b in zip(exact, got, strict=True)]))


def _confidence(data: Baskets) -> sp.csr_matrix:
    counts = _users_items(data, np.ones(len(data.user)))
    counts.data = np.log1p(counts.data)
    return counts.astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)).astype(np.float32)
