"""Temporal evaluation: train on the past, score the future, never the other way round.

    >>> train, test = temporal_split(frame, how="last_basket")       # doctest: +SKIP
    >>> evaluate(lambda users, k: blend.recommend(users, k)[0], train_data, test, k=10)  # doctest: +SKIP

Metrics at k follow the usual definitions (Järvelin & Kekäläinen 2002 for NDCG with binary gain;
AP normalised by min(|relevant|, k)); catalogue coverage is the share of the training catalogue
that appears in at least one customer's top-k.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from xrm.customize._baskets import Baskets
from xrm.exceptions import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["evaluate", "ranking_metrics", "ranking_metrics_codes", "temporal_split"]


def temporal_split(
    frame: pd.DataFrame, *, how: str = "last_basket", fraction: float = 0.2
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Split each customer's history in time: ``last_basket`` or the last ``fraction`` of events.

    Returns the training rows and, per customer with both a past and a future, the set of items
    of the future.  Customers with a single basket stay wholly in training.
    """
    import pandas as pd

    if how not in ("last_basket", "fraction"):
        raise InputError(f"how = {how!r}: use 'last_basket' or 'fraction'")
    if how == "fraction" and not 0 < fraction < 1:
        raise InputError(f"fraction = {fraction}: must be strictly between 0 and 1 (e.g. 0.2)")
    df = frame.copy()
    btime = df.groupby(["customer", "basket"], sort=False)["ts"].transform("min")
    df["_bt"] = btime
    baskets = df[["customer", "basket", "_bt"]].drop_duplicates(["customer", "basket"])
    baskets = baskets.sort_values(["customer", "_bt", "basket"], kind="stable")
    baskets["_pos"] = baskets.groupby("customer").cumcount()
    baskets["_n"] = baskets.groupby("customer")["basket"].transform("size")
    if how == "last_basket":
        baskets["_test"] = (baskets["_n"] >= 2) & (baskets["_pos"] == baskets["_n"] - 1)
    else:
        # Whole baskets: the last ceil(fraction * n) of them, keeping at least one in training.
        n_test = np.minimum(np.ceil(fraction * baskets["_n"]), baskets["_n"] - 1)
        baskets["_test"] = baskets["_pos"] >= baskets["_n"] - n_test
    df = df.merge(baskets[["customer", "basket", "_test"]], on=["customer", "basket"], how="left")
    test_rows = df[df["_test"]]
    train = df[~df["_test"]].drop(columns=["_bt", "_test"])
    test = {str(c): set(map(str, g)) for c, g in test_rows.groupby("customer")["item"]}
    if not isinstance(train, pd.DataFrame):  # pragma: no cover - for the type checker
        raise TypeError
    return train, test


def ranking_metrics(recommended: list[list[str]], relevant: list[set[str]], k: int) -> dict[str, float]:
    """Mean precision, recall, NDCG and MAP at ``k`` over customers."""
    discounts = 1 / np.log2(np.arange(2, k + 2))
    p = r = n = m = 0.0
    for recs, rel in zip(recommended, relevant, strict=True):
        hits = np.array([item in rel for item in recs[:k]], dtype=float)
        n_hits = hits.sum()
        p += n_hits / k
        r += n_hits / len(rel)
        ideal = discounts[: min(len(rel), k)].sum()
        n += (hits * discounts[: len(hits)]).sum() / ideal
        prec_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        m += (prec_at * hits).sum() / min(len(rel), k)
    count = max(len(recommended), 1)
    return {f"precision@{k}": p / count, f"recall@{k}": r / count, f"ndcg@{k}": n / count,
            f"map@{k}": m / count}


def evaluate(
    recommend: Callable[[np.ndarray, int], np.ndarray],
    train: Baskets,
    test: dict[str, set[str]],
    *,
    k: int = 10,
) -> dict[str, float]:
    """Score ``recommend(user_codes, k) -> item codes`` on the held-out future of each customer."""
    customers = sorted(test)
    codes = train.user_codes(customers)
    items = recommend(codes, k)
    recs = [[str(train.items[i]) for i in row if i >= 0] for row in items]
    result = ranking_metrics(recs, [test[c] for c in customers], k)
    result["coverage"] = len(np.unique(items[items >= 0])) / max(train.n_items, 1)
    result["customers"] = float(len(customers))
    return result


def ranking_metrics_codes(
    recommended: np.ndarray, users: np.ndarray, held_user: np.ndarray, held_item: np.ndarray, n_items: int,
    k: int,
) -> dict[str, float]:
    """:func:`ranking_metrics` on integer codes, without a Python object per customer (a million
    customers): ``recommended`` is ``len(users) x k`` item codes (-1: none), the held-out truth
    the (``held_user``, ``held_item``) pairs; customers without held-out items are skipped."""
    truth = np.sort(held_user.astype(np.int64) * n_items + held_item)
    truth = truth[np.r_[True, truth[1:] != truth[:-1]]] if len(truth) else truth
    n_rel = np.bincount(truth // n_items, minlength=int(users.max(initial=-1)) + 1)[users]
    rated = n_rel > 0
    recs, n_rel = recommended[rated, :k], n_rel[rated]
    keys = users[rated, None].astype(np.int64) * n_items + recs
    pos = np.minimum(np.searchsorted(truth, keys), max(len(truth) - 1, 0))
    hits = ((truth[pos] == keys) & (recs >= 0)).astype(np.float64) if len(truth) else np.zeros(recs.shape)
    discounts = 1 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    prec_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    count = max(int(rated.sum()), 1)
    return {
        f"precision@{k}": float(hits.sum() / k / count),
        f"recall@{k}": float((hits.sum(axis=1) / n_rel).sum() / count),
        f"ndcg@{k}": float(((hits * discounts).sum(axis=1) / ideal).sum() / count),
        f"map@{k}": float(((prec_at * hits).sum(axis=1) / np.minimum(n_rel, k)).sum() / count),
        "customers": float(rated.sum()),
    }
