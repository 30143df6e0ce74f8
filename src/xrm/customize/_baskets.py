"""Purchase histories as integer-coded arrays: the input of every recommender.

    >>> data = Baskets.from_frame(frame)   # doctest: +SKIP  (columns customer, item, ts, basket)
    >>> frame = read_purchases(store)      # doctest: +SKIP  (from events + order_lines)

``customer`` is whatever key identifies a customer (``events.user_id`` until Identify's profiles
exist), ``basket`` an order id, ``ts`` a timestamp or a number of days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xrm.exceptions import InputError
from xrm.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CUSTOMER_KEYS", "Baskets", "read_purchases", "split_last_basket"]

# Columns of `events` that may identify a customer for recommendations.
CUSTOMER_KEYS = ("user_id", "anonymous_id", "profile_id")  # profile_id: identify's customer_events
_DAY_NS = 86_400 * 10**9


def read_purchases(
    store: Store, *, customer_key: str = "user_id", events_table: str = "events"
) -> pd.DataFrame:
    """One row per customer x product x order from ``Order Completed`` events and their lines."""
    if customer_key not in CUSTOMER_KEYS:
        raise InputError(
            f"customer_key = {customer_key!r} is not an events column that names a customer; "
            f"use one of {', '.join(CUSTOMER_KEYS)}"
        )
    cur = store.sql(
        f"""
        SELECT e.{customer_key} AS customer,
               coalesce(l.product_id, l.sku) AS item,
               e.ts AS ts,
               coalesce(e.order_id, e.message_id) AS basket,
               any_value(l.name) AS name,
               any_value(l.category) AS category
        FROM order_lines l JOIN {_table(events_table)} e USING (message_id)
        WHERE e.event = 'Order Completed' AND e.{customer_key} IS NOT NULL
          AND coalesce(l.product_id, l.sku) IS NOT NULL
        GROUP BY ALL
        ORDER BY customer, ts, basket
        """
    )
    frame = cur.df()
    cur.close()
    return frame


def _table(name: str) -> str:
    if name not in ("events", "customer_events"):
        raise InputError(f"events_table = {name!r}: use 'events' or identify's 'customer_events'")
    return name


@dataclass
class Baskets:
    """A purchase history coded as arrays, one entry per distinct (customer, item, basket).

    ``ordinal`` is the basket's position in its customer's history (0 = first), ``t`` its time
    in days; ``n_baskets[u]`` and ``last_t[u]`` summarise each customer.
    """

    customers: np.ndarray  # code -> customer key (object)
    items: np.ndarray  # code -> item key (object)
    user: np.ndarray  # int32
    item: np.ndarray  # int32
    ordinal: np.ndarray  # int32
    t: np.ndarray  # float64, days
    n_baskets: np.ndarray  # int32 per customer
    last_t: np.ndarray  # float64 per customer

    @property
    def n_users(self) -> int:
        return len(self.customers)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, items: np.ndarray | None = None) -> Baskets:
        """Code a frame with columns ``customer, item, ts, basket``; ``items`` fixes the item codes."""
        import pandas as pd

        missing = {"customer", "item", "ts", "basket"} - set(frame.columns)
        if missing:
            raise InputError(
                f"purchase frame lacks column(s) {', '.join(sorted(missing))}; "
                f"it needs customer, item, ts, basket (got {', '.join(map(str, frame.columns))})"
            )
        df = frame[["customer", "item", "ts", "basket"]]
        if items is not None:
            df = df[df["item"].isin(items)]
        ts = df["ts"]
        if pd.api.types.is_datetime64_any_dtype(ts):
            days = ts.to_numpy("datetime64[ns]").astype("int64") / _DAY_NS
        else:
            days = ts.to_numpy(dtype="float64")
        df = pd.DataFrame(
            {"customer": df["customer"].to_numpy(), "item": df["item"].to_numpy(),
             "t": days, "basket": df["basket"].to_numpy()}
        )
        # A basket's time is its earliest line's; order baskets by time within each customer.
        df["t"] = df.groupby(["customer", "basket"], sort=False)["t"].transform("min")
        df = df.drop_duplicates(["customer", "basket", "item"])
        df = df.sort_values(["customer", "t", "basket"], kind="stable")
        user, customers = pd.factorize(df["customer"], sort=False)
        if items is None:
            item, items_index = pd.factorize(df["item"], sort=False)
            items = np.asarray(items_index, dtype=object)
        else:
            item = pd.Index(items).get_indexer(df["item"])
        first = ~df.duplicated(["customer", "basket"]).to_numpy()
        # Ordinal of each basket: running count of new baskets within the customer.
        new_basket = first.astype(np.int64)
        cum = np.cumsum(new_basket)
        start = np.r_[0, np.flatnonzero(np.diff(user)) + 1]
        user_first_cum = np.repeat(cum[start] - 1, np.diff(np.r_[start, len(user)]))
        ordinal = (cum - 1 - user_first_cum).astype(np.int32)
        n_users = len(customers)
        n_baskets = np.zeros(n_users, dtype=np.int32)
        np.maximum.at(n_baskets, user, ordinal + 1)
        last_t = np.full(n_users, -np.inf)
        t = df["t"].to_numpy(dtype="float64")
        np.maximum.at(last_t, user, t)
        return cls(
            customers=np.asarray(customers, dtype=object),
            items=np.asarray(items, dtype=object),
            user=user.astype(np.int32),
            item=np.asarray(item, dtype=np.int32),
            ordinal=ordinal,
            t=t,
            n_baskets=n_baskets,
            last_t=last_t,
        )

    def user_codes(self, customers: list[str] | np.ndarray) -> np.ndarray:
        """Codes of the given customer keys; -1 for customers without history."""
        import pandas as pd

        return np.asarray(pd.Index(self.customers).get_indexer(list(customers)), dtype=np.int64)


def split_last_basket(data: Baskets, users: np.ndarray | None = None) -> tuple[Baskets, np.ndarray]:
    """Hold out the last basket of ``users`` (default: all with two or more baskets).

    Returns the history without those baskets (same codes) and a boolean mask over ``data``'s
    rows marking the held-out lines.
    """
    eligible = data.n_baskets >= 2
    chosen = eligible if users is None else np.isin(np.arange(data.n_users), users) & eligible
    held = chosen[data.user] & (data.ordinal == data.n_baskets[data.user] - 1)
    keep = ~held
    n_baskets = data.n_baskets - chosen.astype(np.int32)
    last_t = np.full(data.n_users, -np.inf)
    np.maximum.at(last_t, data.user[keep], data.t[keep])
    rest = Baskets(
        customers=data.customers, items=data.items, user=data.user[keep], item=data.item[keep],
        ordinal=data.ordinal[keep], t=data.t[keep], n_baskets=n_baskets, last_t=last_t,
    )
    return rest, held
