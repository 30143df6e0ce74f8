"""The recommendation signals: popularity, repeat purchase, co-occurrence ("bought X, then Y"), ALS.

Each is fitted on :class:`~xrm.customize.Baskets` and scores a batch of customers against every
item (a dense ``len(users) x n_items`` array), so a blend can combine them cell by cell.

    >>> repeat = RepeatPurchase().fit(data)   # doctest: +SKIP
    >>> repeat.score(np.array([0, 1]))        # doctest: +SKIP
"""

from __future__ import annotations

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


class Popularity:
    """Share of customers who bought each item: the fallback for customers without history."""

    def fit(self, data: Baskets) -> Popularity:
        buyers = np.zeros(data.n_items)
        pairs = np.unique(data.user.astype(np.int64) * data.n_items + data.item)
        np.add.at(buyers, pairs % data.n_items, 1.0)
        self.buyers = buyers
        self.share = (buyers / max(data.n_users, 1)).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.share, (len(users), len(self.share))).copy()


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
        n_items = data.n_items
        # First-purchase ordinal of each (customer, item), most recent items first when capped.
        order = np.lexsort((data.ordinal, data.item, data.user))
        key = data.user[order].astype(np.int64) * n_items + data.item[order]
        first = np.r_[True, key[1:] != key[:-1]]
        u, i, f = data.user[order][first], data.item[order][first], data.ordinal[order][first]
        by = np.lexsort((-f, u))
        u, i, f = u[by], i[by], f[by]
        starts = np.r_[0, np.flatnonzero(np.diff(u)) + 1]
        sizes = np.diff(np.r_[starts, len(u)])
        keep_n = np.minimum(sizes, self.max_items_per_user)
        pos = np.arange(len(u)) - np.repeat(starts, sizes)
        kept = pos < np.repeat(keep_n, sizes)
        u, i, f = u[kept], i[kept], f[kept]
        starts = np.r_[0, np.cumsum(keep_n)[:-1]]
        counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
        lo = 0
        n_users = len(keep_n)
        while lo < n_users:
            # Chunks of customers whose pair count stays under chunk_pairs.
            pair_cum = np.cumsum(keep_n[lo:].astype(np.int64) ** 2)
            hi = lo + max(1, int(np.searchsorted(pair_cum, self.chunk_pairs)))
            s, k = starts[lo:hi], keep_n[lo:hi]
            rows = np.arange(s[0], s[-1] + k[-1])
            row_k = np.repeat(k, k)
            row_start = np.repeat(s, k)
            a = np.repeat(rows, row_k)
            offs = np.arange(len(a)) - np.repeat(np.r_[0, np.cumsum(row_k)[:-1]], row_k)
            b = np.repeat(row_start, row_k) + offs
            ok = (a != b) & (f[a] <= f[b])
            a, b = a[ok], b[ok]
            counts = counts + sp.coo_matrix(
                (np.ones(len(a)), (i[a], i[b])), shape=(n_items, n_items)
            ).tocsr()
            lo = hi
        buyers = np.bincount(i, minlength=n_items).astype(np.float64)
        prob = sp.diags(1 / (buyers + self.shrink)) @ counts
        self.matrix = _top_per_row(prob.tocsr(), self.neighbours).astype(np.float32)
        self.buyers = buyers
        self._weights = weights
        return self

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


def _top_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row."""
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
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


class ALSSignal:
    """Collaborative filtering on implicit feedback: the ``implicit`` library's ALS (CPU).

    Confidence 1 + alpha * log1p(times bought), as in Hu, Koren & Volinsky 2008, "Collaborative
    Filtering for Implicit Feedback Datasets", ICDM, eq. 6 (log variant).
    """

    def __init__(
        self, factors: int = 64, iterations: int = 15, regularization: float = 0.05,
        alpha: float = 10.0, random_state: int = 0, threads: int = 0,
    ) -> None:
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.random_state = random_state
        self.threads = threads
        self.model: AlternatingLeastSquares | None = None

    def fit(self, data: Baskets) -> ALSSignal:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        counts = _users_items(data, np.ones(len(data.user)))
        counts.data = np.log1p(counts.data)
        # implicit parallelises itself; a multi-threaded BLAS underneath only slows it down.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors, iterations=self.iterations, regularization=self.regularization,
                alpha=self.alpha, random_state=self.random_state, num_threads=self.threads,
            )
            model.fit(counts.astype(np.float32), show_progress=False)
        self.model = model
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), self.item_factors.shape[0]), dtype=np.float32)
        known = users >= 0
        if known.any():
            out[known] = self.user_factors[users[known]] @ self.item_factors.T
        return out
