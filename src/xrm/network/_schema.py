"""Tables owned by network: parties, typed relationships, conversation posts, traits, rejects."""

from __future__ import annotations

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- Parties of any kind.  party_id is the key used in events and records (Segment userId) or, when
-- identity resolution is switched on, the profile id; handles of unlinked authors start with '@'.
CREATE TABLE parties (
    party_id      VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL DEFAULT 'person',   -- person | organisation
    roles         VARCHAR[],                           -- customer, prospect, partner, supplier ...
    name          VARCHAR,
    origin        VARCHAR NOT NULL,                    -- file | derived
    source        VARCHAR,                             -- file name or derivation rule
    updated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Typed, directed, weighted, time-stamped relationships: src <rel_type> dst ('A referred B').
-- Symmetric types (household, colleague, partner-of, co-purchased) are stored once, src < dst.
CREATE TABLE relationships (
    src           VARCHAR NOT NULL,
    dst           VARCHAR NOT NULL,
    rel_type      VARCHAR NOT NULL,
    weight        DOUBLE NOT NULL DEFAULT 1.0,
    ts            TIMESTAMP,
    origin        VARCHAR NOT NULL,                    -- file | derived
    source        VARCHAR NOT NULL,                    -- file name or derivation rule
    evidence      VARCHAR,                             -- why: the event, address key, product ...
    PRIMARY KEY (src, dst, rel_type, source)
);

-- Consumer-to-consumer conversation: one row per post or reply.
CREATE TABLE posts (
    post_id       VARCHAR PRIMARY KEY,
    platform      VARCHAR NOT NULL,
    author_handle VARCHAR NOT NULL,                    -- lower-case, with '@'
    text          VARCHAR NOT NULL,
    lang          VARCHAR,                             -- de | en (given or detected)
    reply_to      VARCHAR,
    mentions      VARCHAR[],                           -- lower-case handles, with '@'
    ts            TIMESTAMP NOT NULL,
    sentiment     DOUBLE,                              -- -1 .. 1 (lexicon compound score)
    source        VARCHAR
);

-- Which party a social handle belongs to (from files or identify-call traits).
CREATE TABLE handles (
    platform      VARCHAR NOT NULL,                    -- twitter, instagram ... or '*' for any
    handle        VARCHAR NOT NULL,                    -- lower-case, with '@'
    party_id      VARCHAR NOT NULL,
    source        VARCHAR,
    PRIMARY KEY (platform, handle)
);

-- Per-party network metrics and values of the latest analysis.
CREATE TABLE network_traits (
    party_id         VARCHAR PRIMARY KEY,
    degree_in        BIGINT,
    degree_out       BIGINT,
    pagerank         DOUBLE,
    eigenvector      DOUBLE,
    coreness         BIGINT,
    community        BIGINT,
    betweenness      DOUBLE,
    reach_1          BIGINT,
    reach_2          BIGINT,
    own_value        DOUBLE,
    referred_value   DOUBLE,
    influenced_value DOUBLE,
    network_value    DOUBLE,
    run_id           VARCHAR,
    computed_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per analysis, with its settings and summary.
CREATE TABLE network_runs (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    summary       JSON
);

-- Bad rows of relationship, party, handle and post files, kept with the reason.
CREATE TABLE network_rejects (
    file          VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,                    -- relationships | parties | handles | posts
    line          BIGINT,
    field         VARCHAR,
    value         VARCHAR,
    reason        VARCHAR NOT NULL,
    raw           VARCHAR,
    rejected_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

# A party's relationships in either direction (Customer 360's neighbours): DuckDB uses
# single-column indexes only, so the primary key (src, dst, rel_type, source) does not serve them.
_V2 = """
CREATE INDEX relationships_src ON relationships (src);
CREATE INDEX relationships_dst ON relationships (dst);
"""

SCHEMA = Schema(
    "network",
    (
        Migration(1, "parties, relationships, posts, handles, network traits, rejects", _V1),
        Migration(2, "indexes: relationships by src and by dst", _V2),
    ),
)
