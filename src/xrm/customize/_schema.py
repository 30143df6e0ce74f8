"""Tables owned by customize: offers, recommendations, purchase cycles, decisions, responses, bandit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xrm.store import Migration, Schema

if TYPE_CHECKING:
    import duckdb

__all__ = ["SCHEMA"]

_V1 = """
-- What can be put in front of a customer: a product, a bundle, content or a service action.
-- List columns hold the eligibility rules; an empty or NULL list means "no restriction".
CREATE TABLE offers (
    offer_id        VARCHAR PRIMARY KEY,
    kind            VARCHAR NOT NULL,            -- product | bundle | content | service
    name            VARCHAR NOT NULL,
    category        VARCHAR,                     -- diversity: one offer per category in a top-k
    product_ids     VARCHAR[],                   -- products the offer sells (affinity, "already owned")
    value           DOUBLE NOT NULL,             -- margin if the customer responds
    cost            DOUBLE NOT NULL DEFAULT 0,   -- cost of making the offer at all
    channels        VARCHAR[],                   -- where it may be shown (email, web, app, call ...)
    segments        VARCHAR[],                   -- customer segments it is for
    tiers           VARCHAR[],                   -- value tiers it is for
    consent_purpose VARCHAR,                     -- purpose the eligibility hook checks (NULL: none)
    exclude_owned   BOOLEAN NOT NULL DEFAULT false,
    stock           BIGINT,                      -- NULL: unlimited; 0: not offered
    valid_from      DATE,
    valid_to        DATE,
    base_rate       DOUBLE NOT NULL DEFAULT 0.05,  -- prior response rate before any response
    source          VARCHAR,                     -- file it was loaded from
    updated_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Top-N recommended products per customer with each signal's score and the reason in words.
CREATE TABLE recommendations (
    customer        VARCHAR NOT NULL,
    product_id      VARCHAR NOT NULL,
    rank            INTEGER NOT NULL,
    score           DOUBLE NOT NULL,
    repeat_score    DOUBLE,
    cooc_score      DOUBLE,
    als_score       DOUBLE,
    popularity      DOUBLE,
    reason          VARCHAR,
    built_at        TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (customer, product_id)
);

-- Per customer x product: how often and how regularly it is bought (repeat-purchase signal).
CREATE TABLE purchase_cycles (
    customer        VARCHAR NOT NULL,
    product_id      VARCHAR NOT NULL,
    product_name    VARCHAR,
    n_orders        INTEGER NOT NULL,
    first_ts        TIMESTAMP NOT NULL,
    last_ts         TIMESTAMP NOT NULL,
    mean_interval_days DOUBLE,                   -- NULL when bought once
    PRIMARY KEY (customer, product_id)
);

-- Every next-best-action decision, with what went in.
CREATE TABLE decisions (
    decision_id     VARCHAR PRIMARY KEY,
    customer        VARCHAR NOT NULL,
    channel         VARCHAR NOT NULL,
    placement       VARCHAR,
    decided_at      TIMESTAMP NOT NULL,
    policy          VARCHAR NOT NULL,            -- e.g. 'thompson-logistic v1'
    explore         DOUBLE NOT NULL,             -- share of decisions drawn from the posterior
    explored        BOOLEAN NOT NULL,            -- this decision used a posterior draw
    k               INTEGER NOT NULL,
    n_offers        INTEGER NOT NULL,
    n_eligible      INTEGER NOT NULL,
    inputs          JSON                         -- customer facts, ineligible offers and why
);

-- The ranked offers of a decision, each with its scores, propensity and explanation.
CREATE TABLE decision_items (
    decision_id     VARCHAR NOT NULL,
    rank            INTEGER NOT NULL,
    offer_id        VARCHAR NOT NULL,
    p_response      DOUBLE NOT NULL,             -- the P(response) used to rank (drawn or mean)
    p_mean          DOUBLE NOT NULL,             -- posterior-mean P(response)
    value           DOUBLE NOT NULL,
    cost            DOUBLE NOT NULL,
    expected_value  DOUBLE NOT NULL,             -- p_response * value - cost
    propensity      DOUBLE NOT NULL,             -- P(this offer at this rank | context) under the policy
    features        DOUBLE[] NOT NULL,
    explanation     VARCHAR NOT NULL,
    PRIMARY KEY (decision_id, rank)
);

-- Responses to decisions (clicks, purchases, ignores), each applied once to the policy.
CREATE TABLE responses (
    response_id     VARCHAR PRIMARY KEY,         -- the event's message_id, or generated
    decision_id     VARCHAR NOT NULL,
    offer_id        VARCHAR NOT NULL,
    customer        VARCHAR,
    outcome         VARCHAR NOT NULL,            -- click | purchase | ignore
    reward          DOUBLE NOT NULL,
    responded_at    TIMESTAMP NOT NULL,
    applied_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The online policy: one Bayesian logistic model per offer (Gaussian posterior, diagonal).
CREATE TABLE bandit_state (
    offer_id        VARCHAR PRIMARY KEY,
    model           VARCHAR NOT NULL,
    feature_names   VARCHAR[] NOT NULL,
    mean            DOUBLE[] NOT NULL,
    precision       DOUBLE[] NOT NULL,
    n_responses     BIGINT NOT NULL,
    updated_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

_V2 = """
-- The latest configured product per customer (mass customization), with its numbers and words.
CREATE TABLE configurations (
    customer        VARCHAR NOT NULL,
    product_id      VARCHAR NOT NULL,            -- e.g. 'cereal-mix'
    batch_id        VARCHAR,                     -- set by configure_segment; NULL for one customer
    segment_id      INTEGER,                     -- the customer's needs segment, if known
    status          VARCHAR NOT NULL,            -- optimal | feasible | infeasible
    options         JSON,                        -- [{option, module, name, grams}] per portion
    total_g         INTEGER,
    price           DOUBLE,                      -- EUR per portion
    cost            DOUBLE,                      -- EUR per portion
    nutrition       JSON,                        -- {kcal, sugar, protein, fibre, fat} per portion
    fit             DOUBLE,                      -- mean taste per gram (-2 .. 2)
    objective       DOUBLE,
    taste_source    VARCHAR,                     -- own purchases, borrowed from a segment, house default
    conflicts       VARCHAR[],                   -- infeasible: a minimal set of conflicting constraints
    explanation     VARCHAR NOT NULL,
    request         JSON,                        -- the customer's own constraints
    configured_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (customer, product_id)
);
"""

# One customer's recommendations (Customer 360, decisions): DuckDB uses single-column indexes only,
# so the primary key (customer, product_id) does not serve a look-up by customer.
_V3 = """
CREATE INDEX recommendations_customer ON recommendations (customer);
"""

# One customer's purchase cycles (the GDPR export, next best offers): as for recommendations above.
_V5 = """
CREATE INDEX IF NOT EXISTS purchase_cycles_customer ON purchase_cycles (customer);
"""



def _v4_full_covariance(con: duckdb.DuckDBPyConnection) -> None:
    """The policy keeps each offer's whole covariance (``d x d``, row-major, in ``covariance``);
    a diagonal (v1) state becomes the diagonal matrix ``1 / precision`` of the same posterior."""
    con.execute("ALTER TABLE bandit_state ADD COLUMN covariance DOUBLE[]")
    rows = con.execute("SELECT offer_id, model, precision FROM bandit_state "
                       "WHERE model = 'thompson-logistic v1'").fetchall()
    for offer_id, model, precision in rows:
        d = len(precision)
        cov = [1.0 / precision[i] if i == j else 0.0 for i in range(d) for j in range(d)]
        con.execute("UPDATE bandit_state SET covariance = ?, model = 'thompson-logistic v2' "
                    "WHERE offer_id = ? AND model = ?", [cov, offer_id, model])


SCHEMA = Schema(
    "customize",
    (
        Migration(1, "offers, recommendations, purchase cycles, decisions, responses, bandit", _V1),
        Migration(2, "configurations: configured products per customer (mass customization)", _V2),
        Migration(3, "index: recommendations by customer", _V3),
        Migration(4, "bandit_state: the full covariance per offer (diagonal states migrated)",
                  _v4_full_covariance),
        Migration(5, "index: purchase cycles by customer", _V5),
    ),
)
