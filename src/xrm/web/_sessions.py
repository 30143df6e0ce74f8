"""Signed session cookies and CSRF tokens (HMAC-SHA256; nothing secret is kept in the cookie).

A session cookie holds the user name, the user's ``session_epoch``, a random session id and an
expiry, signed with the console key. A CSRF token is the HMAC of the session id: forms carry it,
and a POST whose token does not match its session is refused (the synchroniser-token pattern).

    >>> signer = Signer(b"k" * 32)
    >>> signer.unsign(signer.sign({"u": "anna"}), max_age=60)["u"]
    'anna'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

__all__ = ["SESSION_SECONDS", "Signer", "console_key", "new_session_id"]

SESSION_SECONDS = 12 * 3600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


class Signer:
    """Signs small JSON payloads: ``payload.timestamp.signature``, all URL-safe."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the console key must have at least 32 bytes")
        self._key = key

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{data}".encode(), hashlib.sha256).digest())

    def sign(self, payload: dict[str, Any], *, now: float | None = None) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        stamp = str(int(time.time() if now is None else now))
        return f"{body}.{stamp}.{self._mac('cookie', body + '.' + stamp)}"

    def unsign(self, token: str | None, *, max_age: int, now: float | None = None) -> dict[str, Any] | None:
        """The payload, or None when the token is missing, forged, malformed or older than max_age."""
        if not token or token.count(".") != 2:
            return None
        body, stamp, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac("cookie", body + "." + stamp)):
            return None
        try:
            age = (time.time() if now is None else now) - int(stamp)
            payload = json.loads(_unb64(body))
        except (ValueError, json.JSONDecodeError):
            return None
        if not 0 <= age <= max_age or not isinstance(payload, dict):
            return None
        return payload

    def csrf_token(self, session_id: str) -> str:
        return self._mac("csrf", session_id)

    def check_csrf(self, session_id: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session_id), str(token))


def console_key(store: Any) -> bytes:
    """The key: derived from ``settings.secret_key`` when set, else the store's own random key."""
    secret = store.settings.secret_key
    if secret is not None:
        return hmac.new(secret.get_secret_value().encode(), b"xrm console sessions", hashlib.sha256).digest()
    rows = store.sql("SELECT key FROM console_secret LIMIT 1").fetchall()
    return bytes.fromhex(rows[0][0])
