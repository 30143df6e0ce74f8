"""Tables owned by identify: normalised records, the identity graph, profiles and their audit."""

from __future__ import annotations

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- Source records with every identifier and attribute normalised for matching (one row per record).
CREATE TABLE normalized_records (
    record_id         VARCHAR PRIMARY KEY,
    source            VARCHAR NOT NULL,
    title             VARCHAR,                 -- 'Dr.', 'Prof. Dr.' ... taken out of the name fields
    first_name        VARCHAR,                 -- display form: NFC, trimmed, title removed
    last_name         VARCHAR,
    first_name_key    VARCHAR,                 -- folded for matching: mueller, strauss, jose
    first_name_canon  VARCHAR,                 -- folded, nickname resolved: hans -> johannes
    last_name_key     VARCHAR,
    birth_date        DATE,
    email             VARCHAR,                 -- lower-cased, trimmed, optional provider rules
    email_reason      VARCHAR,                 -- why the raw e-mail was not kept (invalid, blocked)
    phone             VARCHAR,                 -- E.164
    phone_reason      VARCHAR,
    street_key        VARCHAR,                 -- folded, 'Straße'/'Str.' -> 'str', no spaces
    house_number      VARCHAR,                 -- '12a', '12-14'
    postcode          VARCHAR,
    postcode_reason   VARCHAR,
    city_key          VARCHAR,
    country           VARCHAR,
    loyalty_card      VARCHAR,
    account_id        VARCHAR,
    user_id           VARCHAR
);

-- One row per run of the batch resolution (and one per unmerge, which re-resolves).
CREATE TABLE identity_runs (
    run_id            INTEGER PRIMARY KEY,
    kind              VARCHAR NOT NULL,        -- batch | unmerge
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP,
    rules             JSON,
    summary           JSON
);

-- Resolved parties. Ids are stable: a profile keeps its id across runs; a merged one points on.
CREATE TABLE profiles (
    profile_id        BIGINT PRIMARY KEY,
    status            VARCHAR NOT NULL,        -- active | merged | retired
    merged_into       BIGINT,
    created_run       INTEGER,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    n_records         BIGINT NOT NULL DEFAULT 0,
    n_identifiers     BIGINT NOT NULL DEFAULT 0
);

-- Glue identifiers (graph nodes): each belongs to exactly one profile. Records are nodes too
-- (id_type 'record'), so a record without any glue identifier still gets its own profile.
CREATE TABLE identifiers (
    id_type           VARCHAR NOT NULL,
    id_value          VARCHAR NOT NULL,
    profile_id        BIGINT NOT NULL,
    first_seen        TIMESTAMP,
    last_seen         TIMESTAMP,
    n_seen            BIGINT,
    PRIMARY KEY (id_type, id_value)
);

-- Evidence identifiers (e-mail, phone ...): may be shared by several profiles (a family address).
CREATE TABLE profile_evidence (
    profile_id        BIGINT NOT NULL,
    id_type           VARCHAR NOT NULL,
    id_value          VARCHAR NOT NULL,
    n_seen            BIGINT,
    PRIMARY KEY (profile_id, id_type, id_value)
);

-- Graph edges: two identifiers seen in one record or event, linked or dropped by a rule.
CREATE TABLE identity_links (
    type_a            VARCHAR NOT NULL,
    value_a           VARCHAR NOT NULL,
    type_b            VARCHAR NOT NULL,
    value_b           VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,        -- linked | dropped
    occurrence        VARCHAR NOT NULL,        -- 'record:<record_id>' or 'event:<message_id>'
    ts                TIMESTAMP,
    reason            VARCHAR NOT NULL,        -- the rule that allowed or refused the link
    run_id            INTEGER NOT NULL
);

-- Values seen but never used as identifiers (blocked list, invalid), with how often.
CREATE TABLE rejected_identifiers (
    id_type           VARCHAR NOT NULL,
    id_value          VARCHAR NOT NULL,
    reason            VARCHAR NOT NULL,
    n_seen            BIGINT,
    PRIMARY KEY (id_type, id_value)
);

CREATE TABLE profile_records (
    record_id         VARCHAR PRIMARY KEY,
    profile_id        BIGINT NOT NULL
);

CREATE TABLE event_profiles (
    message_id        VARCHAR PRIMARY KEY,
    profile_id        BIGINT NOT NULL
);

-- Every create, merge, split, unmerge and retirement of a profile, with its reason.
CREATE SEQUENCE merge_log_seq;
CREATE TABLE merge_log (
    log_id            BIGINT PRIMARY KEY DEFAULT nextval('merge_log_seq'),
    run_id            INTEGER,
    logged_at         TIMESTAMP NOT NULL,
    action            VARCHAR NOT NULL,        -- merge | split | unmerge | retire
    profile_id        BIGINT NOT NULL,         -- the surviving / new profile
    other_profile_id  BIGINT,                  -- the absorbed / old profile
    reason            VARCHAR NOT NULL,
    details           JSON
);

-- Decisions by people that every later run obeys: 'separate' keeps two sets of identifiers apart.
CREATE TABLE identity_overrides (
    override_id       INTEGER PRIMARY KEY,
    kind              VARCHAR NOT NULL,        -- separate
    side_a            JSON NOT NULL,           -- [[id_type, id_value], ...]
    side_b            JSON NOT NULL,
    reason            VARCHAR NOT NULL,
    decided_by        VARCHAR,
    decided_at        TIMESTAMP NOT NULL,
    active            BOOLEAN NOT NULL DEFAULT true
);
"""

_V2 = """
-- Record pairs scored by the probabilistic linkage (Splink) at or above the review threshold.
CREATE TABLE linkage_pairs (
    record_a          VARCHAR NOT NULL,        -- record_a < record_b
    record_b          VARCHAR NOT NULL,
    match_weight      DOUBLE NOT NULL,         -- log2 Bayes factor, prior included
    match_probability DOUBLE NOT NULL,
    weights           JSON NOT NULL,           -- {comparison: partial match weight}
    status            VARCHAR NOT NULL,        -- linked | refused | review | same | decided
    reason            VARCHAR,                 -- why linked or refused (rule, conflict, decision)
    model_id          INTEGER                  -- the linkage model (run) that scored the pair
);  -- no primary key: rewritten whole by each run, unique by construction (cheaper at 1M pairs)

-- Grey-zone pairs for a person to decide; decisions are kept and obeyed by every later run.
CREATE TABLE review_queue (
    record_a          VARCHAR NOT NULL,
    record_b          VARCHAR NOT NULL,
    match_weight      DOUBLE,
    match_probability DOUBLE,
    weights           JSON,
    status            VARCHAR NOT NULL,        -- pending | accepted | rejected
    queued_at         TIMESTAMP NOT NULL,
    decided_by        VARCHAR,
    decided_at        TIMESTAMP,
    reason            VARCHAR,
    PRIMARY KEY (record_a, record_b)
);

-- The linkage model of each run (trained or packaged), so learned weights can be checked.
CREATE TABLE linkage_models (
    model_id          INTEGER PRIMARY KEY,     -- one per linkage run
    trained_at        TIMESTAMP NOT NULL,
    n_records         BIGINT NOT NULL,
    source            VARCHAR NOT NULL,        -- trained | packaged | trained+packaged
    parameters        JSON NOT NULL,           -- lambda, m, u and weight per comparison level
    summary           JSON
);

-- The best value of each attribute per profile, with the record it came from (lineage).
CREATE TABLE golden_records (
    profile_id        BIGINT NOT NULL,
    attribute         VARCHAR NOT NULL,        -- first_name, last_name, birth_date, address, email, phone
    value             VARCHAR,
    value_json        JSON,                    -- structured value (the address parts)
    rule              VARCHAR NOT NULL,        -- the survivorship rule that chose it
    source            VARCHAR,
    record_id         VARCHAR,
    record_updated_at TIMESTAMP,
    n_records         INTEGER,                 -- records of the profile holding this value
    n_candidates      INTEGER                  -- distinct values the profile holds
);  -- rebuilt whole by each run: no primary key to maintain (one row per profile and attribute)
"""

# Events as the capabilities above see them: each resolved to its person. Value, needs and
# recommendations read this view with customer_key="profile_id", so a customer who shops under a
# web account, a loyalty card and a newsletter address is one customer. A view, not a copy: it
# costs nothing to keep current when event_profiles changes.
_V3 = """
CREATE VIEW customer_events AS
SELECT e.*, CAST(ep.profile_id AS VARCHAR) AS profile_id
FROM events e JOIN event_profiles ep USING (message_id);
"""

# Look-ups by profile (Customer 360, "why one person", the timeline, GDPR) and by identifier value
# (search, the online path): DuckDB uses single-column indexes only, so the composite primary keys
# (id_type, id_value) and (profile_id, id_type, id_value) do not serve them.
_V4 = """
CREATE INDEX identifiers_profile_id ON identifiers (profile_id);
CREATE INDEX identifiers_id_value ON identifiers (id_value);
CREATE INDEX event_profiles_profile_id ON event_profiles (profile_id);
CREATE INDEX profile_records_profile_id ON profile_records (profile_id);
CREATE INDEX profile_evidence_profile_id ON profile_evidence (profile_id);
CREATE INDEX profile_evidence_id_value ON profile_evidence (id_value);
CREATE INDEX identity_links_value_a ON identity_links (value_a);
CREATE INDEX identity_links_value_b ON identity_links (value_b);
CREATE INDEX golden_records_profile_id ON golden_records (profile_id);
CREATE INDEX linkage_pairs_record_a ON linkage_pairs (record_a);
CREATE INDEX linkage_pairs_record_b ON linkage_pairs (record_b);
"""

# The event API's writer appends what its commits saw here instead of updating the counters of
# identifiers, profiles and evidence in place (UPDATE ... FROM joins that scan those tables on every
# commit); it folds the rows in every few seconds, at start and at stop (xrm.interact.fold_activity).
_V5 = """
CREATE TABLE identity_activity (
    kind              VARCHAR NOT NULL,        -- identifier | evidence | profile
    profile_id        BIGINT NOT NULL,
    id_type           VARCHAR,                 -- NULL for kind 'profile'
    id_value          VARCHAR,
    n                 BIGINT NOT NULL,         -- times seen (added to n_seen)
    ts                TIMESTAMP NOT NULL       -- when (last_seen, updated_at)
);
"""

# The GDPR export reads the review queue by either record (record_a, record_b): the composite primary
# key serves neither, and each export read the whole queue (30 ms at 200k pairs).
_V6 = """
CREATE INDEX IF NOT EXISTS review_queue_record_a ON review_queue (record_a);
CREATE INDEX IF NOT EXISTS review_queue_record_b ON review_queue (record_b);
"""

SCHEMA = Schema(
    "identify",
    (
        Migration(1, "normalised records, identity graph, profiles, merge log, overrides", _V1),
        Migration(2, "probabilistic linkage pairs, review queue, linkage models, golden records", _V2),
        Migration(3, "customer_events: events with the profile each resolved to", _V3),
        Migration(4, "indexes: the graph, events, records, evidence and golden records by profile", _V4),
        Migration(5, "identity_activity: the event writer's counters, folded in every few seconds", _V5),
        Migration(6, "indexes: the review queue by either record", _V6),
    ),
)
