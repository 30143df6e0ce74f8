"""Tables owned by the API: its keys (stored hashed) and the audit log of personal-data access.

Imports only :mod:`xrm.store` and duckdb, so the store can load it without FastAPI.
"""

from __future__ import annotations

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- API keys. The secret itself is never stored: api_key_secrets holds its SHA-256 (see _keys.py
-- for why a fast hash is right for random 256-bit tokens). A key has one secret, or two for the
-- grace period after a rotation (the old one with expires_at set).
CREATE TABLE api_keys (
    key_id         VARCHAR PRIMARY KEY,     -- 8 characters, the visible part of the token
    name           VARCHAR NOT NULL UNIQUE,
    scope          VARCHAR NOT NULL,        -- write | read | admin
    workspace      VARCHAR NOT NULL,        -- the source name events sent with it are stored under
    rate_per_s     DOUBLE,                  -- NULL: settings.api_rate_per_s
    burst          INTEGER,                 -- NULL: settings.api_rate_burst
    created_at     TIMESTAMP NOT NULL,
    revoked_at     TIMESTAMP
);
CREATE TABLE api_key_secrets (
    secret_hash    VARCHAR PRIMARY KEY,     -- hex SHA-256 of the whole token
    key_id         VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP                -- NULL: valid until rotated or revoked
);

-- Who read whose personal data over the API, and who exported, erased or launched (and why).
CREATE SEQUENCE api_audit_seq;
CREATE TABLE api_audit (
    audit_id       BIGINT PRIMARY KEY DEFAULT nextval('api_audit_seq'),
    logged_at      TIMESTAMP NOT NULL,
    key_id         VARCHAR NOT NULL,
    key_name       VARCHAR NOT NULL,
    action         VARCHAR NOT NULL,        -- profile.read | timeline.read | profile.lookup | key.* ...
    target         VARCHAR,                 -- profile id(s) or key id
    purpose        VARCHAR,                 -- X-Xrm-Purpose header or ?purpose=
    method         VARCHAR NOT NULL,
    path           VARCHAR NOT NULL
);
"""

_V2 = """
-- Size limits per key, in KB: at most Segment's 32 KB per call and 500 KB per batch request (the
-- server's own limits); NULL: those. A key for an untrusted source (a browser's) can be held lower.
ALTER TABLE api_keys ADD COLUMN max_event_kb INTEGER;
ALTER TABLE api_keys ADD COLUMN max_batch_kb INTEGER;
"""

SCHEMA = Schema(
    "api",
    (
        Migration(1, "API keys (hashed), key secrets, audit log", _V1),
        Migration(2, "size limits per API key (max_event_kb, max_batch_kb)", _V2),
    ),
)
