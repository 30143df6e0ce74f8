"""Needs: each customer's preference profile from their orders, and needs-based segments.

    >>> build_needs(store, half_life_days=180)  # doctest: +SKIP
    {'customers': 1830, 'k': 3, 'segments': [{'description': 'Kaffee lovers, online, premium', ...}]}

The profile (category shares, price level, channel mix, purchase rhythm) is an Ibis expression
over ``events`` and ``order_lines``, so it runs in the engine and on Spark alike; each order
weighs 0.5^(age / half-life), so recent behaviour counts more.  The price level compares what a
customer pays per unit in a category with what the typical customer of that category pays (the
median over customers, so a big premium group cannot make itself the norm).  Segments are
k-means clusters of the standardised profile (see ``_segments``), each described in words by
what sets it apart.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import numpy.typing as npt

from xrm.differentiate._needs_state import write_model, write_state
from xrm.differentiate._segments import cluster, standardise
from xrm.differentiate._summary import order_events
from xrm.exceptions import InputError
from xrm.store import Store

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

__all__ = [
    "MAX_CATEGORIES", "assign_segments", "build_needs", "derive_profiles", "describe_segment",
    "needs_profiles", "profile_end", "profile_rows", "profile_sums", "segment_report",
]

MAX_CATEGORIES = 12  # the biggest categories get a feature each; the rest count as "other"
_ONLINE = ("online", "web", "app", "mobile", "ecommerce")
NO_ORDERS = "no orders in the store: load `Order Completed` events before building needs profiles"


def _orders(
    store: Store | Any, customer_key: str, end: dt.datetime, half_life_days: float, events_table: str,
    received: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
) -> ir.Table:
    o = order_events(store.table(events_table))
    if customer_key not in o.columns:
        raise InputError(
            f"customer_key {customer_key!r} is not a column of events; existing: {', '.join(o.columns)}"
        )
    after, upto = received  # the incremental update's window of arrival (received_at)
    if after is not None:
        o = o.filter(o.received_at > after)
    if upto is not None:
        o = o.filter(o.received_at <= upto)
    # JSON columns arrive as strings from Parquet on Spark: the cast makes both engines read JSON,
    # and the value is taken as text without quotes (Ibis's JSON unwrap is a Python UDF on Spark).
    channel = (
        o.properties.cast("json")["channel"].cast("string").re_replace(r'^"|"$', "").nullif("null").lower()
    )
    age_days = (ibis.literal(end).epoch_seconds() - o.ts.epoch_seconds()).cast("float64") / 86400.0
    o = o.select(
        customer_id=o[customer_key].cast("string"),
        message_id=o.message_id,
        day=(o.ts.epoch_seconds() // 86400).cast("int64"),
        revenue=o.revenue.cast("float64").fill_null(0.0),
        known=channel.notnull(),
        online=channel.isin(_ONLINE).fill_null(False).cast("float64"),
        app=o.context.cast("json")["app"].notnull().cast("float64"),
        w=(age_days.clip(lower=0.0) * (-math.log(2) / half_life_days)).exp(),
    )
    return o.filter(o.customer_id.notnull())


def profile_end(last: dt.datetime) -> dt.datetime:
    """The reference time of the decayed weights: midnight after the newest order."""
    return dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time())


def profile_sums(
    store: Store | Any,
    *,
    end: dt.datetime,
    half_life_days: float,
    customer_key: str = "user_id",
    events_table: str = "events",
    received: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
    with_days: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sufficient statistics of the profile, aggregated in the engine: per customer (orders,
    spend, decayed weight sums ``wsum``/``w_online``/``w_app``, purchase days) and per customer and
    category (decayed spend ``wspend``, undecayed ``paid`` and ``qty``).  Weights are relative to
    ``end``.  Every decayed sum composes: at a later time it is the old sum times
    0.5^(elapsed / half-life), plus the new orders' weights, which is how ``update_needs`` works.
    ``with_days`` adds each customer's distinct purchase days (a list), for that update."""
    o = _orders(store, customer_key, end, half_life_days, events_table, received)
    extra = {"day_list": o.day.collect(distinct=True)} if with_days else {}
    per = o.group_by("customer_id").aggregate(
        orders=o.count(),
        spend=o.revenue.sum(),
        wsum=o.w.sum(),
        w_online=(o.w * o.online).sum(),
        w_app=(o.w * o.app).sum(),
        known=o.known.any(),
        days=o.day.nunique(),
        first_day=o.day.min(),
        **extra,
    )
    lines = store.table("order_lines")
    ln = lines.join(o, "message_id")
    qty = ln.quantity.cast("float64").fill_null(1.0)
    ln = ln.select(
        customer_id=ln.customer_id,
        category=ln.category.fill_null("(none)"),
        w=ln.w,
        paid=ln.price.cast("float64") * qty,
        qty=qty,
    )
    ln = ln.filter(ln.paid.notnull() & (ln.paid > 0) & (ln.qty > 0))
    cc = ln.group_by(["customer_id", "category"]).aggregate(
        wspend=(ln.w * ln.paid).sum(), paid=ln.paid.sum(), qty=ln.qty.sum()
    )
    p = per.to_pyarrow().to_pandas().set_index("customer_id").sort_index()
    return p, cc.to_pyarrow().to_pandas()


def derive_profiles(
    per: pd.DataFrame,
    cc: pd.DataFrame,
    end: dt.datetime,
    *,
    categories: list[str] | None = None,
    references: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, list[str], dict[str, float]]:
    """The profile from :func:`profile_sums`: orders, spend, decayed category shares, price index,
    channel mix, rhythm.  Returns the frame, the category feature names and the reference price
    per category (the median over customers of what each pays per unit).

    ``categories`` and ``references`` default to what these data say (the batch build); an
    incremental update passes the ones of the last full build, so that profiles stay comparable
    with its segments.  A category without a reference counts at the typical price (ratio 1).
    """
    import pandas as pd

    end_day = (end.date() - dt.date(1970, 1, 1)).days
    p = per
    out = pd.DataFrame(index=p.index)
    out["orders"] = p["orders"].astype("int64")
    out["spend"] = p["spend"].astype("float64")
    out["online_share"] = (p["w_online"] / p["wsum"]).fillna(0.0)
    out["app_share"] = (p["w_app"] / p["wsum"]).fillna(0.0)
    tenure_months = ((end_day - p["first_day"]) / (365.25 / 12)).clip(lower=1.0)
    out["purchases_per_month"] = p["days"] / tenure_months

    c = cc[cc["customer_id"].isin(p.index)].copy() if len(cc) else cc
    if references is None:
        c["unit"] = c["paid"] / c["qty"]
        references = {str(k): float(v) for k, v in c.groupby("category")["unit"].median().items()}
    if len(c) and (categories is None or categories):
        c["unit"] = c["paid"] / c["qty"]
        ref = c["category"].map(references).astype("float64")
        c["ratio"] = (c["unit"] / ref).where(ref.notna(), 1.0)
        if categories is None:
            totals = c.groupby("category")["wspend"].sum().sort_values(ascending=False)
            big = list(totals.index[:MAX_CATEGORIES])
        else:
            big = [x for x in categories if x != "other"]
        c["feature"] = c["category"].where(c["category"].isin(big), "other")
        shares = c.pivot_table(index="customer_id", columns="feature", values="wspend", aggfunc="sum")
        if categories is not None:
            shares = shares.reindex(columns=categories)
        shares = shares.reindex(out.index).fillna(0.0)
        row_total = shares.sum(axis=1)
        shares = shares.div(row_total.where(row_total > 0, 1.0), axis=0)
        c["wr"] = c["wspend"] * c["ratio"]
        g = c.groupby("customer_id")[["wr", "wspend"]].sum()
        price = (g["wr"] / g["wspend"]).reindex(out.index)
        out["price_index"] = price.fillna(1.0)  # no priced lines: the typical price
        categories = [str(col) for col in shares.columns]
        for col in shares.columns:
            out[f"cat:{col}"] = shares[col]
        has_lines = row_total > 0
        top = shares.idxmax(axis=1).astype(str) if len(shares.columns) else pd.Series("(none)", out.index)
        out["top_category"] = top.where(has_lines, "(none)")
    else:
        categories = list(categories or [])
        for col in categories:
            out[f"cat:{col}"] = 0.0
        out["price_index"] = 1.0
        out["top_category"] = "(none)"
    return out, categories, references


def needs_profiles(
    store: Store | Any,
    *,
    half_life_days: float = 180.0,
    customer_key: str = "user_id",
    events_table: str = "events",
) -> tuple[pd.DataFrame, list[str], bool]:
    """Per customer: orders, spend, decayed category shares, price index, channel mix, rhythm.

    Returns the frame, the category feature names and whether any order said its channel.
    """
    if not half_life_days > 0:
        raise InputError(f"half_life_days = {half_life_days!r} must be > 0 days")
    # Ibis, not store SQL: ``store`` may be any engine with ``table()`` (a BatchEngine on Spark).
    last = order_events(store.table(events_table)).ts.max().to_pyarrow().as_py()
    import pandas as pd

    if last is None:
        return pd.DataFrame(), [], False
    end = profile_end(last)
    per, cc = profile_sums(store, end=end, half_life_days=half_life_days, customer_key=customer_key,
                           events_table=events_table)
    out, categories, _ = derive_profiles(per, cc, end)
    return out, categories, bool(per["known"].any())


def _feature_matrix(profiles: pd.DataFrame, categories: list[str]) -> tuple[np.ndarray, list[str]]:
    names = [f"cat:{c}" for c in categories]
    names += ["price_index", "online_share", "app_share", "purchases_per_month"]
    x = profiles[names].to_numpy(dtype=np.float64).copy()
    # Logs for the ratio and the rate: their spread is multiplicative.
    x[:, len(categories)] = np.log(np.clip(x[:, len(categories)], 1e-3, None))
    x[:, -1] = np.log1p(x[:, -1])
    return x, names


def describe_segment(
    members: pd.DataFrame, population: pd.DataFrame, categories: list[str], known_channel: bool
) -> str:
    """Words for what sets a segment apart: favourite category, channel, price level, rhythm."""
    words: list[str] = []
    if categories:
        means = {c: float(members[f"cat:{c}"].mean()) for c in categories}
        best = max(means, key=lambda c: means[c])
        base = float(population[f"cat:{best}"].mean())
        loves = means[best] >= 0.4 and means[best] >= 1.2 * base
        words.append(f"{best} lovers" if loves else "mixed baskets")
    if known_channel:
        online, app = float(members["online_share"].mean()), float(members["app_share"].mean())
        if online >= 0.6:
            words.append("app" if app >= 0.5 * online else "online")
        elif online <= 0.4:
            words.append("in store")
        else:
            words.append("online and in store")
    if categories:
        price = float(np.exp(np.log(members["price_index"].clip(lower=1e-3)).mean()))
        words.append("premium" if price >= 1.1 else "budget" if price <= 0.9 else "mid-price")
    rate = float(members["purchases_per_month"].median())
    typical = float(population["purchases_per_month"].median())
    pace = "frequent" if rate >= 1.5 * typical else "occasional" if rate <= typical / 1.5 else "regular"
    words.append(pace)
    return ", ".join(words)


def build_needs(
    store: Store,
    *,
    half_life_days: float = 180.0,
    k: int | None = None,
    k_max: int = 6,
    seed: int = 0,
    customer_key: str = "user_id",
    events_table: str = "events",
) -> dict[str, Any]:
    """Rebuild ``customer_needs`` and ``needs_segments``; returns the segments with their words.

    ``k=None`` picks the number of segments (2..``k_max``) by silhouette.  A store without orders
    returns ``{"customers": 0, "skipped": <why>}``.
    """
    if not half_life_days > 0:
        raise InputError(f"half_life_days = {half_life_days!r} must be > 0 days")
    orders = order_events(store.table(events_table))
    # Orders received up to now are in; an incremental update takes those received later.
    watermark = orders.received_at.max().to_pyarrow().as_py()
    last = orders.filter(orders.received_at <= watermark).ts.max().to_pyarrow().as_py() if watermark else None
    per, cc = (profile_sums(store, end=profile_end(last), half_life_days=half_life_days,
                            customer_key=customer_key, events_table=events_table,
                            received=(None, watermark), with_days=True)
               if last is not None else (None, None))
    if last is None or per is None or cc is None or per.empty:
        with store.transaction() as tx:
            for table in ("customer_needs", "needs_segments", "needs_state", "needs_state_categories",
                          "needs_model"):
                tx.execute(f"DELETE FROM {table}")
        return {"customers": 0, "skipped": NO_ORDERS}
    end = profile_end(last)
    profiles, categories, references = derive_profiles(per, cc, end)
    known_channel = bool(per["known"].any())
    x, names = _feature_matrix(profiles, categories)
    z, kept = standardise(x)
    # Without order lines or channels the only feature left is the purchase rhythm: that is value
    # (frequency), not needs, so everyone stays in one segment and the summary says why.
    needs_known = bool(categories) or known_channel
    result = cluster(z, k=k if needs_known else 1, k_max=k_max, seed=seed)
    # Number segments by size, largest first, so ids are stable when the data barely change.
    sizes = np.bincount(result.labels, minlength=result.k)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    labels = relabel[result.labels]
    profiles["segment_id"] = labels
    computed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    segments: list[dict[str, Any]] = []
    for s in range(result.k):
        members = profiles[labels == s]
        if not len(members):
            continue
        centroid = {n: float(members[n].mean()) for n in names}
        segments.append({
            "segment_id": s,
            "description": describe_segment(members, profiles, categories, known_channel),
            "customers": len(members),
            "centroid": centroid,
        })
    seen: dict[str, int] = {}
    for seg in segments:  # two segments the words cannot tell apart get a number
        seen[seg["description"]] = seen.get(seg["description"], 0) + 1
        if seen[seg["description"]] > 1:
            seg["description"] += f" ({seen[seg['description']]})"
    spec = {
        "categories": categories, "references": references, "known_channel": known_channel,
        "names": names, "mean": x.mean(axis=0).tolist(), "std": x.std(axis=0).tolist(),
        "kept": kept.tolist(), "centers": result.centers[order].tolist(),
    }
    model = {"half_life_days": half_life_days, "customer_key": customer_key, "events_table": events_table,
             "watermark": watermark, "end_ts": end, "spec": spec}
    _write(store, profiles, categories, segments, result.k, result.silhouette, computed_at,
           state=(per, cc, end, model))
    return {
        "customers": len(profiles),
        "k": result.k,
        "silhouette": result.silhouette,
        "silhouette_by_k": result.scores,
        "features": [n for n, keep in zip(names, kept, strict=True) if keep],
        "channel_known": known_channel,
        **({} if needs_known else {"note": "no order lines (categories, prices) and no channels in "
                                   "the orders: needs cannot be told apart, so there is one segment"}),
        "segments": [{k_: v for k_, v in s.items() if k_ != "centroid"} for s in segments],
    }


def assign_segments(profiles: pd.DataFrame, spec: dict[str, Any]) -> npt.NDArray[np.int64]:
    """Each profile's segment: the nearest centre of the stored segmentation, in its standardised
    space (the assignment k-means itself makes), so an update needs no re-clustering."""
    x, _ = _feature_matrix(profiles, spec["categories"])
    kept = np.asarray(spec["kept"], dtype=bool)
    centers = np.asarray(spec["centers"], dtype=np.float64).reshape(-1, int(kept.sum()))
    if len(centers) <= 1 or not len(x):
        return np.zeros(len(x), dtype=np.int64)
    mean, std = np.asarray(spec["mean"])[kept], np.asarray(spec["std"])[kept]
    z = (x[:, kept] - mean) / std
    dist = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(dist.argmin(axis=1), dtype=np.int64)


def profile_rows(profiles: pd.DataFrame, categories: list[str], computed_at: dt.datetime) -> Any:
    """``customer_needs`` rows (an Arrow table) of ``profiles`` with their ``segment_id``."""
    import pyarrow as pa

    share_cols = [f"cat:{c}" for c in categories]
    shares: npt.NDArray[np.float64] = profiles[share_cols].to_numpy(dtype=np.float64).reshape(
        len(profiles), len(share_cols)
    )
    shares_json = [
        json.dumps({c: round(float(v), 6) for c, v in zip(categories, row, strict=True) if v > 0})
        for row in shares
    ]
    n = len(profiles)
    rows = pa.table({
        "customer_id": pa.array(profiles.index.astype(str), pa.string()),
        "orders": pa.array(profiles["orders"].to_numpy(), pa.int64()),
        "spend": profiles["spend"].to_numpy(dtype=np.float64),
        "top_category": pa.array(profiles["top_category"].astype(str).to_numpy(), pa.string()),
        "category_shares": pa.array(shares_json, pa.string()),
        "price_index": profiles["price_index"].to_numpy(dtype=np.float64),
        "online_share": profiles["online_share"].to_numpy(dtype=np.float64),
        "app_share": profiles["app_share"].to_numpy(dtype=np.float64),
        "purchases_per_month": profiles["purchases_per_month"].to_numpy(dtype=np.float64),
        "segment_id": pa.array(profiles["segment_id"].to_numpy(), pa.int32()),
        "computed_at": pa.array([computed_at] * n, pa.timestamp("us")),
    })
    return rows


def _write(
    store: Store, profiles: pd.DataFrame, categories: list[str], segments: list[dict[str, Any]],
    k: int, silhouette: float, computed_at: dt.datetime,
    state: tuple[pd.DataFrame, pd.DataFrame, dt.datetime, dict[str, Any]],
) -> None:
    rows = profile_rows(profiles, categories, computed_at)
    cols = ", ".join(rows.column_names)
    seg_rows = [
        (s["segment_id"], s["description"], s["customers"], json.dumps(s["centroid"]), k, silhouette,
         computed_at)
        for s in segments
    ]
    per, cc, end, model = state
    with store.transaction() as tx:
        tx.register("new_needs", rows)
        tx.execute("DELETE FROM customer_needs")
        tx.execute(f"INSERT INTO customer_needs ({cols}) SELECT {cols} FROM new_needs")
        tx.execute("DELETE FROM needs_segments")
        tx.executemany("INSERT INTO needs_segments VALUES (?, ?, ?, ?, ?, ?, ?)", seg_rows)
        tx.unregister("new_needs")
        write_state(tx, per, cc, end, replace_all=True)
        write_model(tx, {**model, "built_at": computed_at}, computed_at)


def segment_report(store: Store) -> list[dict[str, Any]]:
    """Each needs segment: words, size, share of customers, share of CLV and of historic spend."""
    rows = store.sql(
        """
        WITH v AS (
            SELECT n.segment_id, greatest(coalesce(cv.clv, 0), 0) AS clv, n.spend
            FROM customer_needs n LEFT JOIN customer_value cv USING (customer_id)
        ), t AS (SELECT sum(clv) AS clv, sum(greatest(spend, 0)) AS spend, count(*) AS n FROM v)
        SELECT s.segment_id, s.description, s.customers,
               s.customers / t.n AS customer_share,
               coalesce(sum(v.clv) / nullif(t.clv, 0), 0) AS clv_share,
               coalesce(sum(greatest(v.spend, 0)) / nullif(t.spend, 0), 0) AS spend_share
        FROM needs_segments s CROSS JOIN t LEFT JOIN v USING (segment_id)
        GROUP BY s.segment_id, s.description, s.customers, t.n, t.clv, t.spend
        ORDER BY s.segment_id
        """
    ).fetchall()
    cols = ["segment_id", "description", "customers", "customer_share", "clv_share", "spend_share"]
    return [dict(zip(cols, r, strict=True)) for r in rows]
