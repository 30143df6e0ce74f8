"""The blend: repeat purchase for one's staples, co-occurrence and ALS for discovery, popularity last.

The signals are combined by a logistic model whose weights are learned from the data itself:
every customer's last basket is held out, the signals are fitted on the rest, and the weights
are those that best predict which items were in that basket; then the signals are refitted on
the whole history.  A customer without history gets popularity (the needs fallback).

Scoring never builds a customers x items array: each signal proposes its own candidates (the
customer's own items, the top co-occurrence neighbours of what they bought, the ALS top items,
the most popular), and only those few hundred pairs per customer are scored, a batch of customers
at a time, so memory stays bounded and time linear in customers (issue 6).  The weights are
learned on the same candidates.  After learning, the signals are not refitted from scratch:
co-occurrence counts of the validation customers are swapped (exact), and their ALS factors
re-solved with the item factors held (when they are a small share of the customers).

    >>> blend = Blend().fit(Baskets.from_frame(frame))   # doctest: +SKIP
    >>> items, scores = blend.recommend(np.array([0, 1]), k=10)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from xrm.customize._baskets import Baskets, split_last_basket
from xrm.customize._signals import (
    ALSSignal,
    CoOccurrence,
    Popularity,
    RepeatPurchase,
    _distinct,
    _subset,
    pair_lookup,
    pair_positions,
    row_top,
    take_rows,
    take_rows_at,
)
from xrm.exceptions import ModelError

__all__ = ["FEATURES", "Blend", "segment_top", "top_k"]

FEATURES = ("repeat", "owned", "frequency", "recency", "item_repeat", "cooc", "als", "popularity")
# Before any learning: staples first, then discovery, popularity as the tie-breaker.
_DEFAULT_WEIGHTS = np.array([-6.0, 6.0, 1.5, 0.0, 0.0, 0.0, 1.0, 0.5, 0.1])  # bias, then FEATURES


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` highest columns in descending order and their scores."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def segment_top(rows: np.ndarray, scores: np.ndarray, n_rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` highest of the pairs ``(rows, scores)`` (``rows`` sorted ascending).

    Returns ``n_rows x k`` positions into the pairs and their scores, descending; -1 and -inf
    where a row has fewer than ``k`` pairs.  Rows are padded to the longest (a few hundred
    candidates) and cut with :func:`top_k`.
    """
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    width = max(int(counts.max(initial=0)), k)
    pad = np.full((n_rows, width), -np.inf)
    offset = np.arange(len(rows)) - starts[rows]
    pad[rows, offset] = scores
    idx, sc = top_k(pad, k)
    pos = np.where(idx < counts[:, None], starts[:, None] + idx, -1)
    return pos, sc


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 25) -> np.ndarray:
    """Weights (bias first) of an L2-regularised logistic regression, by Newton's method."""
    xb = np.c_[np.ones(len(x)), x]
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[0] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


@dataclass
class Blend:
    """Repeat purchase + co-occurrence + ALS + popularity, weighted by a learned logistic model."""

    repeat: RepeatPurchase = field(default_factory=RepeatPurchase)
    cooc: CoOccurrence = field(default_factory=CoOccurrence)
    als: ALSSignal | None = field(default_factory=ALSSignal)
    popularity: Popularity = field(default_factory=Popularity)
    learn_weights: bool = True
    validation_users: int = 3000
    candidates_per_signal: int = 50
    batch_users: int = 2048
    # Validation customers above this share of all customers: refit ALS from scratch after
    # learning rather than re-solving their factors (small data, where they are most customers).
    refit_share: float = 0.1
    seed: int = 0
    weights: np.ndarray = field(default_factory=lambda: _DEFAULT_WEIGHTS.copy())
    timings: dict[str, float] = field(default_factory=dict)
    data: Baskets | None = None
    # The last batch's rows (see _batch_rows): candidates and their features share them.
    _last_batch: tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix, np.ndarray] | None = field(
        default=None, init=False, repr=False)

    def _fit_signals(self, data: Baskets) -> None:
        t0 = time.perf_counter()
        self.repeat.fit(data)
        self.popularity.fit(data)
        t1 = time.perf_counter()
        self.cooc.fit(data, weights=self.repeat.matrix)
        t2 = time.perf_counter()
        if self.als is not None:
            self.als.fit(data)
        t3 = time.perf_counter()
        self._prepare()
        self.timings.update(repeat_s=t1 - t0, cooc_s=t2 - t1, als_s=t3 - t2)

    def _update_signals(self, rest: Baskets, data: Baskets, users: np.ndarray) -> None:
        """From signals fitted on ``rest`` to signals on ``data``, where only ``users`` differ."""
        t0 = time.perf_counter()
        self.repeat.fit(data)
        self.popularity.fit(data)
        t1 = time.perf_counter()
        self.cooc.update(rest, data, users, weights=self.repeat.matrix)
        self.cooc.release()
        t2 = time.perf_counter()
        if self.als is not None:
            if len(users) <= self.refit_share * data.n_users:
                self.als.refit_users(data, users)
            else:
                self.als.fit(data)
        t3 = time.perf_counter()
        self._prepare()
        self.timings.update(repeat_s=t1 - t0, cooc_s=t2 - t1, als_s=t3 - t2)

    def _prepare(self) -> None:
        buyers = self.popularity.buyers
        self._pop_feature = (np.log1p(buyers) / np.log1p(max(buyers.max(initial=0), 1))).astype(np.float32)
        self._pop_order = self.popularity.top_items(len(buyers))

    def fit(self, data: Baskets) -> Blend:
        """Learn the weights on held-out last baskets, then fit every signal on all of ``data``."""
        if data.n_users == 0 or data.n_items == 0:
            raise ModelError("no purchases to learn from: load `Order Completed` events with products first")
        start = time.perf_counter()
        learned = self._learn_weights(data) if self.learn_weights else None
        if learned is None:
            self._fit_signals(data)
        else:
            self._update_signals(learned[0], data, learned[1])
        self.data = data
        self.timings["fit_s"] = time.perf_counter() - start
        return self

    def _learn_weights(self, data: Baskets) -> tuple[Baskets, np.ndarray] | None:
        """Fit the signals without the validation customers' last baskets and learn the weights
        that predict those baskets; returns (that history, those customers) for the refit."""
        rng = np.random.default_rng(self.seed)
        eligible = np.flatnonzero(data.n_baskets >= 2)
        if len(eligible) < 20:
            return None  # too little history to learn from: keep the default weights
        users = rng.choice(eligible, size=min(self.validation_users, len(eligible)), replace=False)
        users.sort()
        rest, held = split_last_basket(data, users)
        self._fit_signals(rest)
        truth = _distinct(data.user[held].astype(np.int64) * data.n_items + data.item[held])
        xs, ys = [], []
        for lo in range(0, len(users), self.batch_users):
            batch = users[lo : lo + self.batch_users]
            rows, cols, feats = self.candidate_features(batch)
            xs.append(feats.T.astype(np.float64))
            keys = batch[rows].astype(np.int64) * data.n_items + cols
            pos = np.minimum(np.searchsorted(truth, keys), max(len(truth) - 1, 0))
            ys.append((truth[pos] == keys).astype(np.float64) if len(truth) else np.zeros(len(keys)))
        x, y = np.concatenate(xs), np.concatenate(ys)
        if 0 < y.sum() < len(y):
            self.weights = _fit_logistic(x, y)
        # Only the validation customers' held-out history is needed for the update: not a copy
        # of every purchase line for the length of the refit.
        chosen = np.zeros(data.n_users, dtype=bool)
        chosen[users] = True
        return _subset(rest, chosen), users

    def candidates(
        self, users: np.ndarray, *, per_user: int = 0, exclude_owned: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The (row into ``users``, item) pairs worth scoring, sorted by row then item: what the
        customer owns, and each signal's top ``candidates_per_signal`` (popularity's at least
        ``per_user``).  With ``exclude_owned``, owned items are left out and each signal reaches
        past them."""
        users = np.asarray(users, dtype=np.int64)
        n_items, n = self.repeat.matrix.shape[1], self.candidates_per_signal
        w, product, _ = self._batch_rows(users)
        owned_n = np.diff(w.indptr)
        extra = int(owned_n.max(initial=0)) if exclude_owned else 0
        keys = []
        if not exclude_owned:
            keys.append(np.repeat(np.arange(len(users), dtype=np.int64), owned_n) * n_items + w.indices)
        if exclude_owned and product.nnz:
            product = product.copy()
            product_rows = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(product.indptr))
            product.data[pair_lookup(w, product_rows, product.indices) > 0] = -np.inf
        r, c = row_top(product, n)
        keys.append(r * n_items + c)
        if self.als is not None:
            top = self.als.top_items(users, n + extra)
            r = np.repeat(np.arange(len(users), dtype=np.int64), top.shape[1])
            c = top.ravel()
            ok = c >= 0
            keys.append(r[ok] * n_items + c[ok])
        pop = self._pop_order[: max(n, per_user) + extra]
        keys.append((np.arange(len(users), dtype=np.int64)[:, None] * n_items + pop[None, :]).ravel())
        key = _distinct(np.concatenate(keys))
        rows, cols = key // n_items, (key % n_items).astype(np.int64)
        if exclude_owned:
            keep = pair_lookup(w, rows, cols) == 0
            rows, cols = rows[keep], cols[keep]
        return rows, cols

    def _batch_rows(self, users: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """The customers' repeat-purchase rows and co-occurrence scores (sparse, sorted indices),
        kept for the next call on the same customers (candidates, then their features)."""
        cached = self._last_batch
        if cached is not None and cached[0] is users:
            return cached[1], cached[2], cached[3]
        w, at = take_rows_at(self.repeat.matrix, users)
        product = w @ self.cooc.matrix
        # Two linear transposes sort the indices (scipy's sort_indices sorts each row).
        product = product.tocsc().tocsr()
        product.has_sorted_indices = True
        self._last_batch = (users, w, product, at)
        return w, product, at

    def candidate_features(
        self, users: np.ndarray, *, per_user: int = 0, exclude_owned: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`candidates` and their features: rows, items, ``len(FEATURES) x pairs``."""
        users = np.asarray(users, dtype=np.int64)
        rows, cols = self.candidates(users, per_user=per_user, exclude_owned=exclude_owned)
        feats = self.pair_features(users, rows, cols)
        self._last_batch = None
        return rows, cols, feats

    def pair_features(self, users: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Array ``(len(FEATURES), pairs)`` of each signal at (``users[rows]``, ``cols``), scaled
        to about [0, 1]; co-occurrence is divided by the customer's best co-occurrence score."""
        users = np.asarray(users, dtype=np.int64)
        w, product, at = self._batch_rows(users)
        rep = self.repeat
        pos = pair_positions(w, rows, cols)
        hit = pos >= 0
        r, freq, rec = (np.zeros(len(rows), dtype=np.float32) for _ in range(3))
        r[hit] = w.data[pos[hit]]
        if rep.same_pattern:
            src = at[pos[hit]]
            freq[hit], rec[hit] = rep.frequency.data[src], rep.recency.data[src]
        else:
            freq = pair_lookup(take_rows(rep.frequency, users), rows, cols)
            rec = pair_lookup(take_rows(rep.recency, users), rows, cols)
        owned = (r > 0).astype(np.float32)
        item_rep = owned * rep.item_repeat_rate[cols]
        best = np.zeros(len(users), dtype=np.float32)
        lengths = np.diff(product.indptr)
        full = lengths > 0
        if full.any():
            best[full] = np.maximum.reduceat(product.data, product.indptr[:-1][full])
        c = pair_lookup(product, rows, cols) / (best[rows] + 1e-9)
        a = self.als.pair_scores(users[rows], cols) if self.als is not None else np.zeros_like(r)
        p = self._pop_feature[cols]
        return np.stack([r, owned, freq, rec, item_rep, c, a, p]).astype(np.float32)

    def logits(self, feats: np.ndarray) -> np.ndarray:
        """Bias + weights x features over the first axis, summed in a fixed order (so a pair's
        logit does not depend on which other pairs are scored with it)."""
        out = np.full(feats.shape[1:], self.weights[0])
        for j in range(len(FEATURES)):
            out += self.weights[j + 1] * feats[j]
        return out

    def features(self, users: np.ndarray) -> np.ndarray:
        """Dense ``(len(FEATURES), len(users), n_items)`` of each signal: for small catalogues,
        tests and explanations; scoring at scale goes through :meth:`candidate_features`."""
        users = np.asarray(users, dtype=np.int64)
        n_items = self.repeat.matrix.shape[1]
        rows = np.repeat(np.arange(len(users), dtype=np.int64), n_items)
        cols = np.tile(np.arange(n_items, dtype=np.int64), len(users))
        return self.pair_features(users, rows, cols).reshape(len(FEATURES), len(users), n_items)

    def score(self, users: np.ndarray) -> np.ndarray:
        """Logit of P(item in the customer's next basket), dense ``len(users) x n_items``."""
        return self.logits(self.features(users))

    def index(self, progress: Callable[[int], None] | None = None) -> None:
        """Precompute every customer's ALS candidates (see :meth:`ALSSignal.index`): before scoring
        all customers, so that ALS is searched once, cluster by cluster, not batch by batch."""
        if self.als is not None:
            t0 = time.perf_counter()
            self.timings.update(self.als.index(self.candidates_per_signal, progress))
            self.timings["als_index_s"] = time.perf_counter() - t0

    def recommend(
        self, users: np.ndarray, k: int = 10, *, exclude_owned: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item codes and scores per customer code; a new customer (-1) gets the ``k``
        most popular items (the learned weights say nothing about customers without history)."""
        users = np.asarray(users, dtype=np.int64)
        k = min(k, self.repeat.matrix.shape[1])
        out_i = np.zeros((len(users), k), dtype=np.int64)
        out_s = np.zeros((len(users), k), dtype=np.float64)
        for lo in range(0, len(users), self.batch_users):
            batch = users[lo : lo + self.batch_users]
            rows, cols, feats = self.candidate_features(batch, per_user=k, exclude_owned=exclude_owned)
            pos, sc = segment_top(rows, self.logits(feats), len(batch), k)
            out_i[lo : lo + len(batch)] = np.where(pos >= 0, cols[pos], -1)
            out_s[lo : lo + len(batch)] = sc
        new = users < 0
        if new.any():
            top = self._pop_order[:k]
            out_i[new] = top
            out_s[new] = self.logits(self.pair_features(np.array([-1]), np.zeros(k, dtype=np.int64), top))
        return out_i, out_s

    def contributions(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Each signal's share of the logit for ``items`` (weight x feature), for explanations."""
        items = np.asarray(items, dtype=np.int64)
        feats = self.pair_features(np.array([user]), np.zeros(len(items), dtype=np.int64), items)
        contrib = self.weights[1:, None] * feats
        return {
            "repeat": contrib[:5].sum(axis=0),
            "cooc": contrib[5],
            "als": contrib[6],
            "popularity": contrib[7],
            "repeat_raw": feats[0],
            "cooc_raw": feats[5],
            "als_raw": feats[6],
            "popularity_raw": feats[7],
        }

    def describe(self) -> dict[str, Any]:
        return {
            "weights": dict(zip(("bias", *FEATURES), np.round(self.weights, 4).tolist(), strict=True)),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
