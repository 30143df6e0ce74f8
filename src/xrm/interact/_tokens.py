"""Signed, expiring tokens for links in messages (double opt-in, unsubscribe, pixel, click).

A token is ``base64url(JSON payload) . base64url(HMAC-SHA256(secret, kind || '.' || payload))``;
the kind is signed with it, so an open-pixel token cannot be replayed as an unsubscribe.

    >>> t = sign_token("k" * 32, "unsubscribe", {"m": "abc"})
    >>> verify_token("k" * 32, t, "unsubscribe")["m"]
    'abc'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from xrm.exceptions import ConfigError, InputError

__all__ = ["secret_of", "sign_token", "verify_token"]

MIN_SECRET = 32


def secret_of(settings: Any, field: str = "secret_key") -> str:
    """The secret setting ``field`` as text; a clear :class:`ConfigError` when unset or short."""
    value = getattr(settings, field, None)
    text = value.get_secret_value() if value is not None and hasattr(value, "get_secret_value") else value
    if not text or len(text) < MIN_SECRET:
        raise ConfigError(
            f"setting {field} is {'unset' if not text else f'{len(text)} characters'}: signed links "
            f"need a secret of at least {MIN_SECRET} characters. Set XRM_{field.upper()} (e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`) or put it in xrm.toml"
        )
    return str(text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, kind: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{kind}.{body}".encode(), hashlib.sha256).digest())


def sign_token(
    secret: str, kind: str, payload: dict[str, Any], *, expires_at: datetime | None = None
) -> str:
    """A URL-safe token for ``payload``; it stops verifying after ``expires_at`` (UTC)."""
    data = dict(payload)
    if expires_at is not None:
        data["x"] = int(_as_utc(expires_at).timestamp())
    body = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, kind, body)}"


def verify_token(
    secret: str, token: str, kind: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """The payload of a valid token; :class:`InputError` saying why when forged, mangled or expired."""
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(mac, _mac(secret, kind, body)):
        raise InputError(
            f"{kind} token {token[:16]!r}... is not valid: its signature does not match (the link "
            "was altered, cut short, or signed with another secret_key); ask for a new link"
        )
    payload: dict[str, Any] = json.loads(_unb64(body))
    expiry = payload.get("x")
    moment = _as_utc(now or datetime.now(UTC))
    if expiry is not None and moment.timestamp() > expiry:
        when = datetime.fromtimestamp(expiry, UTC).isoformat(timespec="seconds")
        raise InputError(f"{kind} token expired at {when}; ask for a new link")
    return payload


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
