"""Ingest: files (CSV, JSONL, Parquet) and Segment-spec events into the store, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xrm.exceptions import NotYetImplemented

__all__ = ["load_manifest"]


def load_manifest(store: Any, manifest: Path, *, show_progress: bool = True) -> list[Any]:
    raise NotYetImplemented("loading files is not built yet (issue 2)")
