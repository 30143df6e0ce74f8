"""Batch step: fit the blend on the store's purchases, write recommendations and purchase cycles.

    >>> build_recommendations(store)          # doctest: +SKIP
    {'customers': 1200, 'products': 340, 'recommendations': 24000, ...}
    >>> recommend_for(store, "u-17", k=5)     # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from xrm.customize._baskets import Baskets, read_purchases
from xrm.customize._blend import Blend, top_k
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
) -> dict[str, Any]:
    """Fit the blend on all purchases and replace the ``recommendations`` and ``purchase_cycles``."""
    start = time.perf_counter()
    frame = read_purchases(store, customer_key=customer_key, events_table=events_table)
    if frame.empty:
        return {"customers": 0, "products": 0, "recommendations": 0, "purchase_cycles": 0,
                "note": "no `Order Completed` events with products in the store yet"}
    recs, cycles, described = rank_recommendations(frame, k=k, blend=blend)
    with store.transaction() as tx:
        tx.execute("DELETE FROM recommendations")
        tx.execute("DELETE FROM purchase_cycles")
        tx.register("_recs", recs)
        tx.execute("INSERT INTO recommendations (customer, product_id, rank, score, repeat_score, "
                   "cooc_score, als_score, popularity, reason) SELECT * FROM _recs")
        tx.register("_cycles", cycles)
        tx.execute("INSERT INTO purchase_cycles (customer, product_id, product_name, n_orders, first_ts, "
                   "last_ts, mean_interval_days) SELECT customer, product_id, product_name, n_orders, "
                   "first_ts, last_ts, mean_interval_days FROM _cycles")
        tx.unregister("_recs")
        tx.unregister("_cycles")
    return {
        **described,
        "recommendations": len(recs),
        "purchase_cycles": len(cycles),
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

    names: dict[str, Any] = {
        str(k): v for k, v in frame.drop_duplicates("item").set_index("item")["name"].items()
    }
    data = Baskets.from_frame(frame)
    model = blend or Blend(learn_weights=data.n_users >= 50)
    if model.als is not None and data.n_users < 10:
        model.als = None  # a latent-factor model needs more than a handful of customers
    model.fit(data)
    now = float(data.last_t.max())
    rep = model.repeat
    cycles = pd.DataFrame({
        "customer": data.customers[rep.cycle_user].astype(str),
        "product_id": data.items[rep.cycle_item].astype(str),
        "n_orders": rep.cycle_n.astype(np.int32),
        "first_ts": pd.to_datetime(rep.cycle_first * 86_400, unit="s"),
        "last_ts": pd.to_datetime(rep.cycle_last * 86_400, unit="s"),
        "mean_interval_days": np.where(
            rep.cycle_n >= 2, (rep.cycle_last - rep.cycle_first) / np.maximum(rep.cycle_n - 1, 1), np.nan
        ),
    })
    cycles["product_name"] = cycles["product_id"].map(lambda p: names.get(p))
    cycle_key = {
        (int(u), int(i)): (int(n), (lst - fst) / (n - 1) if n >= 2 else None, now - lst)
        for u, i, n, fst, lst in zip(rep.cycle_user, rep.cycle_item, rep.cycle_n, rep.cycle_first,
                                     rep.cycle_last, strict=True)
    }
    rows: list[tuple[Any, ...]] = []
    kk = min(k, data.n_items)
    for lo in range(0, data.n_users, model.batch_users):
        users = np.arange(lo, min(lo + model.batch_users, data.n_users))
        feats = model.features(users)
        logits = model.weights[0] + np.tensordot(model.weights[1:], feats, axes=1)
        idx, sc = top_k(logits, kk)
        for row, u in enumerate(users):
            for rank, (item, logit) in enumerate(zip(idx[row], sc[row], strict=True), 1):
                f = feats[:, row, item]
                parts = model.weights[1:] * f
                signal = int(np.argmax([parts[:5].sum(), parts[5], parts[6], parts[7]]))
                reason = _reason(model, data, names, cycle_key, int(u), int(item), signal, f)
                rows.append((
                    str(data.customers[u]), str(data.items[item]), rank, float(1 / (1 + np.exp(-logit))),
                    float(f[0]), float(f[5]), float(f[6]), float(model.popularity.share[item]), reason,
                ))
    recs = pd.DataFrame(rows, columns=["customer", "product_id", "rank", "score", "repeat_score",
                                       "cooc_score", "als_score", "popularity", "reason"])
    return recs, cycles, {"customers": data.n_users, "products": data.n_items, **model.describe()}


def _reason(
    model: Blend, data: Baskets, names: dict[str, Any], cycles: dict[tuple[int, int], Any],
    user: int, item: int, signal: int, f: np.ndarray,
) -> str:
    def name(i: int) -> str:
        return str(names.get(str(data.items[i])) or data.items[i])

    if signal == 0 and (user, item) in cycles:
        n, interval, since = cycles[(user, item)]
        return repeat_words(name(item), n, interval, since)
    if signal == 1:
        row = model.repeat.matrix[user]
        src, _ = model.cooc.strongest_source(row.indices, row.data, item)
        if src >= 0:
            return f"customers who bought {name(src)} often buy {name(item)} next"
    if signal == 2:
        return f"customers with baskets like this one buy {name(item)}"
    return f"{name(item)} is popular: bought by {model.popularity.share[item]:.0%} of customers"


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
