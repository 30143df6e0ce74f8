"""Helpers of the event writer's tests: a request's submission as the event route would make it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xrm.api._writer import Submission
from xrm.config import Settings
from xrm.ingest._api_batch import quick_event

__all__ = ["store_settings", "sub"]


def sub(*events: dict[str, Any]) -> Submission:
    """One request of these events (POST /v1/batch, source web), checked by the quick path."""
    texts = [json.dumps(e, separators=(",", ":")) for e in events]
    return Submission("POST /v1/batch", "web", texts, list(events),
                      [quick_event(e, t) for e, t in zip(events, texts, strict=True)])


def store_settings(path: Path, **extra: Any) -> Settings:
    """A store of the writer's tests: one DuckDB thread, 1GB."""
    return Settings(store_path=path, memory_limit="1GB", threads=1, **extra)
