"""Tables owned by differentiate: purchase summaries, value models and traits, needs and segments."""

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

_V2 = """
-- Fitted lifetime-value models, one row per model of a fit; `saved` is the model's whole saved
-- form (ValueModel.to_dict: kind, format_version, config, fit), so a fit can be loaded again.
CREATE TABLE value_models (
    fit_id          VARCHAR NOT NULL,
    role            VARCHAR NOT NULL,          -- purchases | spend
    model           VARCHAR NOT NULL,          -- bg/nbd | pareto/nbd | gamma-gamma
    format_version  INTEGER NOT NULL,
    fitted_at       TIMESTAMP NOT NULL,
    n               BIGINT NOT NULL,           -- customers the model was fitted on
    log_likelihood  DOUBLE NOT NULL,
    params          JSON NOT NULL,
    se              JSON NOT NULL,             -- standard errors (null where not identified)
    saved           JSON NOT NULL,
    PRIMARY KEY (fit_id, role)
);

-- One row per scoring run: its settings and its summary (counts, exclusions, tier shares).
CREATE TABLE value_runs (
    run_id          VARCHAR PRIMARY KEY,
    fit_id          VARCHAR NOT NULL,
    scored_at       TIMESTAMP NOT NULL,
    settings        JSON NOT NULL,
    summary         JSON NOT NULL
);

-- Each customer's value traits from the latest scoring run (no NULL or NaN by construction).
CREATE TABLE customer_value (
    customer_id         VARCHAR PRIMARY KEY,
    run_id              VARCHAR NOT NULL,
    p_alive             DOUBLE NOT NULL,
    expected_purchases  DOUBLE NOT NULL,       -- over the horizon
    expected_spend      DOUBLE NOT NULL,       -- per purchase (Gamma-Gamma)
    clv                 DOUBLE NOT NULL,       -- discounted, margin applied, over the horizon
    net_value           DOUBLE NOT NULL,       -- clv minus discounted cost to serve
    historic_spend      DOUBLE NOT NULL,       -- all spend so far
    spend_12m           DOUBLE NOT NULL,       -- spend in the wallet window (default 52 weeks)
    wallet              DOUBLE NOT NULL,       -- estimated category spend in the same window
    share_of_wallet     DOUBLE NOT NULL,       -- spend_12m / wallet, in [0, 1]
    headroom            DOUBLE NOT NULL,       -- wallet - spend_12m
    wallet_source       VARCHAR NOT NULL,      -- lookalike-quantile | configured
    tier                VARCHAR NOT NULL,      -- MVC | MGC | normal | BZ
    scored_at           TIMESTAMP NOT NULL
);

-- Tiers of past runs (the last few), for tier migration between two runs.
CREATE TABLE customer_value_history (
    run_id        VARCHAR NOT NULL,
    customer_id   VARCHAR NOT NULL,
    clv           DOUBLE NOT NULL,
    tier          VARCHAR NOT NULL,
    PRIMARY KEY (run_id, customer_id)
);
"""

_V3 = """
-- Each customer's needs profile: what, at which price, where and how often they buy.  Shares
-- are decayed with time (weights halve every `half_life_days`), so recent behaviour counts more.
CREATE TABLE customer_needs (
    customer_id          VARCHAR PRIMARY KEY,
    orders               BIGINT NOT NULL,
    spend                DOUBLE NOT NULL,
    top_category         VARCHAR NOT NULL,
    category_shares      JSON NOT NULL,         -- {category: decayed share of spend}
    price_index          DOUBLE NOT NULL,       -- paid price / category median price, spend-weighted
    online_share         DOUBLE NOT NULL,       -- decayed share of orders online (web or app)
    app_share            DOUBLE NOT NULL,       -- decayed share of orders in the app
    purchases_per_month  DOUBLE NOT NULL,       -- purchase days per month of the customer's tenure
    segment_id           INTEGER NOT NULL,
    computed_at          TIMESTAMP NOT NULL
);

-- Needs-based segments of the latest segmentation, described in words.
CREATE TABLE needs_segments (
    segment_id    INTEGER PRIMARY KEY,
    description   VARCHAR NOT NULL,           -- e.g. 'Kaffee lovers, online, premium'
    customers     BIGINT NOT NULL,
    centroid      JSON NOT NULL,              -- mean of each needs feature, natural units
    k             INTEGER NOT NULL,
    silhouette    DOUBLE NOT NULL,            -- of the chosen k, on a sample
    computed_at   TIMESTAMP NOT NULL
);
"""

_V4 = """
-- Trait changes between two scoring runs, for campaigns to react to (Interact's TraitChanged
-- trigger): a tier moved (MVC, MGC, normal, BZ), or P(alive) crossed the policy's
-- churn_alert_p_alive. A customer's first scoring writes none (nothing changed yet).
CREATE TABLE trait_changes (
    customer_id   VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    trait         VARCHAR NOT NULL,         -- tier | p_alive
    old_value     VARCHAR NOT NULL,
    new_value     VARCHAR NOT NULL,
    direction     VARCHAR NOT NULL,         -- up | down
    changed_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, customer_id, trait)
);
"""

_V5 = """
-- What an incremental needs update starts from (update_needs): each customer's sufficient
-- statistics with decayed weights relative to `as_of` (a later time multiplies them by
-- 0.5^(elapsed / half-life) and adds the new orders' weights), per category too, and one row with
-- the last full build's frozen parts (features, reference prices, standardisation, centres).
CREATE TABLE needs_state (
    customer_id   VARCHAR PRIMARY KEY,
    as_of         TIMESTAMP NOT NULL,         -- the decayed sums are weights relative to this time
    orders        BIGINT NOT NULL,
    spend         DOUBLE NOT NULL,
    wsum          DOUBLE NOT NULL,            -- sum of order weights
    w_online      DOUBLE NOT NULL,            -- ... of orders online (web or app)
    w_app         DOUBLE NOT NULL,            -- ... of orders in the app
    known         BOOLEAN NOT NULL,           -- some order said its channel
    day_list      BIGINT[] NOT NULL,          -- distinct purchase days (days since 1970-01-01)
    first_day     BIGINT NOT NULL
);

CREATE TABLE needs_state_categories (
    customer_id   VARCHAR NOT NULL,
    category      VARCHAR NOT NULL,
    wspend        DOUBLE NOT NULL,            -- decayed spend, relative to needs_state.as_of
    paid          DOUBLE NOT NULL,
    qty           DOUBLE NOT NULL,
    PRIMARY KEY (customer_id, category)
);

CREATE TABLE needs_model (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    half_life_days  DOUBLE NOT NULL,
    customer_key    VARCHAR NOT NULL,
    events_table    VARCHAR NOT NULL,
    watermark       TIMESTAMP,                -- received_at of the newest order included
    end_ts          TIMESTAMP NOT NULL,       -- reference time of the newest update
    spec            JSON NOT NULL,            -- categories, references, mean, std, kept, centres
    built_at        TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
"""

# One customer's value history (the GDPR export): the primary key (run_id, customer_id) does not
# serve a look-up by customer (DuckDB uses single-column indexes only).
_V6 = """
CREATE INDEX IF NOT EXISTS customer_value_history_customer ON customer_value_history (customer_id);
"""

SCHEMA = Schema(
    "differentiate",
    (
        Migration(1, "purchase summaries", _V1),
        Migration(2, "value models, scoring runs, customer value and tier history", _V2),
        Migration(3, "needs profiles and needs-based segments", _V3),
        Migration(4, "trait changes between scoring runs (tier, P(alive) threshold)", _V4),
        Migration(5, "needs state for incremental updates", _V5),
        Migration(6, "index: customer value history by customer", _V6),
    ),
)
