"""Pipeline step: write every customer's purchase summary into the store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from xrm.differentiate._summary import SUMMARY_COLUMNS, order_events, purchase_summary, time_unit_days
from xrm.store import Store

__all__ = ["build_purchase_summaries"]


def build_purchase_summaries(
    store: Store,
    *,
    observation_end: dt.date | str | None = None,
    calibration_end: dt.date | str | None = None,
    time_unit: str | float = "W",
    customer_key: str = "user_id",
    events_table: str = "events",
) -> dict[str, Any]:
    """Replace ``purchase_summaries`` with a summary of the ``Order Completed`` events.

    ``observation_end`` defaults to the day of the last order.  The query runs inside DuckDB
    (compiled from the same Ibis expression that runs on Spark); nothing per order reaches Python.

        >>> build_purchase_summaries(store)  # doctest: +SKIP
        {'customers': 2357, 'repeat_customers': 946, 'orders': 6919, ...}
    """
    orders = order_events(store.table(events_table))
    if observation_end is None:
        last = store.sql(
            f"SELECT max(ts) FROM {events_table} WHERE type = 'track' AND event = 'Order Completed'"
        ).fetchall()[0][0]
        if last is None:
            with store.transaction() as tx:
                tx.execute("DELETE FROM purchase_summaries")
            return {"customers": 0, "repeat_customers": 0, "orders": 0, "observation_end": None}
        observation_end = last.date()
    expr = purchase_summary(
        orders,
        observation_end=observation_end,
        calibration_end=calibration_end,
        time_unit=time_unit,
        customer_key=customer_key,
    )
    obs = dt.date.fromisoformat(str(observation_end)[:10])
    cal = obs if calibration_end is None else dt.date.fromisoformat(str(calibration_end)[:10])
    sql = store.ibis.compile(expr)
    cols = ", ".join(f'"{c}"' for c in SUMMARY_COLUMNS)
    with store.transaction() as tx:
        tx.execute("DELETE FROM purchase_summaries")
        tx.execute(
            f"INSERT INTO purchase_summaries ({cols}, calibration_end, observation_end, time_unit_days) "
            f"SELECT {cols}, ?, ?, ? FROM ({sql})",
            [cal, obs, time_unit_days(time_unit)],
        )
    row = store.sql(
        "SELECT count(*), count(*) FILTER (frequency > 0), coalesce(sum(n_orders), 0), "
        "coalesce(sum(total_spend), 0) FROM purchase_summaries"
    ).fetchall()[0]
    return {
        "customers": int(row[0]),
        "repeat_customers": int(row[1]),
        "orders": int(row[2]),
        "spend": float(row[3]),
        "observation_end": obs.isoformat(),
        "calibration_end": cal.isoformat(),
    }
