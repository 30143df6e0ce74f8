"""Helpers for customize tests: purchase histories written the way ingest stores them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from xrm.store import Store

T0 = datetime(2026, 1, 1)


def write_orders(store: Store, orders: Iterable[tuple[str, str, datetime, list[str]]],
                 names: dict[str, str] | None = None) -> int:
    """Insert orders (customer, order_id, when, product ids) the way ingest stores them."""
    events, lines = [], []
    for customer, order_id, when, products in orders:
        mid = f"m-{order_id}"
        events.append((mid, "track", "Order Completed", customer, when, order_id))
        for n, p in enumerate(products):
            lines.append((mid, n, order_id, p, (names or {}).get(p, f"product {p}"), 2.0, 1.0))
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO events (message_id, type, event, user_id, ts, order_id) VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )
        tx.executemany(
            "INSERT INTO order_lines (message_id, line_no, order_id, product_id, name, price, quantity) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", lines,
        )
    return len(events)


def staples_frame(
    n_customers: int = 150, n_items: int = 120, n_baskets: int = 8, seed: int = 1
) -> pd.DataFrame:
    """Groceries: each customer re-buys 4 personal staples; the rest are random popular picks."""
    rng = np.random.default_rng(seed)
    pop = 1 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    rows = []
    for c in range(n_customers):
        staples = rng.choice(n_items, 4, replace=False)
        day = 0.0
        for b in range(n_baskets):
            day += rng.uniform(5, 10)
            items = {int(s) for s in staples if rng.random() < 0.75}
            items |= {int(i) for i in rng.choice(n_items, 4, p=pop)}
            rows += [(f"c{c}", f"i{i}", day, f"c{c}-b{b}") for i in items]
    return pd.DataFrame(rows, columns=["customer", "item", "ts", "basket"])


def days(n: float) -> timedelta:
    return timedelta(days=n)
