"""Tables owned by differentiate: per-customer purchase summaries (the input of the value models)."""

from __future__ import annotations

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- One row per customer: the recency-frequency-monetary summary the lifetime-value models read.
-- Times are in units of `time_unit_days` days (7 = weeks), measured from the first purchase.
-- Same-day purchases count as one purchase (as in the published CDNOW summaries).
CREATE TABLE purchase_summaries (
    customer_id             VARCHAR PRIMARY KEY,   -- events.user_id until identity profiles exist
    frequency               BIGINT NOT NULL,       -- repeat purchase days in the calibration period
    recency                 DOUBLE NOT NULL,       -- last purchase - first purchase
    "T"                     DOUBLE NOT NULL,       -- calibration end - first purchase (age)
    monetary_value          DOUBLE NOT NULL,       -- average spend per repeat purchase day; 0 if none
    total_spend             DOUBLE NOT NULL,       -- all calibration spend, first purchase included
    n_orders                BIGINT NOT NULL,       -- orders (events) in the calibration period
    first_purchase          TIMESTAMP NOT NULL,
    last_purchase           TIMESTAMP NOT NULL,
    frequency_holdout       BIGINT NOT NULL,       -- purchase days after calibration_end
    spend_holdout           DOUBLE NOT NULL,
    monetary_value_holdout  DOUBLE NOT NULL,       -- average spend per holdout purchase day; 0 if none
    duration_holdout        DOUBLE NOT NULL,       -- observation_end - calibration_end
    calibration_end         DATE NOT NULL,
    observation_end         DATE NOT NULL,
    time_unit_days          DOUBLE NOT NULL,
    computed_at             TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

SCHEMA = Schema(
    "differentiate",
    (Migration(1, "purchase summaries", _V1),),
)
