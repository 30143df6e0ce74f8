"""Tables owned by the console: users, campaign drafts, an audit log of actions, the cookie key."""

from __future__ import annotations

import secrets

import duckdb

from xrm.store import Migration, Schema

__all__ = ["SCHEMA"]

_V1 = """
-- People who log in to the console. password_hash is 'scrypt$n$r$p$salt$hash' (hashlib.scrypt);
-- session_epoch goes up on a password change or a disable, so older session cookies stop working.
CREATE TABLE console_users (
    username       VARCHAR PRIMARY KEY,
    password_hash  VARCHAR NOT NULL,
    role           VARCHAR NOT NULL,        -- admin | marketer | viewer
    lang           VARCHAR NOT NULL,        -- de | en
    session_epoch  INTEGER NOT NULL DEFAULT 0,
    disabled       BOOLEAN NOT NULL DEFAULT false,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

-- Campaigns drafted in the console (interact's `campaigns` table holds those launched); the
-- definition is the dict campaign_from_dict reads, plus the audience choice it was built from.
CREATE TABLE console_campaigns (
    campaign_id    VARCHAR PRIMARY KEY,
    definition     JSON NOT NULL,
    created_by     VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

-- Who did what in the console: launches, erasures, exports, identity review decisions.
CREATE SEQUENCE console_audit_seq;
CREATE TABLE console_audit (
    audit_id       BIGINT PRIMARY KEY DEFAULT nextval('console_audit_seq'),
    logged_at      TIMESTAMP NOT NULL,
    username       VARCHAR NOT NULL,
    action         VARCHAR NOT NULL,        -- launch | erase | export | review | nba | user
    target         VARCHAR,
    details        JSON
);
"""


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_V1)
    # The key that signs session cookies when settings.secret_key is not set: made once per store,
    # so sessions survive a restart of `xrm serve`.
    con.execute("CREATE TABLE console_secret (key VARCHAR NOT NULL)")
    con.execute("INSERT INTO console_secret VALUES (?)", [secrets.token_hex(32)])


SCHEMA = Schema("web", (Migration(1, "console users, campaign drafts, audit log, cookie key", _v1),))
