"""Incremental needs updates: only the customers that new orders touch, without re-clustering.

    >>> update_needs(store)  # doctest: +SKIP
    {'touched': 12, 'new_customers': 2, 'orders': 15, 'watermark': '2026-11-23T01:40:00', ...}

The decayed sums of a profile compose: at a later time ``end'`` each is the stored sum times
0.5^((end' - as_of) / half-life), plus the weights of the orders that arrived since.  So the
update reads the orders received after the stored watermark (``received_at``, so late orders with
old timestamps count too), merges them into their customers' stored statistics, derives those
profiles with the last full build's features and reference prices, and puts each in the nearest
segment centre of that build.  Untouched customers' rows are left as they are: their shares and
price index would not change anyway (a common decay factor cancels in every ratio); their
``purchases_per_month`` stays as of their last update.  A full rebuild (``build_needs``, e.g.
nightly) re-clusters and refreshes everything.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from xrm.differentiate._needs import (
    assign_segments,
    derive_profiles,
    profile_end,
    profile_rows,
    profile_sums,
)
from xrm.differentiate._needs_state import read_model, read_state, write_model, write_state
from xrm.differentiate._summary import order_events
from xrm.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NOT_BUILT", "merge_state", "update_needs"]

NOT_BUILT = "no needs build to update: run `xrm value segments` (build_needs) once first"
_DECAYED = ("wsum", "w_online", "w_app")


def _decay(as_of: Any, end: dt.datetime, half_life_days: float) -> Any:
    """0.5^(elapsed days / half-life) from each ``as_of`` to ``end``."""
    import pandas as pd

    elapsed = (pd.Timestamp(end) - pd.to_datetime(as_of)) / pd.Timedelta(days=1)
    return np.exp(-math.log(2) / half_life_days * np.asarray(elapsed, dtype=np.float64))


def merge_state(
    old: pd.DataFrame, old_cc: pd.DataFrame, new: pd.DataFrame, new_cc: pd.DataFrame,
    end: dt.datetime, half_life_days: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored statistics (decayed to ``end``) plus the new orders' (already relative to ``end``)."""
    import pandas as pd

    factor = pd.Series(_decay(old["as_of"], end, half_life_days), index=old.index, dtype="float64")
    base = old.reindex(new.index)
    seen = base["orders"].notna()
    f = factor.reindex(new.index).fillna(0.0)
    out = pd.DataFrame(index=new.index)
    out["orders"] = new["orders"].astype("int64") + base["orders"].fillna(0).astype("int64")
    out["spend"] = new["spend"] + base["spend"].fillna(0.0)
    for col in _DECAYED:
        out[col] = new[col] + base[col].fillna(0.0) * f
    out["known"] = new["known"].astype(bool) | base["known"].where(seen, False).astype(bool)
    out["day_list"] = [
        sorted(set(map(int, d)) | (set(map(int, b)) if s else set()))
        for d, b, s in zip(new["day_list"], base["day_list"], seen, strict=True)
    ]
    out["days"] = [len(d) for d in out["day_list"]]
    out["first_day"] = [min(d) for d in out["day_list"]]

    keys = ["customer_id", "category"]
    cc_old = old_cc.copy()
    cc_old["wspend"] = cc_old["wspend"] * cc_old["customer_id"].map(factor).to_numpy(dtype=np.float64)
    both = pd.concat([cc_old[[*keys, "wspend", "paid", "qty"]], new_cc[[*keys, "wspend", "paid", "qty"]]])
    cc = both.groupby(keys, as_index=False, sort=True)[["wspend", "paid", "qty"]].sum()
    return out.sort_index(), cc


def update_needs(store: Store) -> dict[str, Any]:
    """Merge orders received since the last build or update into their customers' profiles.

    Returns how many customers were touched (and how many were new), the orders merged and the
    new watermark; ``{"touched": 0, ...}`` when nothing arrived, ``{"skipped": ...}`` when there
    has been no full build yet.
    """
    model = read_model(store)
    if model is None:
        return {"touched": 0, "skipped": NOT_BUILT}
    h, key, table = float(model["half_life_days"]), str(model["customer_key"]), str(model["events_table"])
    orders = order_events(store.table(table))
    old_wm: dt.datetime | None = model["watermark"]
    fresh = orders if old_wm is None else orders.filter(orders.received_at > old_wm)
    stats = fresh.aggregate(wm=fresh.received_at.max(), last=fresh.ts.max(), n=fresh.count()).to_pyarrow()
    new_wm, last, n_orders = (stats[c][0].as_py() for c in ("wm", "last", "n"))
    if not n_orders:
        return {"touched": 0, "new_customers": 0, "orders": 0,
                "watermark": old_wm.isoformat() if old_wm else None}
    end = max(model["end_ts"], profile_end(last))
    new, new_cc = profile_sums(store, end=end, half_life_days=h, customer_key=key, events_table=table,
                               received=(old_wm, new_wm), with_days=True)
    touched = [str(c) for c in new.index]
    old, old_cc = read_state(store, touched)
    per, cc = merge_state(old, old_cc, new, new_cc, end, h)
    spec = model["spec"]
    profiles, _, _ = derive_profiles(per, cc, end, categories=spec["categories"],
                                     references=spec["references"])
    profiles["segment_id"] = assign_segments(profiles, spec)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = profile_rows(profiles, spec["categories"], now)
    cols = ", ".join(rows.column_names)
    with store.transaction() as tx:
        tx.register("updated_needs", rows)
        try:
            tx.execute("DELETE FROM customer_needs WHERE customer_id IN "
                       "(SELECT customer_id FROM updated_needs)")
            tx.execute(f"INSERT INTO customer_needs ({cols}) SELECT {cols} FROM updated_needs")
        finally:
            tx.unregister("updated_needs")
        write_state(tx, per, cc, end, replace_all=False)
        tx.execute("UPDATE needs_segments SET customers = (SELECT count(*) FROM customer_needs n "
                   "WHERE n.segment_id = needs_segments.segment_id)")
        write_model(tx, {**model, "watermark": new_wm, "end_ts": end}, now)
    return {
        "touched": len(touched), "new_customers": int(len(touched) - len(old)), "orders": int(n_orders),
        "watermark": new_wm.isoformat(), "as_of": end.isoformat(),
    }
