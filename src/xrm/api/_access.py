"""Keys and the audit log over HTTP (admin scope): /v1/keys, /v1/keys/{key}/rotate|revoke, /v1/audit.

While the server runs it owns the store (DuckDB admits one writing process), so ``xrm keys ...``
cannot open it; these endpoints rotate or revoke a key then, with effect at once. Each change is
an audit row (``key.create``, ``key.rotate``, ``key.revoke``).

    >>> httpx.post(f"{url}/v1/keys/webshop/rotate", json={"grace_s": 3600}, headers=h)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from xrm.api._audit import list_audit
from xrm.api._auth import KeyRing, audit, purpose_of
from xrm.api._keys import create_key, list_keys, revoke_key, rotate_key

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["keys and audit (admin)"])
Purpose = Annotated[str | None, Depends(purpose_of)]


class NewKey(BaseModel):
    name: str = Field(description="Unique name: letters, digits, . _ @ - (up to 64).")
    scope: Literal["write", "read", "admin"] = Field(description="write: send events; read: profiles, "
                                                     "timeline, decisions; admin: all of it and more.")
    workspace: str | None = Field(default=None, description="Source name its events get (default: name).")
    rate_per_s: float | None = Field(default=None, gt=0, description="Requests/s (default: settings).")
    burst: int | None = Field(default=None, ge=1, description="Bucket size (default: settings).")
    max_event_kb: int | None = Field(default=None, ge=1, le=32, description="KB per call (default: 32).")
    max_batch_kb: int | None = Field(default=None, ge=1, le=500, description="KB per batch (default: 500).")


class Rotation(BaseModel):
    grace_s: float = Field(default=0, ge=0, le=30 * 86400,
                           description="Seconds the old secret stays valid (0: it ends now).")


def _changed(request: Request) -> None:
    ring: KeyRing = request.app.state.keys
    ring.invalidate()


@router.get("/keys", summary="List API keys (prefix only)")
def keys(request: Request) -> dict[str, Any]:
    return {"keys": [k.as_dict() for k in list_keys(request.app.state.store)]}


@router.post("/keys", summary="Create an API key (its token is in this answer only)")
def create(request: Request, body: NewKey, purpose: Purpose = None) -> dict[str, Any]:
    key, token = create_key(request.app.state.store, body.name, body.scope, workspace=body.workspace,
                            rate_per_s=body.rate_per_s, burst=body.burst, max_event_kb=body.max_event_kb,
                            max_batch_kb=body.max_batch_kb)
    _changed(request)
    audit(request, "key.create", key.key_id, purpose)
    return {**key.as_dict(), "token": token}


@router.post("/keys/{key}/rotate", summary="New secret; the old one valid for grace_s more seconds")
def rotate(
    request: Request, key: str, body: Rotation | None = None, purpose: Purpose = None
) -> dict[str, Any]:
    new, token = rotate_key(request.app.state.store, key, grace_s=(body or Rotation()).grace_s)
    _changed(request)
    audit(request, "key.rotate", new.key_id, purpose)
    return {**new.as_dict(), "token": token}


@router.post("/keys/{key}/revoke", summary="Revoke a key at once")
def revoke(request: Request, key: str, purpose: Purpose = None) -> dict[str, Any]:
    gone = revoke_key(request.app.state.store, key)
    _changed(request)
    audit(request, "key.revoke", gone.key_id, purpose)
    return gone.as_dict()


@router.get("/audit", summary="The audit log, newest first")
def audit_log(
    request: Request,
    key: Annotated[str | None, Query(description="A key's name or id.")] = None,
    target: Annotated[str | None, Query(description="A profile id (or key id).")] = None,
    action: Annotated[str | None, Query(description="profile.read, timeline.read, key.revoke ...")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    rows = list_audit(request.app.state.store, key=key, target=target, action=action, limit=limit)
    return {"rows": [r.as_dict() for r in rows]}
