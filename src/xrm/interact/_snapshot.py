"""A cursor for a person's point look-ups: one read snapshot, joins served by single-column indexes.

DuckDB answers ``col IN (SELECT ...)`` with a hash join; when the subquery's side is small it pushes
the values into the scan of the big side as an IN filter, which an index on ``col`` then serves
(an index scan instead of reading the whole table). It does so only up to
``dynamic_or_filter_threshold`` values (50 by default), and a customer has hundreds of events:
this cursor raises it, for its own session only, so that a look-up by a list of message ids stays
a look-up whatever the store's size. The cursor holds one transaction, so several look-ups see one
state of the store.

    >>> with read_snapshot(store) as cur:  # doctest: +SKIP
    ...     cur.execute("SELECT * FROM events WHERE message_id IN (SELECT unnest(?))", [ids])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["IN_FILTER_MAX", "read_snapshot"]

# Large enough for any one person's events; a join of that size is cheap either way.
IN_FILTER_MAX = 100_000


@contextmanager
def read_snapshot(store: Any) -> Iterator[Any]:
    """A fresh cursor of ``store`` in one transaction (rolled back: it only reads)."""
    cur = store.con.cursor()
    try:
        cur.execute(f"SET SESSION dynamic_or_filter_threshold = {IN_FILTER_MAX}")
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        finally:
            cur.execute("ROLLBACK")
    finally:
        cur.close()
