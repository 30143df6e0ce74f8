"""Ingest: files (CSV, JSONL, Parquet) and Segment-spec events into the store, validated.

    >>> from xrm.ingest import load_file, load_manifest
    >>> report = load_file(store, "events.jsonl")  # doctest: +SKIP

Bad rows are kept in ``rejected_rows`` with file, line, field, value and reason; loading the same
file (or the same events) again adds nothing. See docs/loading.md.
"""

from xrm.ingest._api_batch import (
    EventProblem,
    drop_staged,
    insert_staged_events,
    stage_events,
    staged_ids,
)
from xrm.ingest._load import load_file
from xrm.ingest._manifest import is_manifest, load_manifest, read_manifest
from xrm.ingest._mapping import DEFAULT_DATE_FORMATS, EVENT_FIELDS, RECORD_FIELDS, Mapping, read_mapping
from xrm.ingest._progress import LoadProgress, ProgressCallback
from xrm.ingest._report import LoadReport, RejectedRow

__all__ = [
    "DEFAULT_DATE_FORMATS",
    "EVENT_FIELDS",
    "RECORD_FIELDS",
    "EventProblem",
    "LoadProgress",
    "LoadReport",
    "Mapping",
    "ProgressCallback",
    "RejectedRow",
    "drop_staged",
    "insert_staged_events",
    "is_manifest",
    "load_file",
    "load_manifest",
    "read_manifest",
    "read_mapping",
    "stage_events",
    "staged_ids",
]
