"""The review queue, golden records and the record export over HTTP (issue 3, part 3 and 7).

    GET  /v1/identify/review?status=pending&limit=50     grey-zone pairs with both records
    POST /v1/identify/review/accept  {"record_a", "record_b", "reason"}   one person: link them
    POST /v1/identify/review/reject  {"record_a", "record_b", "reason"}   two people: never link
    GET  /v1/identify/profiles/{profile_id}/golden        golden record with lineage per attribute
    GET  /v1/identify/records.csv | records.parquet       every source record with its profile id

Personal data both ways: mount the router behind ``require("read")`` for reads or
``require("admin")`` (decisions change profiles), as the app does for /v1/profiles. Every call
writes an audit row first (``api_audit``); the export holds every person's data, so it wants the
``admin`` scope, which ``create_app`` gives the whole router. A decision is stored and the graph
re-resolved in the same request (``resolve_graph``, seconds at 100k records); the answer carries
that run's counts.

    >>> httpx.post(f"{url}/v1/identify/review/accept", json={...}, headers=admin)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from xrm.api._auth import audit, audited, purpose_of

__all__ = ["router"]

router = APIRouter(prefix="/v1/identify", tags=["identify: review queue, golden records, export"])


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


_MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _export(request: Request, background: BackgroundTasks, fmt: Literal["csv", "parquet"],
            purpose: str | None) -> FileResponse:
    """The export is written by DuckDB (``COPY ... TO``) into a temporary file next to the store,
    sent as a file response (streamed from disk, never held in memory) and removed afterwards."""
    from xrm.identify import export_records

    audit(request, "identify.records.export", fmt, purpose)
    store = request.app.state.store
    name = f".{Path(store.path).name}.records-{uuid.uuid4().hex[:8]}.{fmt}"
    tmp = Path(store.path).absolute().with_name(name)
    out = export_records(store, tmp, fmt)

    def _remove() -> None:
        with contextlib.suppress(OSError):
            tmp.unlink()

    background.add_task(_remove)
    return FileResponse(
        tmp, media_type=_MEDIA[fmt], filename=f"xrm-records.{fmt}",
        headers={"X-Xrm-Records": str(out["records"]), "X-Xrm-Profiles": str(out["profiles"])},
    )


_EXPORT_DOC: dict[int | str, dict[str, Any]] = {200: {
    "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
    "description": "one row per source record",
}}


@router.get("/records.csv", response_class=FileResponse, responses=_EXPORT_DOC)
def export_csv(request: Request, background: BackgroundTasks,
               purpose: Annotated[str | None, Depends(purpose_of)] = None) -> FileResponse:
    """Every source record with its profile id, normalised identifiers and how it joined the
    profile (identifier, probabilistic link with its weight, review decision, e-mail name, alone)."""
    return _export(request, background, "csv", purpose)


@router.get("/records.parquet", response_class=FileResponse, responses=_EXPORT_DOC)
def export_parquet(request: Request, background: BackgroundTasks,
                   purpose: Annotated[str | None, Depends(purpose_of)] = None) -> FileResponse:
    """The record export as Parquet (same columns as records.csv, typed)."""
    return _export(request, background, "parquet", purpose)
