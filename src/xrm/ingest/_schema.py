"""Tables owned by ingest: events (Segment-spec shaped), order lines, records, loads, rejects."""

from __future__ import annotations

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- One row per Segment-spec call (identify, track, page, screen, group, alias).
-- message_id makes ingestion idempotent; the columns after `context` are extracted from
-- properties for the e-commerce spec (`Order Completed`) so batch analytics need no JSON parsing.
CREATE TABLE events (
    message_id    VARCHAR PRIMARY KEY,
    type          VARCHAR NOT NULL,          -- identify | track | page | screen | group | alias
    event         VARCHAR,                   -- track: event name, e.g. 'Order Completed'
    name          VARCHAR,                   -- page / screen name
    user_id       VARCHAR,
    anonymous_id  VARCHAR,
    group_id      VARCHAR,                   -- group calls
    previous_id   VARCHAR,                   -- alias calls
    ts            TIMESTAMP NOT NULL,        -- the event's `timestamp`, UTC
    received_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    source        VARCHAR,                   -- which system sent it (file name or write key's source)
    properties    JSON,
    traits        JSON,
    context       JSON,
    order_id      VARCHAR,
    revenue       DOUBLE,
    currency      VARCHAR,
    load_id       VARCHAR
);

-- Segment e-commerce spec products[] of `Order Completed`, one row per product.
CREATE TABLE order_lines (
    message_id    VARCHAR NOT NULL,
    line_no       INTEGER NOT NULL,
    order_id      VARCHAR,
    product_id    VARCHAR,
    sku           VARCHAR,
    name          VARCHAR,
    category      VARCHAR,
    price         DOUBLE,
    quantity      DOUBLE,
    PRIMARY KEY (message_id, line_no)
);

-- A source system's row about a party (web-shop account, loyalty card, newsletter, CRM ...).
CREATE TABLE records (
    record_id     VARCHAR PRIMARY KEY,       -- source || ':' || source_key
    source        VARCHAR NOT NULL,
    source_key    VARCHAR NOT NULL,
    party_kind    VARCHAR NOT NULL DEFAULT 'person',   -- person | organisation
    title         VARCHAR,
    first_name    VARCHAR,
    last_name     VARCHAR,
    organisation  VARCHAR,
    birth_date    DATE,
    gender        VARCHAR,
    email         VARCHAR,
    phone         VARCHAR,
    street        VARCHAR,
    house_number  VARCHAR,
    postcode      VARCHAR,
    city          VARCHAR,
    country       VARCHAR,
    loyalty_card  VARCHAR,
    account_id    VARCHAR,
    user_id       VARCHAR,                   -- the id this system uses as Segment userId, if any
    updated_at    TIMESTAMP,
    extra         JSON,                      -- unmapped source columns, kept for lineage
    load_id       VARCHAR
);

-- One row per `xrm load` of one file.
CREATE TABLE loads (
    load_id       VARCHAR PRIMARY KEY,
    file          VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,          -- events | records
    source        VARCHAR,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    rows_read     BIGINT,
    rows_loaded   BIGINT,
    rows_duplicate BIGINT,
    rows_rejected BIGINT,
    status        VARCHAR NOT NULL           -- running | done | failed
);

-- Bad rows kept aside with their reason; valid rows around them are loaded.
CREATE TABLE rejected_rows (
    load_id       VARCHAR NOT NULL,
    file          VARCHAR NOT NULL,
    line          BIGINT,                    -- 1-based line (CSV/JSONL) or row number (Parquet)
    field         VARCHAR,
    value         VARCHAR,
    reason        VARCHAR NOT NULL,
    raw           VARCHAR,                   -- the row as read, for repair and reload
    rejected_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

# Look-ups by person (the console's Customer 360 and timeline, GDPR export and erasure): DuckDB
# uses an index only for a single-column equality or IN filter, including the IN filter a join
# with a small build side pushes into the scan, so each is a point look-up whatever the store's size.
_V2 = """
CREATE INDEX events_user_id ON events (user_id);
CREATE INDEX events_anonymous_id ON events (anonymous_id);
CREATE INDEX events_previous_id ON events (previous_id);
CREATE INDEX order_lines_message_id ON order_lines (message_id);
CREATE INDEX records_user_id ON records (user_id);
"""

SCHEMA = Schema(
    "ingest",
    (
        Migration(1, "events, order lines, records, loads, rejected rows", _V1),
        Migration(2, "indexes: events by user, anonymous and previous id, order lines by event, records by "
                     "user id", _V2),
    ),
)
