"""Tables owned by interact: consents, suppressions, campaigns, decisions, the outbox, deliveries.

Responses (sent, opened, clicked, unsubscribed, converted ...) are not kept here: they go back into
ingest's ``events`` table as Segment track events, so they land on the timeline.
"""

from __future__ import annotations

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- Consent history, append-only: the valid consent of (customer, channel, purpose) at time t is
-- the latest row given at or before t; it is valid when granted and not expired.
CREATE SEQUENCE consent_seq;
CREATE TABLE consents (
    seq               BIGINT PRIMARY KEY DEFAULT nextval('consent_seq'),
    customer          VARCHAR NOT NULL,
    channel           VARCHAR NOT NULL,      -- email | sms | phone | post | push | webhook
    purpose           VARCHAR NOT NULL,      -- marketing | service | profiling
    status            VARCHAR NOT NULL,      -- granted | denied | revoked | pending
    source            VARCHAR NOT NULL,      -- where it was given: web form, call centre, import ...
    given_at          TIMESTAMP NOT NULL,    -- when it was given (UTC)
    expires_at        TIMESTAMP,             -- NULL: does not expire
    proof             JSON,                  -- what shows it: form URL, IP, token id, event id ...
    event_message_id  VARCHAR UNIQUE,        -- the `Consent Updated` event it is, or came from
    recorded_at       TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE INDEX consents_key ON consents (customer, channel, purpose);

-- One-way salted hashes of erased people's identifiers: never contacted or re-created again.
CREATE TABLE suppressions (
    hash              VARCHAR PRIMARY KEY,   -- sha256(salt || '|' || kind || '|' || normalised value)
    kind              VARCHAR NOT NULL,      -- customer | email | phone | anonymous_id | record
    reason            VARCHAR NOT NULL,
    created_at        TIMESTAMP NOT NULL
);
-- The per-store salt of those hashes (one row, made when the store is created).
CREATE TABLE suppression_salt (salt VARCHAR NOT NULL);
INSERT INTO suppression_salt SELECT md5(random()::VARCHAR || gen_random_uuid()::VARCHAR)
                                    || md5(random()::VARCHAR || gen_random_uuid()::VARCHAR);

CREATE TABLE campaigns (
    campaign_id       VARCHAR PRIMARY KEY,
    name              VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,      -- batch | triggered
    channel           VARCHAR NOT NULL,
    purpose           VARCHAR NOT NULL,
    priority          INTEGER NOT NULL,
    control_share     DOUBLE NOT NULL,
    seed              BIGINT NOT NULL,
    definition        JSON NOT NULL,         -- template, trigger or audience, offer: how to re-run it
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE campaign_runs (
    run_id            VARCHAR PRIMARY KEY,
    campaign_id       VARCHAR NOT NULL,
    started_at        TIMESTAMP NOT NULL,    -- the run's clock ("now")
    dry_run           BOOLEAN NOT NULL,
    audience          BIGINT NOT NULL,
    summary           JSON NOT NULL          -- counts per outcome
);

-- The decision about each customer a run considered: target (messaged) or control (held out),
-- or why not (no consent, capped, lost arbitration ...). Written in the same transaction as the
-- message it decides (the transactional outbox).
CREATE TABLE campaign_members (
    campaign_id       VARCHAR NOT NULL,
    run_id            VARCHAR NOT NULL,
    customer          VARCHAR NOT NULL,
    trigger_key       VARCHAR,               -- triggered campaigns: what fired (fires once per key)
    grp               VARCHAR,               -- target | control | NULL (not eligible)
    outcome           VARCHAR NOT NULL,      -- queued | control | dry_run | no_consent | suppressed
                                             -- | no_address | capped | lost_arbitration
    offer_id          VARCHAR,
    value             DOUBLE,
    decided_at        TIMESTAMP NOT NULL,
    message_id        VARCHAR,
    PRIMARY KEY (campaign_id, run_id, customer)
);

-- The outbox: one row per message; message_id is also the Message-ID / idempotency key.
CREATE TABLE messages (
    message_id        VARCHAR PRIMARY KEY,
    campaign_id       VARCHAR,
    run_id            VARCHAR,
    customer          VARCHAR NOT NULL,
    channel           VARCHAR NOT NULL,
    purpose           VARCHAR NOT NULL,
    address           VARCHAR,               -- e-mail, phone, push token, postal address (JSON text)
    timezone          VARCHAR,               -- the customer's, for quiet hours at send time
    subject           VARCHAR,
    body_text         VARCHAR,
    body_html         VARCHAR,
    fields            JSON,                  -- personalised fields (letters, call lists, webhooks)
    offer_id          VARCHAR,
    cost              DOUBLE NOT NULL DEFAULT 0,
    status            VARCHAR NOT NULL,      -- queued | sending | sent | retry | failed | bounced
                                             -- | blocked
    attempts          INTEGER NOT NULL DEFAULT 0,
    attempt_id        VARCHAR,               -- the attempt that holds it while `sending`
    not_before        TIMESTAMP NOT NULL,    -- quiet hours and retry backoff push this forward
    created_at        TIMESTAMP NOT NULL,
    sent_at           TIMESTAMP,
    last_error        VARCHAR
);

-- Every delivery attempt of a message and how it ended.
CREATE TABLE delivery_attempts (
    attempt_id        VARCHAR PRIMARY KEY,
    message_id        VARCHAR NOT NULL,
    attempt           INTEGER NOT NULL,
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP,
    outcome           VARCHAR,               -- sent | retry | failed | bounced | blocked | NULL (killed)
    detail            VARCHAR
);
"""

# Which key a message's customer is, so the send-time gate looks consent up the same way the
# campaign did: a records column (user_id) or an Identify profile id (consent of all its user ids).
_V2 = """
ALTER TABLE messages ADD COLUMN customer_key VARCHAR DEFAULT 'user_id';
"""

# Scheduled campaigns (interact/_schedules.py): a definition, an interval, the next due time; and
# each occurrence's claim, so that one occurrence runs at most once, also across a killed process.
_V3 = """
CREATE TABLE campaign_schedules (
    schedule_id       VARCHAR PRIMARY KEY,
    campaign_id       VARCHAR NOT NULL,
    definition        JSON NOT NULL,         -- what campaign_from_dict reads
    every_seconds     BIGINT NOT NULL,
    next_run_at       TIMESTAMP NOT NULL,
    enabled           BOOLEAN NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE campaign_schedule_runs (
    schedule_id       VARCHAR NOT NULL,
    due_at            TIMESTAMP NOT NULL,
    claimed_at        TIMESTAMP NOT NULL,
    status            VARCHAR NOT NULL,      -- claimed | running | done | failed
    run_id            VARCHAR,               -- campaign_runs.run_id once done
    finished_at       TIMESTAMP,
    error             VARCHAR,
    PRIMARY KEY (schedule_id, due_at)
);
"""

# One customer's consents (Customer 360, the timeline, the send gate): DuckDB uses single-column
# indexes only, so consents_key (customer, channel, purpose) does not serve a look-up by customer.
_V4 = """
CREATE INDEX consents_customer ON consents (customer);
"""

SCHEMA = Schema(
    "interact",
    (
        Migration(1, "consents, suppressions, campaigns, decisions, outbox, delivery attempts", _V1),
        Migration(2, "messages.customer_key: user_id or profile_id", _V2),
        Migration(3, "campaign schedules and their claimed occurrences", _V3),
        Migration(4, "index: consents by customer", _V4),
    ),
)
