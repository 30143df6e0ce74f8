"""The blend: repeat purchase for one's staples, co-occurrence and ALS for discovery, popularity last.

The signals are combined by a logistic model whose weights are learned from the data itself:
every customer's last basket is held out, the signals are fitted on the rest, and the weights
are those that best predict which items were in that basket; then the signals are refitted on
the whole history.  A customer without history gets popularity (the needs fallback).

    >>> blend = Blend().fit(Baskets.from_frame(frame))   # doctest: +SKIP
    >>> items, scores = blend.recommend(np.array([0, 1]), k=10)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrm.customize._baskets import Baskets, split_last_basket
from xrm.customize._signals import ALSSignal, CoOccurrence, Popularity, RepeatPurchase
from xrm.customize._signals import _dense_rows as _rows
from xrm.exceptions import ModelError

__all__ = ["FEATURES", "Blend", "top_k"]

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
    batch_users: int = 512
    seed: int = 0
    weights: np.ndarray = field(default_factory=lambda: _DEFAULT_WEIGHTS.copy())
    timings: dict[str, float] = field(default_factory=dict)
    data: Baskets | None = None

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
        self.timings.update(repeat_s=t1 - t0, cooc_s=t2 - t1, als_s=t3 - t2)

    def fit(self, data: Baskets) -> Blend:
        """Learn the weights on held-out last baskets, then fit every signal on all of ``data``."""
        if data.n_users == 0 or data.n_items == 0:
            raise ModelError("no purchases to learn from: load `Order Completed` events with products first")
        start = time.perf_counter()
        if self.learn_weights:
            self._learn_weights(data)
        self._fit_signals(data)
        self.data = data
        self.timings["fit_s"] = time.perf_counter() - start
        return self

    def _learn_weights(self, data: Baskets) -> None:
        rng = np.random.default_rng(self.seed)
        eligible = np.flatnonzero(data.n_baskets >= 2)
        if len(eligible) < 20:
            return  # too little history to learn from: keep the default weights
        users = rng.choice(eligible, size=min(self.validation_users, len(eligible)), replace=False)
        users.sort()
        rest, held = split_last_basket(data, users)
        self._fit_signals(rest)
        truth = set((data.user[held].astype(np.int64) * data.n_items + data.item[held]).tolist())
        xs, ys = [], []
        for lo in range(0, len(users), self.batch_users):
            batch = users[lo : lo + self.batch_users]
            feats = self.features(batch)
            cand = feats[1] > 0  # everything the customer owns, plus each signal's top items
            for j in (5, 6, 7):
                idx, _ = top_k(feats[j], self.candidates_per_signal)
                np.put_along_axis(cand, idx, True, axis=1)
            rows, cols = np.nonzero(cand)
            xs.append(feats[:, rows, cols].T)
            keys = batch[rows].astype(np.int64) * data.n_items + cols
            ys.append(np.fromiter((k in truth for k in keys.tolist()), dtype=np.float64, count=len(keys)))
        x, y = np.concatenate(xs), np.concatenate(ys)
        if 0 < y.sum() < len(y):
            self.weights = _fit_logistic(x, y)

    def features(self, users: np.ndarray) -> np.ndarray:
        """Array ``(len(FEATURES), len(users), n_items)`` of each signal, scaled to about [0, 1]."""
        r = self.repeat.score(users)
        owned = (r > 0).astype(np.float32)
        freq = _rows(self.repeat.frequency, users)
        rec = _rows(self.repeat.recency, users)
        item_rep = owned * self.repeat.item_repeat_rate
        c = self.cooc.score(users, self.repeat.matrix)
        c /= c.max(axis=1, keepdims=True) + 1e-9
        a = self.als.score(users) if self.als is not None else np.zeros_like(r)
        pop = np.log1p(self.popularity.buyers) / np.log1p(max(self.popularity.buyers.max(), 1))
        p = np.broadcast_to(pop.astype(np.float32), r.shape)
        return np.stack([r, owned, freq, rec, item_rep, c, a, p])

    def score(self, users: np.ndarray) -> np.ndarray:
        """Logit of P(item in the customer's next basket), ``len(users) x n_items``."""
        feats = self.features(users)
        return self.weights[0] + np.tensordot(self.weights[1:], feats, axes=1)

    def recommend(
        self, users: np.ndarray, k: int = 10, *, exclude_owned: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item codes and scores per customer code (-1: a new customer)."""
        out_i = np.zeros((len(users), k), dtype=np.int64)
        out_s = np.zeros((len(users), k), dtype=np.float64)
        for lo in range(0, len(users), self.batch_users):
            batch = np.asarray(users[lo : lo + self.batch_users])
            s = self.score(batch)
            if exclude_owned:
                s[self.repeat.score(batch) > 0] = -np.inf
            idx, sc = top_k(s, k)
            out_i[lo : lo + len(batch)], out_s[lo : lo + len(batch)] = idx, sc
        return out_i, out_s

    def contributions(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Each signal's share of the logit for ``items`` (weight x feature), for explanations."""
        feats = self.features(np.array([user]))[:, 0, items]
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
