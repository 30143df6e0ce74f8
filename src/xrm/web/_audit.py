"""The console's audit log: who launched, erased, exported or decided what, and when."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["audit"]


def audit(store: Any, username: str, action: str, target: str | None, details: dict[str, Any]) -> None:
    store.sql(
        "INSERT INTO console_audit (logged_at, username, action, target, details) VALUES (?, ?, ?, ?, ?)",
        [datetime.now(UTC).replace(tzinfo=None), username, action, target, json.dumps(details, default=str)],
    )
