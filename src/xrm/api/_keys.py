"""API keys in the store: create (secret shown once), list, rotate (with a grace period), revoke.

A token reads ``xrm_<key_id>_<secret>``: ``key_id`` (8 characters) is public and names the key in
listings, audit rows and logs; ``secret`` is 32 random bytes. Only the token's SHA-256 is stored.

Why SHA-256 and not a slow password hash (scrypt, Argon2): a slow hash protects *guessable*
secrets by making each guess expensive. These tokens are 256 random bits, so nobody can guess one
whatever the hash costs; a slow hash would only spend milliseconds of CPU on every API request.
The hash is not keyed with ``settings.secret_key`` either, so changing that secret (it signs
links) does not lock out every client. Comparison is constant-time (``hmac.compare_digest``).

No FastAPI here: the CLI (`xrm keys ...`) and the server use the same functions.

    >>> key, token = create_key(store, "webshop", "write")  # doctest: +SKIP
    >>> verify_token(store, token).scope  # doctest: +SKIP
    'write'
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from xrm.exceptions import InputError, NotFound

if TYPE_CHECKING:
    from xrm.store import Store

__all__ = [
    "SCOPES",
    "ApiKey",
    "create_key",
    "find_key",
    "hash_token",
    "key_count",
    "list_keys",
    "revoke_key",
    "rotate_key",
    "set_limits",
    "verify_token",
]

MAX_EVENT_KB = 32  # the server's limits (Segment's): a key's own may be lower, not higher
MAX_BATCH_KB = 500

# What each scope may do; admin holds every right (docs/api.md "Keys, scopes, audit and limits").
SCOPES: dict[str, frozenset[str]] = {
    "write": frozenset({"write"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"write", "read", "admin"}),
}
_TOKEN = re.compile(r"xrm_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: read aloud without mistakes


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never its secret. ``prefix`` is what a token starts with."""

    key_id: str
    name: str
    scope: str
    workspace: str
    rate_per_s: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None
    secrets: int  # secrets valid now: 2 during a rotation's grace period
    max_event_kb: int | None = None  # None: MAX_EVENT_KB
    max_batch_kb: int | None = None  # None: MAX_BATCH_KB

    @property
    def prefix(self) -> str:
        return f"xrm_{self.key_id}_"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.secrets > 0

    def allows(self, need: str) -> bool:
        return need in SCOPES.get(self.scope, frozenset())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "prefix": self.prefix, "active": self.active}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _new_token(key_id: str) -> str:
    return f"xrm_{key_id}_{secrets.token_urlsafe(32)}"


_SELECT = """
SELECT k.key_id, k.name, k.scope, k.workspace, k.rate_per_s, k.burst, k.created_at, k.revoked_at,
       count(s.secret_hash) FILTER (WHERE s.expires_at IS NULL OR s.expires_at > ?),
       k.max_event_kb, k.max_batch_kb
FROM api_keys k LEFT JOIN api_key_secrets s USING (key_id)
"""
_GROUP = " GROUP BY ALL"


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, scope, space, rate, burst, created, revoked, valid, event_kb, batch_kb = row
    return ApiKey(key_id, name, scope, space, rate, burst, created, revoked, int(valid), event_kb, batch_kb)


def _check_sizes(max_event_kb: int | None, max_batch_kb: int | None) -> None:
    for value, flag, top, what in ((max_event_kb, "--max-event-kb", MAX_EVENT_KB, "per call"),
                                   (max_batch_kb, "--max-batch-kb", MAX_BATCH_KB, "per batch request")):
        if value is not None and not 1 <= value <= top:
            raise InputError(
                f"{flag} {value!r}: a key's size limit is 1 to {top} KB {what} (the server's own limit, "
                f"Segment's); leave it out for {top} KB"
            )


def create_key(
    store: Store,
    name: str,
    scope: str,
    *,
    workspace: str | None = None,
    rate_per_s: float | None = None,
    burst: int | None = None,
    max_event_kb: int | None = None,
    max_batch_kb: int | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its token; the token is returned once and never stored.

    ``max_event_kb`` / ``max_batch_kb`` hold the key's request bodies below the server's 32 KB per
    call and 500 KB per batch (answered 413, like those)."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"key name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            f"letter or digit"
        )
    if scope not in SCOPES:
        raise InputError(f"scope {scope!r} is not known; use one of {', '.join(SCOPES)}")
    space = workspace if workspace is not None else name
    if not _NAME.fullmatch(space):
        raise InputError(f"workspace {space!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    if rate_per_s is not None and not rate_per_s > 0:
        raise InputError(f"rate {rate_per_s!r}: requests per second must be > 0")
    if burst is not None and burst < 1:
        raise InputError(f"burst {burst!r}: must be at least 1 request")
    _check_sizes(max_event_kb, max_batch_kb)
    if store.sql("SELECT 1 FROM api_keys WHERE name = ?", [name]).fetchall():
        raise InputError(f"key name {name!r} is taken; pick another or `xrm keys rotate {name}`")
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    token, now = _new_token(key_id), _now()
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO api_keys (key_id, name, scope, workspace, rate_per_s, burst, created_at, "
            "revoked_at, max_event_kb, max_batch_kb) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            [key_id, name, scope, space, rate_per_s, burst, now, max_event_kb, max_batch_kb],
        )
        tx.execute("INSERT INTO api_key_secrets VALUES (?, ?, ?, NULL)", [hash_token(token), key_id, now])
    return find_key(store, key_id), token


def list_keys(store: Store, *, include_revoked: bool = True) -> list[ApiKey]:
    rows = store.sql(_SELECT + _GROUP + " ORDER BY k.created_at, k.name", [_now()]).fetchall()
    keys = [_key(r) for r in rows]
    return keys if include_revoked else [k for k in keys if k.revoked_at is None]


def key_count(store: Store) -> int:
    """Keys not revoked: zero means a fresh store (see :mod:`xrm.api._auth` for what that allows)."""
    row = store.sql("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def find_key(store: Store, name_or_id: str) -> ApiKey:
    rows = store.sql(
        _SELECT + " WHERE k.key_id = ? OR k.name = ?" + _GROUP, [_now(), name_or_id, name_or_id]
    ).fetchall()
    if not rows:
        raise NotFound(f"API key {name_or_id!r}: no key has that name or id; see `xrm keys list`")
    return _key(rows[0])


def rotate_key(store: Store, name_or_id: str, *, grace_s: float = 0) -> tuple[ApiKey, str]:
    """A new secret for the key; the old one stays valid for ``grace_s`` seconds (0: ends now)."""
    if grace_s < 0:
        raise InputError(f"grace {grace_s!r}: seconds must be 0 or more")
    key = find_key(store, name_or_id)
    if key.revoked_at is not None:
        raise InputError(f"API key {key.name!r} is revoked; create a new one with `xrm keys create`")
    token, now = _new_token(key.key_id), _now()
    ends = now + timedelta(seconds=grace_s)
    with store.transaction() as tx:
        tx.execute(
            "UPDATE api_key_secrets SET expires_at = ? WHERE key_id = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            [ends, key.key_id, ends],
        )
        tx.execute(
            "INSERT INTO api_key_secrets VALUES (?, ?, ?, NULL)", [hash_token(token), key.key_id, now]
        )
    return find_key(store, key.key_id), token


def set_limits(
    store: Store, name_or_id: str, *, max_event_kb: int | None, max_batch_kb: int | None
) -> ApiKey:
    """Set (or, with None, clear back to the server's) a key's size limits; a running server sees
    the change within its key cache's few seconds."""
    _check_sizes(max_event_kb, max_batch_kb)
    key = find_key(store, name_or_id)
    store.sql(
        "UPDATE api_keys SET max_event_kb = ?, max_batch_kb = ? WHERE key_id = ?",
        [max_event_kb, max_batch_kb, key.key_id],
    )
    return find_key(store, key.key_id)


def revoke_key(store: Store, name_or_id: str) -> ApiKey:
    """The key stops working at once, every secret of it; the row stays for the audit log."""
    key = find_key(store, name_or_id)
    if key.revoked_at is None:
        store.sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", [_now(), key.key_id])
    return find_key(store, key.key_id)


def verify_token(store: Store, token: str) -> ApiKey | None:
    """The active key this token belongs to, or None (unknown, revoked, rotated out, malformed)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    key_id, digest = match.group(1), hash_token(token)
    rows = store.sql(
        "SELECT secret_hash FROM api_key_secrets WHERE key_id = ? AND (expires_at IS NULL OR expires_at > ?)",
        [key_id, _now()],
    ).fetchall()
    if not any(hmac.compare_digest(digest, r[0]) for r in rows):
        return None
    key = find_key(store, key_id)
    return key if key.revoked_at is None else None
