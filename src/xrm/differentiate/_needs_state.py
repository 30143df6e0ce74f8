"""The stored state of the needs profiles, for incremental updates (tables ``needs_state``,
``needs_state_categories`` and ``needs_model``; see ``_schema`` migration 5).

A full build (``build_needs``) writes every customer's sufficient statistics and the frozen parts
of the segmentation; ``update_needs`` reads back only the customers that new orders touch, merges
their new orders in and writes those rows again.  Nothing here computes a profile: it moves
frames in and out of the store.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from xrm.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NeedsModel", "read_model", "read_state", "write_model", "write_state"]

STATE_COLUMNS = ("orders", "spend", "wsum", "w_online", "w_app", "known", "day_list", "first_day")
CATEGORY_COLUMNS = ("customer_id", "category", "wspend", "paid", "qty")


class NeedsModel(dict[str, Any]):
    """The ``needs_model`` row: half_life_days, customer_key, events_table, watermark, end_ts,
    spec (categories, references, known_channel, mean, std, kept, centers), built_at."""


def read_model(store: Store) -> NeedsModel | None:
    row = store.sql(
        "SELECT half_life_days, customer_key, events_table, watermark, end_ts, spec, built_at "
        "FROM needs_model WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    keys = ("half_life_days", "customer_key", "events_table", "watermark", "end_ts", "spec", "built_at")
    model = NeedsModel(zip(keys, row, strict=True))
    model["spec"] = json.loads(model["spec"])
    return model


def write_model(tx: Any, model: dict[str, Any], now: dt.datetime) -> None:
    """Insert or replace the one ``needs_model`` row (inside the caller's transaction)."""
    tx.execute("DELETE FROM needs_model")
    tx.execute(
        "INSERT INTO needs_model VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
        [model["half_life_days"], model["customer_key"], model["events_table"], model["watermark"],
         model["end_ts"], json.dumps(model["spec"]), model.get("built_at") or now, now],
    )


def read_state(store: Store, customers: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored statistics of ``customers`` (those never seen are simply absent)."""
    import pyarrow as pa

    cur = store.con.cursor()
    try:
        cur.register("touched_ids", pa.table({"customer_id": pa.array(customers, pa.string())}))
        per = cur.execute(
            "SELECT s.* FROM needs_state s SEMI JOIN touched_ids USING (customer_id) ORDER BY customer_id"
        ).df().set_index("customer_id")
        cc = cur.execute(
            "SELECT c.* FROM needs_state_categories c SEMI JOIN touched_ids USING (customer_id)"
        ).df()
        cur.unregister("touched_ids")
    finally:
        cur.close()
    return per, cc


def write_state(
    tx: Any, per: pd.DataFrame, cc: pd.DataFrame, as_of: dt.datetime, *, replace_all: bool
) -> None:
    """Write the statistics of ``per``'s customers (relative to ``as_of``): all rows replaced on a
    full build, only these customers' rows on an update."""
    import pyarrow as pa

    ids = pa.array(per.index.astype(str), pa.string())
    days = [sorted(int(d) for d in v) for v in per["day_list"]]
    rows = pa.table({
        "customer_id": ids,
        "as_of": pa.array([as_of] * len(per), pa.timestamp("us")),
        "orders": pa.array(per["orders"].to_numpy(dtype=np.int64), pa.int64()),
        "spend": per["spend"].to_numpy(dtype=np.float64),
        "wsum": per["wsum"].to_numpy(dtype=np.float64),
        "w_online": per["w_online"].to_numpy(dtype=np.float64),
        "w_app": per["w_app"].to_numpy(dtype=np.float64),
        "known": pa.array(per["known"].to_numpy(dtype=bool), pa.bool_()),
        "day_list": pa.array(days, pa.list_(pa.int64())),
        "first_day": pa.array(per["first_day"].to_numpy(dtype=np.int64), pa.int64()),
    })
    cats = pa.table({
        "customer_id": pa.array(cc["customer_id"].astype(str).to_numpy(), pa.string()),
        "category": pa.array(cc["category"].astype(str).to_numpy(), pa.string()),
        "wspend": cc["wspend"].to_numpy(dtype=np.float64),
        "paid": cc["paid"].to_numpy(dtype=np.float64),
        "qty": cc["qty"].to_numpy(dtype=np.float64),
    })
    tx.register("new_state", rows)
    tx.register("new_state_cats", cats)
    try:
        if replace_all:
            tx.execute("DELETE FROM needs_state")
            tx.execute("DELETE FROM needs_state_categories")
        else:
            tx.execute("DELETE FROM needs_state WHERE customer_id IN (SELECT customer_id FROM new_state)")
            tx.execute("DELETE FROM needs_state_categories WHERE customer_id IN "
                       "(SELECT customer_id FROM new_state)")
        tx.execute(f"INSERT INTO needs_state (customer_id, as_of, {', '.join(STATE_COLUMNS)}) "
                   f"SELECT customer_id, as_of, {', '.join(STATE_COLUMNS)} FROM new_state")
        tx.execute(f"INSERT INTO needs_state_categories ({', '.join(CATEGORY_COLUMNS)}) "
                   f"SELECT {', '.join(CATEGORY_COLUMNS)} FROM new_state_cats")
    finally:
        tx.unregister("new_state")
        tx.unregister("new_state_cats")
