"""Profiles and their timeline over HTTP: GET /v1/profiles/{id}, /v1/profiles/{id}/timeline.

Personal data: the router needs a read (or admin) key, and every call writes an audit row
(``api_audit``: key, action, profile, purpose from ``X-Xrm-Purpose`` or ``?purpose=``) first.

    >>> httpx.get(f"{url}/v1/profiles/17/timeline", params={"type": "track", "limit": 20})  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from xrm.api._auth import audit, audited, purpose_of
from xrm.api._gate import settled
from xrm.interact import MAX_TIMELINE_LIMIT, profile_view, timeline

__all__ = ["router"]

router = APIRouter(prefix="/v1/profiles", tags=["profiles and timeline"])


def _settled(request: Request) -> None:
    """Events acknowledged while the store was being checkpointed reach it a moment later (see
    xrm.api._landing): a read waits for them, so a client reads what it wrote (out of the store's
    gate meanwhile: xrm.api._gate)."""
    settled(request)


@router.get("")
def find_profiles(
    request: Request,
    id_type: Annotated[str, Query(description="Identifier type: user_id, anonymous_id, email ...")],
    id_value: Annotated[str, Query(description="The identifier's value (normalised as identify does).")],
    purpose: Annotated[str | None, Depends(purpose_of)] = None,
) -> dict[str, Any]:
    """Active profiles holding an identifier (evidence such as an e-mail may give several)."""
    from xrm.identify import lookup_profiles

    _settled(request)
    ids = lookup_profiles(request.app.state.store, id_type, id_value)
    # the audit names the profiles found, not the identifier (it may itself be personal data)
    audit(request, "profile.lookup", ",".join(map(str, ids)) or None, purpose)
    return {"id_type": id_type, "id_value": id_value, "profile_ids": ids}


@router.get("/{profile_id}", dependencies=[Depends(audited("profile.read"))])
def get_profile(request: Request, profile_id: int) -> dict[str, Any]:
    """A profile's identifiers, evidence, traits (newest value of each) and event counts."""
    _settled(request)
    return profile_view(request.app.state.store, profile_id)


@router.get("/{profile_id}/timeline", dependencies=[Depends(audited("timeline.read"))])
def get_timeline(
    request: Request,
    profile_id: int,
    type: Annotated[
        list[str] | None,
        Query(description="Call types or entries: track, page, identify, consent, merge ... (repeatable)"),
    ] = None,
    channel: Annotated[
        list[str] | None, Query(description="Channels: email, sms, web, app, online, store ... (repeatable)")
    ] = None,
    event: Annotated[
        list[str] | None, Query(description="Event or page names, e.g. Order Completed (repeatable)")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601, inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601, exclusive).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE_LIMIT, description="Items per page.")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> dict[str, Any]:
    """Every interaction of the profile across channels, newest first, one page at a time."""
    _settled(request)
    page = timeline(
        request.app.state.store, profile_id, types=type or (), channels=channel or (),
        events=event or (), since=since, until=until, limit=limit, cursor=cursor,
    )
    return page.as_dict()
