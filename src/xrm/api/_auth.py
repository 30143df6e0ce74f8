"""Who is calling and may they: API keys, scopes, per-key rate limits, the audit of reads.

Every /v1 router is mounted with ``dependencies=[Depends(require(SCOPE))]`` (see ``_app.py``):

- ``require("write")``: the Segment event endpoints (write or admin keys);
- ``require("read")``: profiles, timeline, decisions (read or admin keys);
- ``require("admin")``: keys, audit log, and export, erase, campaign launch when they get endpoints.

The key comes as the HTTP Basic user name (empty password; the Segment clients send it so) or as
``Authorization: Bearer KEY``; the event endpoints also take ``writeKey`` in the body (Segment),
so ``require("write")`` without a header leaves the check to :func:`event_source`. Missing,
unknown, revoked or rotated-out key: 401; a key of the wrong scope: 403; over the key's rate:
429 with ``Retry-After``. All in the one error shape of ``_errors.py``.

Keys are the store's (``xrm keys create``, hashed; :mod:`xrm.api._keys`) and, for writing only,
the ``write_keys`` setting. **A store with no key at all** (a fresh one, ``make demo``) accepts
any write key as before, with a warning, but reads no personal data: 401 ``no_api_keys`` names
``xrm keys create``. The console is not affected (it has its own logins).

Lookups are cached for :data:`CACHE_S` seconds: revoking or rotating over HTTP clears the cache at
once; the grace period of a rotated secret may run up to that much longer.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Query, Request

from xrm.api._audit import MAX_PURPOSE, AuditWriter
from xrm.api._body import BATCH_LIMIT, EVENT_LIMIT
from xrm.api._errors import ApiError
from xrm.api._keys import SCOPES, hash_token, key_count, verify_token
from xrm.api._limits import RateLimiter, check_key_sizes, retry_after_header
from xrm.config import Settings

if TYPE_CHECKING:
    from xrm.store import Store

__all__ = [
    "CACHE_S", "KeyRing", "Principal", "audit", "audited", "credential_of", "event_source", "purpose_of",
    "require",
]

log = logging.getLogger("xrm.api")

CACHE_S = 5.0
_CACHE_MAX = 10_000
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="xrm"'}


@dataclass(frozen=True)
class Principal:
    """The caller: a stored key, a ``write_keys`` entry, or anyone (a store with no keys)."""

    key_id: str
    name: str
    scope: str
    workspace: str
    rate_per_s: float
    burst: int
    max_event_bytes: int = EVENT_LIMIT  # a key's own size limits (lower only; docs/api.md)
    max_batch_bytes: int = BATCH_LIMIT

    def allows(self, need: str) -> bool:
        return need in SCOPES.get(self.scope, frozenset())


_ANYONE = Principal("open", "open", "write", "api", float("inf"), 1)  # no keys: today's behaviour


class KeyRing:
    """Tokens to principals (stored keys, then ``write_keys``), briefly cached; one bucket per key."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None  # set when the app starts (lifespan)
        self.config_keys = {hash_token(k): v for k, v in settings.write_keys.items()}
        self.limiter = RateLimiter()
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._stored: tuple[float, int] | None = None
        self._warned = False
        self._audit: AuditWriter | None = None

    def audit_log(self) -> AuditWriter:
        store = self._store()
        if self._audit is None or self._audit.store is not store:
            self._audit = AuditWriter(store)
        return self._audit

    def invalidate(self) -> None:
        """Forget cached lookups (after a key is created, rotated or revoked in this process)."""
        self._cache.clear()
        self._stored = None

    def _store(self) -> Store:
        if self.store is None:
            raise ApiError(503, "unavailable", "the server is starting or stopping; try again")
        return self.store

    def _read(self, query: Callable[..., Any], *args: Any) -> Any:
        """A look-up in the store. Ingestion requests do not hold the store's gate (they pass it:
        xrm.api._gate), so the look-up holds it, urgent: it waits only while a release runs."""
        store = self._store()
        with store.gate.shared(urgent=True):
            return query(store, *args)

    def open(self) -> bool:
        """No key exists at all, stored or configured: writes are open, reads closed."""
        if self.config_keys:
            return False
        now = time.monotonic()
        if self._stored is None or self._stored[0] < now:
            self._stored = (now + CACHE_S, self._read(key_count))
        return self._stored[1] == 0

    def cached(self, token: str | None) -> bool:
        """Whether :meth:`authorize` would answer from memory now, with no store query (the decide
        fast path reads the store on a worker thread otherwise: :meth:`warm`)."""
        now = time.monotonic()
        if not self.config_keys:
            if self._stored is None or self._stored[0] < now:
                return False
            if self._stored[1] == 0:  # no keys at all: authorize looks none up
                return True
        if token is None:
            return True
        hit = self._cache.get(hash_token(token))
        return hit is not None and hit[0] > now

    def warm(self, token: str | None) -> None:
        """Read into the caches what :meth:`authorize` will need for ``token`` (off the event loop:
        three queries every :data:`CACHE_S` held up every request behind them)."""
        if not self.open() and token is not None:
            self.lookup(token)

    def lookup(self, token: str) -> Principal | None:
        digest, now = hash_token(token), time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self._resolve(token, digest)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (now + CACHE_S, principal)
        return principal

    def _resolve(self, token: str, digest: str) -> Principal | None:
        s = self.settings
        source = self.config_keys.get(digest)
        if source is not None:  # a write key from settings: named after its source
            return Principal(f"cfg-{digest[:8]}", f"write_keys:{source}", "write", source,
                             s.api_rate_per_s, s.api_rate_burst)
        key = self._read(verify_token, token)
        if key is None:
            return None
        return Principal(key.key_id, key.name, key.scope, key.workspace,
                         key.rate_per_s or s.api_rate_per_s, key.burst or s.api_rate_burst,
                         (key.max_event_kb or EVENT_LIMIT // 1024) * 1024,
                         (key.max_batch_kb or BATCH_LIMIT // 1024) * 1024)

    def authorize(self, token: str | None, need: str) -> Principal:
        """The principal for this token if it may do ``need`` now; else 401, 403 or 429."""
        writing = need == "write"
        if self.open():
            if writing:
                self._warn_open()
                return _ANYONE
            raise ApiError(
                401, "no_api_keys",
                f"no API keys exist yet, and this endpoint needs one (scope {need} or admin); "
                f"create one with `xrm keys create NAME --scope {need}` (while the server is stopped), "
                f"then send it as `Authorization: Bearer KEY`",
                headers=_CHALLENGE,
            )
        if token is None:
            raise ApiError(
                401, "missing_api_key",
                "Authorization: missing; send the API key as `Authorization: Bearer KEY` or as the "
                "HTTP Basic user name (empty password)", headers=_CHALLENGE,
            )
        who = self.lookup(token)
        if who is None:
            shown = token[:12] + "..." if token.startswith("xrm_") else token[:4] + "..."
            if writing:
                raise ApiError(
                    401, "invalid_write_key",
                    f"writeKey: {shown} is not a valid write key (unknown, revoked or rotated out); "
                    f"use a key from `xrm keys list` or the server's write_keys setting",
                )
            raise ApiError(
                401, "invalid_api_key",
                f"Authorization: API key {shown} is unknown, revoked or rotated out; see `xrm keys list`",
                headers=_CHALLENGE,
            )
        if not who.allows(need):
            allowed = " or ".join(sorted(s for s, rights in SCOPES.items() if need in rights))
            raise ApiError(
                403, "insufficient_scope",
                f"API key {who.name!r} has scope {who.scope!r}; this endpoint needs scope {allowed}",
            )
        wait = self.limiter.take(who.key_id, rate=who.rate_per_s, burst=who.burst)
        if wait > 0:
            after = retry_after_header(wait)
            raise ApiError(
                429, "rate_limited",
                f"API key {who.name!r}: over {who.rate_per_s:g} requests/s (burst {who.burst}); "
                f"retry after {after} s", headers={"Retry-After": after},
            )
        return who

    def _warn_open(self) -> None:
        if not self._warned:
            log.warning(
                "no API keys exist (write_keys setting empty, none made with `xrm keys create`): "
                "every write key is accepted and personal data cannot be read. Create keys to "
                "accept only yours."
            )
            self._warned = True


def _credential(request: Request) -> str | None:
    return credential_of(request.headers.get("authorization"))


def credential_of(header: str | None) -> str | None:
    """The API key in an ``Authorization`` header value (Bearer, or HTTP Basic's user name)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            user, _, _ = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(
                401, "invalid_authorization",
                "Authorization: not valid HTTP Basic credentials; send base64('KEY:')",
            ) from None
        return user or None
    raise ApiError(
        401, "invalid_authorization",
        f"Authorization: scheme {scheme[:20]!r} is not supported; send `Bearer KEY` or HTTP Basic "
        f"with the key as user name", headers=_CHALLENGE,
    )


def require(need: str) -> Callable[[Request], Awaitable[None]]:
    """A router dependency: the caller's key must allow ``need`` (write, read or admin).

    The principal is left in ``request.state.principal`` for the endpoint and the audit.
    """
    if need not in ("write", "read", "admin"):
        raise ValueError(f"require({need!r}): use 'write', 'read' or 'admin'")

    async def dependency(request: Request) -> None:
        token = _credential(request)
        if token is None and need == "write":
            request.state.principal = None  # maybe writeKey in the body: event_source decides
            return
        ring: KeyRing = request.app.state.keys
        request.state.principal = ring.authorize(token, need)

    dependency.__name__ = f"require_{need}"
    return dependency


def event_source(request: Request, body: dict[str, Any]) -> str:
    """The source events of this request are stored under: the key's workspace (or its name in
    ``write_keys``); with no Authorization header the key is ``writeKey`` in the body."""
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:
        ring: KeyRing = request.app.state.keys
        key = body.get("writeKey")
        if not key and not ring.open():
            raise ApiError(
                401, "missing_write_key",
                "writeKey: missing; send the write key as the HTTP Basic user name (empty password) "
                "or as writeKey in the body",
            )
        who = ring.authorize(str(key) if key else None, "write")
        request.state.principal = who
    check_key_sizes(request, body, who)
    return who.workspace


def purpose_of(
    purpose: Annotated[
        str | None,
        Query(max_length=MAX_PURPOSE, description="Why the data is read (kept in the audit log)."),
    ] = None,
    x_xrm_purpose: Annotated[
        str | None,
        Header(max_length=MAX_PURPOSE, description="Why the data is read (kept in the audit log)."),
    ] = None,
) -> str | None:
    return x_xrm_purpose or purpose


def audit(request: Request, action: str, target: str | None, purpose: str | None) -> None:
    """One audit row for this request, or 503 (nothing is read when it cannot be logged)."""
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:  # a route mounted without require(): refuse rather than read unlogged
        raise ApiError(401, "missing_api_key", "Authorization: missing; this endpoint needs an API key")
    ring: KeyRing = request.app.state.keys
    try:
        ring.audit_log().record(
            key_id=who.key_id, key_name=who.name, action=action, target=target,
            purpose=purpose, method=request.method, path=request.url.path,
        )
    except Exception as exc:
        log.error("audit row not written (%s): %s %s refused", type(exc).__name__, request.method,
                  request.url.path)
        raise ApiError(
            503, "unavailable", "the access could not be written to the audit log, so nothing was read; "
            "try again",
        ) from None


def audited(action: str) -> Callable[..., None]:
    """A route dependency: logs ``action`` on ``{profile_id}`` before the endpoint reads it."""

    def dependency(
        request: Request, profile_id: int, purpose: Annotated[str | None, Depends(purpose_of)]
    ) -> None:
        audit(request, action, str(profile_id), purpose)

    dependency.__name__ = f"audit_{action.replace('.', '_')}"
    return dependency
