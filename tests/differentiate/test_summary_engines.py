"""The same Ibis purchase summary on DuckDB (the store) and on a local Spark session: equal results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xrm.differentiate import SUMMARY_COLUMNS, order_events, purchase_summary
from xrm.store import spark_backend


def _run(table, **kw) -> pd.DataFrame:
    expr = purchase_summary(order_events(table), **kw)
    return expr.to_pyarrow().to_pandas().sort_values("customer_id").reset_index(drop=True)


@pytest.mark.spark
@pytest.mark.slow  # a local Spark session takes 30-90 s to start on 2 shared cores
# Ibis 12 fetches Spark results through pandas and reads an option pandas 3 deprecates.
@pytest.mark.filterwarnings("ignore:The 'future.infer_string' option:pandas.errors.Pandas4Warning")
def test_duckdb_and_spark_give_the_same_summary(cdnow_store, insert_events, spark, tmp_path):
    # Day boundaries and same-day orders, on top of the CDNOW orders.
    edge = pd.DataFrame(
        {
            "message_id": ["e1", "e2", "e3", "e4"],
            "type": "track",
            "event": ["Order Completed", "Order Completed", "Order Completed", "Product Viewed"],
            "user_id": "edge",
            "ts": pd.to_datetime(
                ["1997-03-01 00:00:00", "1997-03-01 23:59:59", "1997-03-02 00:00:01", "1997-03-03 00:00:00"]
            ),
            "order_id": ["x1", "x2", "x3", None],
            "revenue": [1.5, None, 4.25, 99.0],
        }
    )
    insert_events(cdnow_store, edge)
    kw = {"observation_end": "1998-06-30", "calibration_end": "1997-09-30", "time_unit": "W"}
    on_duckdb = _run(cdnow_store.table("events"), **kw)

    # The same rows reach Spark through a Parquet file written by DuckDB.
    path = tmp_path / "events.parquet"
    cdnow_store.sql(
        "COPY (SELECT message_id, type, event, user_id, ts, order_id, revenue, anonymous_id FROM events) "
        f"TO '{path}' (FORMAT parquet)"
    ).fetchall()
    spark.read.parquet(str(path)).createOrReplaceTempView("xrm_test_events")
    on_spark = _run(spark_backend(spark).table("xrm_test_events"), **kw)

    assert len(on_duckdb) == len(on_spark) == 2358
    assert list(on_spark.columns) == list(SUMMARY_COLUMNS)
    for col in SUMMARY_COLUMNS:
        a, b = on_duckdb[col], on_spark[col]
        if col in ("customer_id", "frequency", "n_orders", "frequency_holdout"):
            assert a.astype(str).tolist() == b.astype(str).tolist(), col
        elif col in ("first_purchase", "last_purchase"):
            assert (pd.to_datetime(a) == pd.to_datetime(b)).all(), col
        else:
            np.testing.assert_allclose(
                a.to_numpy(float), b.to_numpy(float), rtol=1e-12, atol=1e-9, err_msg=col
            )
    e = on_spark.set_index("customer_id").loc["edge"]
    assert (e.frequency, e.n_orders, e.monetary_value) == (1, 3, 4.25)
