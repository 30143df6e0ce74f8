"""GET /healthz: the server is up, owns its store, and how the event writer is doing.

    >>> httpx.get(f"{url}/healthz").json()["status"]  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from xrm import __version__

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness and the writer's counters (groups, events added, duplicates, resolutions), the
    write-ahead log's size and the writer's last checkpoints (``writer.last_checkpoints``)."""
    writer = request.app.state.writer
    return {
        "status": "ok",
        "version": __version__,
        "store": str(request.app.state.store.path),
        "load_id": writer.load_id,
        "queued_requests": writer.queued,
        "wal_bytes": writer.wal_bytes(),
        "writer": writer.stats.as_dict(),
    }
