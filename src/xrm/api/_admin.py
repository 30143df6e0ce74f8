"""Admin endpoints: POST /v1/admin/backup streams a consistent backup of the running store.

The server holds the store's only write connection, so a backup of a running store is made here,
on that connection (:func:`xrm.store.backup_store`: one MVCC snapshot while ingestion goes on),
into a temporary file next to the store, and streamed to the caller, who verifies it
(``xrm backup`` does). One backup at a time.

Access: the ``admin`` scope (a backup holds every person's data; ``create_app`` mounts the router
behind ``require("admin")``), and every backup is written to the audit log.

    >>> httpx.post(f"{url}/v1/admin/backup").content  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from xrm.api._auth import audit, purpose_of
from xrm.api._gate import settled

__all__ = ["router"]

log = logging.getLogger("xrm.api")

router = APIRouter(prefix="/v1/admin", tags=["admin"])

@router.post(
    "/backup",
    response_class=FileResponse,
    responses={200: {"content": {"application/vnd.duckdb": {}}, "description": "the backup file"}},
)
async def backup(
    request: Request, background: BackgroundTasks, purpose: Annotated[str | None, Depends(purpose_of)] = None
) -> FileResponse:
    """A consistent backup of the running store (a DuckDB file with a manifest), as the body.

    It holds every event acknowledged before the request arrived. Verify it before relying on it
    (``xrm restore`` does; ``xrm backup`` does on download)."""
    from xrm.store import backup_store

    await run_in_threadpool(audit, request, "backup", None, purpose)
    await run_in_threadpool(settled, request)  # events acknowledged during a checkpoint: in the store first
    store = request.app.state.store
    tmp = Path(store.path).absolute().with_name(f".{Path(store.path).name}.backup-{uuid.uuid4().hex[:8]}")
    lock = getattr(request.app.state, "backup_lock", None)
    if lock is None:  # made on the server's own event loop, once
        lock = request.app.state.backup_lock = asyncio.Lock()
    async with lock:
        try:
            info = await run_in_threadpool(backup_store, store.con, tmp, key=store.encryption_key)
        except Exception:
            tmp.unlink(missing_ok=True)
            raise
    log.info("backup: %d tables, %d bytes in %.2f s", len(info.tables), info.bytes, info.seconds)

    def _remove() -> None:
        with contextlib.suppress(OSError):
            tmp.unlink()

    background.add_task(_remove)
    return FileResponse(
        tmp,
        media_type="application/vnd.duckdb",
        filename="xrm-backup.duckdb",
        headers={
            "X-Xrm-Backup-Created": info.created_at,
            "X-Xrm-Backup-Events": str(info.tables.get("events", 0)),
            "X-Xrm-Backup-Seconds": f"{info.seconds:.3f}",
        },
    )
