"""Batch step: fit the blend on the store's purchases, write recommendations and purchase cycles.

    >>> build_recommendations(store)          # doctest: +SKIP
    {'customers': 1200, 'products': 340, 'recommendations': 24000, ...}
    >>> recommend_for(store, "u-17", k=5)     # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from xrm.customize._baskets import Baskets, read_purchases
from xrm.customize._blend import Blend, segment_top
from xrm.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_recommendations", "rank_recommendations", "recommend_for", "span_words"]


def span_words(days: float) -> str:
    """'3 days', '5 weeks', '4 months': a duration as a person would say it."""
    days = max(float(days), 0.0)
    if days < 14:
        n, unit = round(days), "day"
    elif days < 120:
        n, unit = round(days / 7), "week"
    else:
        n, unit = round(days / 30.4), "month"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def repeat_words(name: str, n_orders: int, interval_days: float | None, since_days: float) -> str:
    """'bought espresso beans every 5 weeks, last 6 weeks ago'."""
    if n_orders >= 2 and interval_days is not None and interval_days < 0.5:
        # Repeats on one day (two orders in an hour) have no cycle to speak of.
        return f"bought {name} {n_orders}×, last {span_words(since_days)} ago"
    if n_orders >= 2 and interval_days is not None:
        return f"bought {name} every {span_words(interval_days)}, last {span_words(since_days)} ago"
    return f"bought {name} once, {span_words(since_days)} ago"


def build_recommendations(
    store: Store,
    *,
    customer_key: str = "user_id",
    events_table: str = "events",
    k: int = 20,
    blend: Blend | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Fit the blend on all purchases and replace the ``recommendations`` and ``purchase_cycles``.

    ``progress``: a Rich progress bar on stderr; by default only for 100k+ customers on a terminal.
    """
    start = time.perf_counter()
    frame = read_purchases(store, customer_key=customer_key, events_table=events_table)
    if frame.empty:
        return {"customers": 0, "products": 0, "recommendations": 0, "purchase_cycles": 0,
                "note": "no `Order Completed` events with products in the store yet"}
    bar = _Bar.open(progress, frame["customer"].nunique())
    ranked = _Ranking.fit(frame, k=k, blend=blend, bar=bar)
    del frame
    n_recs = 0
    with store.transaction() as tx:
        tx.execute("DELETE FROM recommendations")
        tx.execute("DELETE FROM purchase_cycles")
        # A chunk of customers at a time: the whole table as Python objects (20M rows at 1M
        # customers) would hold several GB for the length of the insert.
        for recs in ranked.chunks():
            tx.register("_recs", recs)
            tx.execute("INSERT INTO recommendations (customer, product_id, rank, score, repeat_score, "
                       "cooc_score, als_score, popularity, reason) SELECT * FROM _recs")
            tx.unregister("_recs")
            n_recs += len(recs)
            bar.advance("ranking", len(recs) // max(ranked.k, 1))
        tx.register("_cycles", ranked.cycles)
        tx.execute("INSERT INTO purchase_cycles (customer, product_id, product_name, n_orders, first_ts, "
                   "last_ts, mean_interval_days) SELECT customer, product_id, product_name, n_orders, "
                   "first_ts, last_ts, mean_interval_days FROM _cycles")
        tx.unregister("_cycles")
    bar.close()
    return {
        **ranked.described,
        "recommendations": n_recs,
        "purchase_cycles": len(ranked.cycles),
        "seconds": round(time.perf_counter() - start, 3),
    }


def rank_recommendations(
    frame: pd.DataFrame, *, k: int = 20, blend: Blend | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Fit the blend on a purchase frame (:func:`read_purchases`' columns) and rank ``k`` products
    per customer; returns the recommendations, the purchase cycles and the model's description.

    The frame may come from any engine (an Ibis expression collected); the fit runs here in NumPy.
    """
    import pandas as pd

    ranked = _Ranking.fit(frame, k=k, blend=blend)
    chunks = list(ranked.chunks())
    recs = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(RECS_COLUMNS))
    return recs, ranked.cycles, ranked.described


RECS_COLUMNS = ("customer", "product_id", "rank", "score", "repeat_score", "cooc_score", "als_score",
                "popularity", "reason")


class _Ranking:
    """A fitted blend and what its reasons need: ranks customers a chunk at a time, all in NumPy.

    The ranking used to loop over every customer and every recommendation in Python (a reason,
    an argmax and a tuple per row: 2M rows at 100k customers, most of the step's time, issue 9);
    each reason kind is now filled for all rows of a chunk at once, with the same words.
    """

    def __init__(self, data: Baskets, model: Blend, names: dict[str, Any], k: int) -> None:
        import pandas as pd

        self.data, self.model, self.k = data, model, min(k, data.n_items)
        rep = model.repeat
        self.now = float(data.last_t.max())
        self.customer_str = pd.Series(data.customers, dtype=object).astype(str).to_numpy(dtype=object)
        self.item_str = pd.Series(data.items, dtype=object).astype(str).to_numpy(dtype=object)
        # What a reason calls the product: its name, else its key.
        self.item_name = np.array(
            [str(names.get(p) or raw) for p, raw in zip(self.item_str, data.items, strict=True)], dtype=object
        )
        self.popular_text = np.array(
            [f"{n} is popular: bought by {s:.0%} of customers"
             for n, s in zip(self.item_name, model.popularity.share, strict=True)], dtype=object)
        self.baskets_text = np.array(
            [f"customers with baskets like this one buy {n}" for n in self.item_name], dtype=object)
        # Cycles come out of RepeatPurchase.fit sorted by (customer, item): looked up by search.
        self.cycle_key = rep.cycle_user.astype(np.int64) * data.n_items + rep.cycle_item
        self.cycles = pd.DataFrame({
            "customer": self.customer_str[rep.cycle_user],
            "product_id": self.item_str[rep.cycle_item],
            "n_orders": rep.cycle_n.astype(np.int32),
            "first_ts": pd.to_datetime(rep.cycle_first * 86_400, unit="s"),
            "last_ts": pd.to_datetime(rep.cycle_last * 86_400, unit="s"),
            "mean_interval_days": np.where(
                rep.cycle_n >= 2, (rep.cycle_last - rep.cycle_first) / np.maximum(rep.cycle_n - 1, 1), np.nan
            ),
        })
        self.cycles["product_name"] = [names.get(p) for p in self.cycles["product_id"]]
        self.described = {"customers": data.n_users, "products": data.n_items, **model.describe()}

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, k: int, blend: Blend | None, bar: _Bar | None = None) -> _Ranking:
        bar = bar or _Bar(None)
        names: dict[str, Any] = {
            str(key): v for key, v in frame.drop_duplicates("item").set_index("item")["name"].items()
        }
        data = Baskets.from_frame(frame)
        model = blend or Blend(learn_weights=data.n_users >= 50)
        if model.als is not None and data.n_users < 10:
            model.als = None  # a latent-factor model needs more than a handful of customers
        bar.stage("fitting the blend", None)
        model.fit(data)
        bar.stage("ALS candidates", data.n_users)
        model.index(lambda done: bar.update("ALS candidates", done))
        bar.stage("ranking", data.n_users)
        return cls(data, model, names, k)

    def chunks(self, customers_per_chunk: int = 50_000) -> Iterator[pd.DataFrame]:
        """The recommendations, ``customers_per_chunk`` customers (times ``k`` rows) at a time."""
        batch = self.model.batch_users
        step = max(batch, customers_per_chunk // batch * batch)
        for lo in range(0, self.data.n_users, step):
            yield self._chunk(lo, min(lo + step, self.data.n_users))

    def _chunk(self, lo: int, hi: int) -> pd.DataFrame:
        import pandas as pd

        model, kk = self.model, self.k
        users_l, items_l, logits_l, f_l, signal_l = [], [], [], [], []
        for b in range(lo, hi, model.batch_users):
            users = np.arange(b, min(b + model.batch_users, hi))
            rows, cols, pair_f = model.candidate_features(users, per_user=kk)
            pos, sc = segment_top(rows, model.logits(pair_f), len(users), kk)
            idx = cols[pos]  # every customer has at least kk candidates (popularity's)
            f = pair_f[:, pos]  # (features, users, kk)
            parts = model.weights[1:, None, None] * f
            # Which signal carried each recommendation: the repeat family, co-occurrence, ALS, popularity.
            carried = np.stack([parts[:5].sum(axis=0), parts[5], parts[6], parts[7]])
            signal_l.append(np.argmax(carried, axis=0))
            users_l.append(np.repeat(users, kk))
            items_l.append(idx)
            logits_l.append(sc)
            f_l.append(f[[0, 5, 6]])
        user = np.concatenate(users_l)
        item = np.concatenate([x.ravel() for x in items_l])
        logit = np.concatenate([x.ravel() for x in logits_l])
        f = np.concatenate([x.reshape(3, -1) for x in f_l], axis=1)
        signal = np.concatenate([x.ravel() for x in signal_l])
        return pd.DataFrame({
            "customer": self.customer_str[user],
            "product_id": self.item_str[item],
            "rank": np.tile(np.arange(1, kk + 1, dtype=np.int64), len(user) // kk),
            "score": 1 / (1 + np.exp(-logit)),
            "repeat_score": f[0].astype(np.float64),
            "cooc_score": f[1].astype(np.float64),
            "als_score": f[2].astype(np.float64),
            "popularity": self.model.popularity.share[item].astype(np.float64),
            "reason": self._reasons(user, item, signal),
        })

    def _reasons(self, user: np.ndarray, item: np.ndarray, signal: np.ndarray) -> np.ndarray:
        """Each row's reason, by the signal that carried it (see :func:`_reason_words`' rules)."""
        out = self.popular_text[item]
        key = user.astype(np.int64) * self.data.n_items + item
        pos = np.minimum(np.searchsorted(self.cycle_key, key), max(len(self.cycle_key) - 1, 0))
        bought = (self.cycle_key[pos] == key) if len(self.cycle_key) else np.zeros(len(key), dtype=bool)
        rows = np.flatnonzero((signal == 0) & bought)
        if len(rows):
            out[rows] = self._repeat_words(item[rows], pos[rows])
        rows = np.flatnonzero(signal == 1)
        if len(rows):
            src = self._strongest_sources(user[rows], item[rows])
            has = src >= 0
            rows, src = rows[has], src[has]
            out[rows] = ("customers who bought " + _str(self.item_name[src]) + " often buy "
                         + _str(self.item_name[item[rows]]) + " next")
        rows = np.flatnonzero(signal == 2)
        out[rows] = self.baskets_text[item[rows]]
        return out

    def _repeat_words(self, item: np.ndarray, cycle: np.ndarray) -> np.ndarray:
        """:func:`repeat_words` for many rows at once."""
        rep = self.model.repeat
        n = rep.cycle_n[cycle].astype(np.int64)
        first, last = rep.cycle_first[cycle], rep.cycle_last[cycle]
        several = n >= 2
        interval = np.where(several, (last - first) / np.maximum(n - 1, 1), 0.0)
        since = _span_words(self.now - last)
        name = _str(self.item_name[item])
        same_day = several & (interval < 0.5)
        cyclic = several & ~same_day
        out = ("bought " + name + " once, " + since + " ago")
        if same_day.any():
            out[same_day] = ("bought " + name[same_day] + " " + _str(n[same_day]) + "×, last "
                             + since[same_day] + " ago")
        if cyclic.any():
            out[cyclic] = ("bought " + name[cyclic] + " every " + _span_words(interval[cyclic]) + ", last "
                           + since[cyclic] + " ago")
        return out

    def _strongest_sources(self, user: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Per (customer, target item): the bought item that contributes most to the target's
        co-occurrence score (first in the customer's history on a tie); -1 without history."""
        w = self.model.repeat.matrix
        start, stop = w.indptr[user], w.indptr[user + 1]
        length = (stop - start).astype(np.int64)
        pair = np.repeat(np.arange(len(user)), length)
        offset = np.arange(len(pair)) - np.repeat(np.cumsum(length) - length, length)
        at = np.repeat(start, length) + offset
        history, weight = w.indices[at], w.data[at]
        value = np.asarray(self.model.cooc.matrix[history, target[pair]]).ravel() * weight
        order = np.lexsort((offset, -value, pair))
        firsts = order[np.r_[True, pair[order][1:] != pair[order][:-1]]] if len(order) else order
        src = np.full(len(user), -1, dtype=np.int64)
        src[pair[firsts]] = history[firsts]
        return src


class _Bar:
    """A Rich progress bar over the build's stages (fit, ALS candidates, ranking), or nothing."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.tasks: dict[str, tuple[Any, int | None]] = {}

    @classmethod
    def open(cls, show: bool | None, n_customers: int) -> _Bar:
        import sys

        if show is None:
            show = n_customers >= 100_000 and sys.stderr.isatty()
        if not show:
            return cls(None)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]recommendations[/] {task.description}"), BarColumn(),
                            MofNCompleteColumn(), "customers", TimeElapsedColumn(),
                            console=Console(stderr=True))
        progress.start()
        return cls(progress)

    def stage(self, name: str, total: int | None) -> None:
        if self.progress is not None:
            for task, n in self.tasks.values():  # the previous stages are done
                self.progress.update(task, total=n or 1, completed=n or 1)
            self.tasks[name] = (self.progress.add_task(name, total=total), total)

    def update(self, name: str, done: int) -> None:
        if self.progress is not None and name in self.tasks:
            self.progress.update(self.tasks[name][0], completed=done)

    def advance(self, name: str, n: int) -> None:
        if self.progress is not None and name in self.tasks:
            self.progress.advance(self.tasks[name][0], n)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _str(values: np.ndarray) -> np.ndarray:
    """``str`` of each value as an object array: NumPy adds object arrays element by element in C."""
    return np.array([str(v) for v in values.tolist()], dtype=object) if values.dtype != object else values


def _span_words(days: np.ndarray) -> np.ndarray:
    """:func:`span_words` for an array of days."""
    d = np.maximum(np.asarray(days, dtype=np.float64), 0.0)
    unit = np.where(d < 14, 0, np.where(d < 120, 1, 2))
    n = np.rint(np.where(unit == 0, d, np.where(unit == 1, d / 7, d / 30.4))).astype(np.int64)
    # Few distinct (n, unit): the words of each are made once.
    code, inverse = np.unique(n * 3 + unit, return_inverse=True)
    words = np.array([f"{c // 3} {('day', 'week', 'month')[c % 3]}{'' if c // 3 == 1 else 's'}"
                      for c in code.tolist()], dtype=object)
    return np.asarray(words[inverse.ravel()], dtype=object)


def recommend_for(store: Store, customer: str, k: int = 10) -> list[dict[str, Any]]:
    """The stored top-``k`` for a customer; a customer without history gets the most popular."""
    cur = store.sql(
        "SELECT product_id, rank, score, reason FROM recommendations WHERE customer = ? "
        "ORDER BY rank LIMIT ?", [customer, k],
    )
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description or ()]
    if rows:
        return [dict(zip(cols, r, strict=True)) for r in rows]
    cur = store.sql(
        """
        SELECT product_id, row_number() OVER (ORDER BY count(DISTINCT customer) DESC, product_id) AS rank,
               count(DISTINCT customer) / (SELECT count(DISTINCT customer) FROM purchase_cycles) AS score,
               'popular: bought by ' || CAST(round(100 * count(DISTINCT customer)
                 / (SELECT count(DISTINCT customer) FROM purchase_cycles)) AS INTEGER)
                 || '% of customers' AS reason
        FROM purchase_cycles GROUP BY product_id ORDER BY rank LIMIT ?
        """, [k],
    )
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in rows]
