"""CDNOW fixtures: the data files shipped in the `lifetimes` wheel, read by path.

`lifetimes.datasets` imports pkg_resources (gone from setuptools 82), so it is never imported;
the files are found from the package's location.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from xrm.store import Store


def cdnow_dir() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the CDNOW files ship in the `lifetimes` wheel: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


@pytest.fixture(scope="session")
def cdnow_published() -> pd.DataFrame:
    """Fader & Hardie's published CDNOW calibration summary: ID, x, t_x, T (weeks), zbar."""
    df = pd.read_csv(cdnow_dir() / "cdnow_customers_summary_with_transactions.csv")
    return df.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


@pytest.fixture(scope="session")
def cdnow_orders() -> pd.DataFrame:
    """The 1/10 CDNOW sample (2,357 customers, Jan 1997 - Jun 1998) as Order Completed events."""
    raw = pd.read_csv(
        cdnow_dir() / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "dollars"],
        dtype={"date": str},
    )
    n = len(raw)
    return pd.DataFrame(
        {
            "message_id": [f"cdnow-{i}" for i in range(n)],
            "type": "track",
            "event": "Order Completed",
            "user_id": raw["customer"].astype(str),
            "ts": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "order_id": [f"o{i}" for i in range(n)],
            "revenue": raw["dollars"].astype(float),
        }
    )


def _insert(store: Store, events: pd.DataFrame) -> None:
    """Append rows to the store's events table (columns as in ingest's schema)."""
    cur = store.con.cursor()
    try:
        cur.register("new_events", events)
        cols = ", ".join(events.columns)
        cur.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM new_events")
    finally:
        cur.close()


@pytest.fixture
def insert_events() -> Callable[[Store, pd.DataFrame], None]:
    """``insert_events(store, frame)`` appends rows to the store's events table."""
    return _insert


@pytest.fixture
def cdnow_store(store: Store, cdnow_orders: pd.DataFrame) -> Store:
    _insert(store, cdnow_orders)
    return store
