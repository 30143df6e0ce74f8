"""The review queue and golden records over HTTP (issue 3, part 3 and 7).

    GET  /v1/identify/review?status=pending&limit=50     grey-zone pairs with both records
    POST /v1/identify/review/accept  {"record_a", "record_b", "reason"}   one person: link them
    POST /v1/identify/review/reject  {"record_a", "record_b", "reason"}   two people: never link
    GET  /v1/identify/profiles/{profile_id}/golden        golden record with lineage per attribute

Personal data both ways: mount the router behind ``require("read")`` for reads or
``require("admin")`` (decisions change profiles), as the app does for /v1/profiles. Every call
writes an audit row first (``api_audit``). A decision is stored and the graph re-resolved in the
same request (``resolve_graph``, seconds at 100k records); the answer carries that run's counts.

    >>> httpx.post(f"{url}/v1/identify/review/accept", json={...}, headers=admin)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from xrm.api._auth import audit, audited, purpose_of

__all__ = ["router"]

router = APIRouter(prefix="/v1/identify", tags=["identify: review queue and golden records"])


class Decision(BaseModel):
    """A person's decision on two source records."""

    model_config = {"extra": "forbid"}

    record_a: str = Field(min_length=1, description="A record id, e.g. webshop:KD123.")
    record_b: str = Field(min_length=1, description="The other record id.")
    reason: str = Field(min_length=1, description="What the person checked; kept with the decision.")


@router.get("/review")
def list_review(
    request: Request,
    status: Annotated[
        Literal["pending", "accepted", "rejected", "all"], Query(description="Queue items to list.")
    ] = "pending",
    limit: Annotated[int, Query(ge=1, le=1000, description="Items, strongest match first.")] = 50,
    purpose: Annotated[str | None, Depends(purpose_of)] = None,
) -> dict[str, Any]:
    """Queue items with both records, their match weight and the weight of each compared field."""
    from xrm.identify import review_items

    audit(request, "identify.review.read", None, purpose)
    return {"status": status, "items": review_items(request.app.state.store, status, limit)}


def _decide(request: Request, body: Decision, decision: str, purpose: str | None) -> dict[str, Any]:
    from xrm.identify import decide_review

    audit(request, f"identify.review.{decision}", f"{body.record_a}|{body.record_b}", purpose)
    who = getattr(request.state, "principal", None)
    return decide_review(
        request.app.state.store, body.record_a, body.record_b, decision, reason=body.reason,
        decided_by=f"api:{who.name}" if who is not None else "api",
    )


@router.post("/review/accept")
def accept(
    request: Request, body: Decision, purpose: Annotated[str | None, Depends(purpose_of)] = None
) -> dict[str, Any]:
    """The two records are one person: link them now and in every later run."""
    return _decide(request, body, "accepted", purpose)


@router.post("/review/reject")
def reject(
    request: Request, body: Decision, purpose: Annotated[str | None, Depends(purpose_of)] = None
) -> dict[str, Any]:
    """The two records are different people: no fuzzy link may join them, now or later."""
    return _decide(request, body, "rejected", purpose)


@router.get("/profiles/{profile_id}/golden", dependencies=[Depends(audited("identify.golden.read"))])
def golden(request: Request, profile_id: int) -> dict[str, Any]:
    """Each attribute's surviving value, the rule that chose it and the record it came from."""
    from xrm.identify import golden_record

    return golden_record(request.app.state.store, profile_id)
