"""Orders written straight into a store's ``events`` and ``order_lines`` (the needs tests' data)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def insert_orders(store: Any, events: list[dict[str, Any]], lines: list[dict[str, Any]]) -> None:
    """Append ``events`` and their ``lines`` to the store, columns by name."""
    cur = store.con.cursor()
    try:
        for name, frame in (("events", pd.DataFrame(events)), ("order_lines", pd.DataFrame(lines))):
            cur.register("new_rows", frame)
            cols = ", ".join(frame.columns)
            cur.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM new_rows")
            cur.unregister("new_rows")
    finally:
        cur.close()
