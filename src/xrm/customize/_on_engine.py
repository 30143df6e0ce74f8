"""Recommendation inputs on any batch engine, as Ibis expressions: the purchase lines and the
user-item matrix.  The blend (repeat cycles, co-occurrence, implicit ALS) is fitted in NumPy on the
collected purchase lines, the same fit as :func:`~xrm.customize.build_recommendations`.

    >>> lines = purchase_lines(engine.table("events"), engine.table("order_lines"))  # doctest: +SKIP
    >>> matrix = user_item_matrix(lines)  # doctest: +SKIP

On a cluster the matrix stays in the engine; what the fit collects is one row per customer,
product and basket, which bounds this step by the driver's memory (see docs/spark.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from xrm.customize._baskets import CUSTOMER_KEYS
from xrm.exceptions import InputError

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["purchase_lines", "user_item_matrix"]


def purchase_lines(events: ir.Table, order_lines: ir.Table, *, customer_key: str = "user_id") -> ir.Table:
    """One row per customer x product x basket: ``read_purchases``' columns, in the engine."""
    if customer_key not in CUSTOMER_KEYS or customer_key not in events.columns:
        raise InputError(
            f"customer_key = {customer_key!r} is not an events column that names a customer; "
            f"use one of {', '.join(k for k in CUSTOMER_KEYS if k in events.columns)}"
        )
    e = events.filter((events.event == "Order Completed") & events[customer_key].notnull())
    e = e.select(
        message_id=e.message_id,
        customer=e[customer_key].cast("string"),
        ts=e.ts,
        basket=ibis.coalesce(e.order_id, e.message_id),
    )
    ln = order_lines.select(
        message_id=order_lines.message_id,
        item=ibis.coalesce(order_lines.product_id, order_lines.sku),
        name=order_lines.name,
        category=order_lines.category,
    )
    j = ln.join(e, "message_id")
    j = j.filter(j.item.notnull())
    return j.group_by(["customer", "item", "ts", "basket"]).aggregate(
        name=j.name.min(), category=j.category.min()
    )


def user_item_matrix(lines: ir.Table) -> ir.Table:
    """The implicit-feedback matrix in coordinate form: ``(customer, item, baskets, last_ts)``."""
    return lines.group_by(["customer", "item"]).aggregate(
        baskets=lines.basket.nunique().cast("int64"), last_ts=lines.ts.max()
    )
