"""Per-customer purchase summaries, written once as an Ibis expression (DuckDB and Spark alike).

The summary is the sufficient statistic of the buy-till-you-die models (Fader, Hardie & Lee 2005,
"Counting your customers the easy way", §3): frequency ``x`` (repeat purchases), recency ``t_x``
(time of the last purchase since the first) and age ``T`` (calibration end since the first
purchase), plus the average repeat spend of the Gamma-Gamma model and a holdout period.

    >>> orders = order_events(store.table("events"))  # doctest: +SKIP
    >>> s = purchase_summary(orders, observation_end="1998-06-30")  # doctest: +SKIP

Everything aggregates in the engine (customer-day, then customer), so memory grows with the number
of customers, never with transactions.  No code here asks which engine runs it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import ibis

from xrm.exceptions import InputError

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["SUMMARY_COLUMNS", "order_events", "purchase_summary", "time_unit_days"]

_EPOCH = dt.date(1970, 1, 1)
_UNITS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}

SUMMARY_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "total_spend",
    "n_orders",
    "first_purchase",
    "last_purchase",
    "frequency_holdout",
    "spend_holdout",
    "monetary_value_holdout",
    "duration_holdout",
)


def time_unit_days(time_unit: str | float) -> float:
    """Days in one time unit: ``"D"``, ``"W"`` (the CDNOW papers), ``"M"``, ``"Y"`` or a number."""
    if isinstance(time_unit, str):
        try:
            return _UNITS[time_unit.upper()]
        except KeyError:
            raise InputError(
                f"time_unit {time_unit!r} is not known; use one of {', '.join(_UNITS)} "
                f"or a positive number of days"
            ) from None
    days = float(time_unit)
    if not days > 0:
        raise InputError(f"time_unit = {time_unit!r} days must be a positive number of days")
    return days


def _as_date(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{name} = {value!r} is not a date (expected YYYY-MM-DD)") from None


def order_events(events: ir.Table, *, event: str = "Order Completed") -> ir.Table:
    """The purchases among Segment-spec events: ``track`` calls named ``Order Completed``."""
    return events.filter((events.type == "track") & (events.event == event))


def purchase_summary(
    orders: ir.Table,
    *,
    observation_end: dt.date | str,
    calibration_end: dt.date | str | None = None,
    time_unit: str | float = "W",
    customer_key: str = "user_id",
    timestamp: str = "ts",
    amount: str = "revenue",
) -> ir.Table:
    """One row per customer with the columns in :data:`SUMMARY_COLUMNS`.

    Purchases are counted per calendar day (UTC): several orders on one day are one purchase whose
    spend is their sum, as in the published CDNOW summaries.  Customers whose first purchase is
    after ``calibration_end`` are left out (they were not yet customers); purchases after
    ``observation_end`` are ignored.  Both dates are inclusive.  Without ``calibration_end`` the
    whole history is calibration and the holdout columns are 0.

    ``monetary_value`` is the mean spend of the *repeat* purchase days (the first purchase is
    excluded, Fader & Hardie 2013, "The Gamma-Gamma model of monetary value", §1); 0 when the
    customer has no repeat purchase.  ``customer_key`` names the id column (``user_id`` today, the
    profile id once identities are resolved); it is renamed ``customer_id``.

        >>> summary = purchase_summary(orders, observation_end="1998-06-30",  # doctest: +SKIP
        ...                            calibration_end="1997-09-30", time_unit="W")
    """
    unit = time_unit_days(time_unit)
    obs_end = _as_date(observation_end, "observation_end")
    cal_end = obs_end if calibration_end is None else _as_date(calibration_end, "calibration_end")
    if cal_end > obs_end:
        raise InputError(
            f"calibration_end {cal_end} is after observation_end {obs_end}; "
            f"the holdout period must follow the calibration period"
        )
    missing = [c for c in (customer_key, timestamp, amount) if c not in orders.columns]
    if missing:
        raise InputError(
            f"the orders table has no column(s) {', '.join(missing)}; "
            f"existing columns: {', '.join(orders.columns)}"
        )
    obs_day = (obs_end - _EPOCH).days
    cal_day = (cal_end - _EPOCH).days

    # Integer day numbers (UTC) keep all time arithmetic in plain integers on every engine.
    rows = orders.select(
        customer_id=orders[customer_key].cast("string"),
        ts=orders[timestamp],
        spend=orders[amount].cast("float64").fill_null(0.0),
        day=(orders[timestamp].epoch_seconds() // 86400).cast("int64"),
    )
    rows = rows.filter(rows.customer_id.notnull() & rows.ts.notnull() & (rows.day <= obs_day))

    days = rows.group_by(["customer_id", "day"]).aggregate(
        spend=rows.spend.sum(),
        n_orders=rows.count(),
        first_ts=rows.ts.min(),
        last_ts=rows.ts.max(),
    )
    first_day = days.day.min().over(ibis.window(group_by=days.customer_id))
    days = days.mutate(first_day=first_day)
    days = days.filter(days.first_day <= cal_day)
    cal = days.day <= cal_day
    hold = days.day > cal_day
    repeat = cal & (days.day > days.first_day)

    per = days.group_by("customer_id").aggregate(
        first=days.first_day.min(),
        last=days.day.max(where=cal),
        cal_days=days.count(where=cal),
        repeat_spend=days.spend.sum(where=repeat),
        total_spend=days.spend.sum(where=cal),
        n_orders=days.n_orders.sum(where=cal),
        first_purchase=days.first_ts.min(),
        last_purchase=days.last_ts.max(where=cal),
        frequency_holdout=days.count(where=hold),
        spend_holdout=days.spend.sum(where=hold),
    )
    frequency = (per.cal_days - 1).cast("int64")
    hold_n = per.frequency_holdout.cast("int64")
    hold_spend = per.spend_holdout.fill_null(0.0)
    return per.select(
        customer_id=per.customer_id,
        frequency=frequency,
        # Cast before dividing: a float literal may compile to a DECIMAL (6 digits on Spark).
        recency=(per["last"] - per["first"]).cast("float64") / unit,
        T=(ibis.literal(cal_day) - per["first"]).cast("float64") / unit,
        monetary_value=ibis.ifelse(frequency > 0, per.repeat_spend.fill_null(0.0) / frequency, 0.0),
        total_spend=per.total_spend.fill_null(0.0),
        n_orders=per.n_orders.cast("int64"),
        first_purchase=per.first_purchase,
        last_purchase=per.last_purchase,
        frequency_holdout=hold_n,
        spend_holdout=hold_spend,
        monetary_value_holdout=ibis.ifelse(hold_n > 0, hold_spend / hold_n, 0.0),
        duration_holdout=ibis.literal((obs_day - cal_day) / unit).cast("float64"),
    )
