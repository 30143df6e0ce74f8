"""Events that arrive as JSON objects (the HTTP event API), checked and stored by the loader's SQL.

The same vectorised SQL as a JSONL file: the events' JSON texts become the batch ``__xrm_b``
(``__line`` = 0-based position, ``__raw`` = the text), are normalised into ``__xrm_n`` with the
first broken rule of each, and valid rows go to ``events`` / ``order_lines`` with
``INSERT OR IGNORE`` on ``message_id``. The caller owns the transaction, so one commit can hold
the events of many requests (group commit).

That SQL costs tens of milliseconds per call to plan, whatever the number of rows; at the API's
rate that fixed cost decides the latency. So :func:`quick_event` first looks at each parsed event
in Python: an event that plainly keeps every rule (a messageId, known type, ISO 8601 time with
an offset, text fields as plain strings, objects where objects belong, not an Order Completed)
goes straight in with :func:`insert_quick_events`; every other event, valid or not, goes through
the SQL, which stays the one place that decides and words a problem. The quick path only ever
says "certainly valid", never "invalid", and stores what the SQL would (tests compare the two).

    >>> problems = stage_events(cur, ['{"type": "track", ...}'])  # doctest: +SKIP
    >>> added, lines = insert_staged_events(cur, source="webshop", load_id="api-1")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from xrm.ingest._events import (
    EVENT_COLUMNS,
    INSERT_ORDER_LINES,
    ORDER_COMPLETED,
    SEGMENT_TYPES,
    _jsonl_fields,
    _normalise,
    insert_events_sql,
)
from xrm.ingest._mapping import Mapping

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "EventProblem",
    "QuickEvent",
    "drop_staged",
    "insert_quick_events",
    "insert_staged_events",
    "quick_event",
    "stage_events",
    "staged_ids",
    "store_quick_events",
]

_NORMALISE: str | None = None  # built once: the JSONL plan does not depend on the input


@dataclass(frozen=True)
class EventProblem:
    """The first rule an event breaks: ``line`` is its 0-based position in the staged batch."""

    line: int
    field: str
    value: str | None
    reason: str


def _normalise_sql() -> str:
    global _NORMALISE
    if _NORMALISE is None:
        mapping = Mapping.for_events()
        _NORMALISE = _normalise(_jsonl_fields(mapping), mapping)
    return _NORMALISE


def stage_events(cur: duckdb.DuckDBPyConnection, texts: Sequence[str]) -> list[EventProblem]:
    """Normalise the events (one JSON object text each) into ``__xrm_n``; return their problems.

    Needs the session TimeZone = UTC (set by the caller once per cursor).
    """
    import pyarrow as pa

    batch = pa.table({
        "__line": pa.array(range(len(texts)), type=pa.int64()),
        "__raw": pa.array(texts, type=pa.string()),
    })
    cur.register("__xrm_b", batch)
    try:
        cur.execute(_normalise_sql())
        rows = cur.execute(
            "SELECT __line, __problem.field, __problem.value, __problem.reason FROM __xrm_n "
            "WHERE __problem IS NOT NULL ORDER BY __line"
        ).fetchall()
    finally:
        cur.unregister("__xrm_b")
    return [EventProblem(int(r[0]), r[1], r[2], r[3]) for r in rows]


def staged_ids(cur: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    """(line, message_id) of the valid staged events (ids derived from content where missing)."""
    rows = cur.execute(
        "SELECT __line, message_id FROM __xrm_n WHERE __problem IS NULL ORDER BY __line"
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def insert_staged_events(
    cur: duckdb.DuckDBPyConnection,
    *,
    source: str | None,
    load_id: str,
    skip: Iterable[tuple[int, int]] = (),
    rejects: Sequence[tuple[str, EventProblem, str]] = (),
) -> tuple[int, int]:
    """Store the valid staged events, except lines in the half-open ranges ``skip``.

    ``rejects`` (file label, problem, raw text) go to ``rejected_rows``. Returns (events added, order lines
    added); events already stored (same ``message_id``) are not added again.
    """
    ranges = list(skip)
    if ranges:
        cond = " OR ".join("(__line >= ? AND __line < ?)" for _ in ranges)
        cur.execute(f"DELETE FROM __xrm_n WHERE {cond}", [x for r in ranges for x in r])
    added = cur.execute(insert_events_sql(), [source, load_id]).fetchall()
    lines = cur.execute(INSERT_ORDER_LINES).fetchall()
    if rejects:
        cur.executemany(
            "INSERT INTO rejected_rows (load_id, file, line, field, value, reason, raw, rejected_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, timezone('UTC', now()))",
            [[load_id, f, p.line + 1, p.field, p.value, p.reason, raw[:2000]] for f, p, raw in rejects],
        )
    return (int(added[0][0]) if added else 0, int(lines[0][0]) if lines else 0)


def drop_staged(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute("DROP TABLE IF EXISTS __xrm_n")


# -- the quick path: events that plainly keep every rule, without the planning of the SQL ----------

# ISO 8601 with an explicit offset: TIMESTAMPTZ reads it exactly (no zone setting involved).
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_TYPES = frozenset(SEGMENT_TYPES)
_TEXT_KEYS = ("event", "name", "userId", "anonymousId", "groupId", "previousId")
_OBJECT_KEYS = ("properties", "traits", "context")
_UTC_ONLY: bool | None = None


@dataclass(frozen=True, slots=True)
class QuickEvent:
    """An event's stored text fields as the loader's SQL would make them (``ts_text`` still text)."""

    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    ts_text: str


def _text(value: Any) -> str | bool | None:
    """NULLIF(trim(x), '') for a plain string; False where only the SQL can say (numbers, padding)."""
    if value is None or value == "":
        return None
    if type(value) is not str or value != value.strip():
        return False
    return value


def quick_event(event: AnyMapping[str, Any], text: str) -> QuickEvent | None:
    """The event's fields if it certainly keeps every rule of the loader's SQL, else None.

    None does not mean invalid: the event goes through :func:`stage_events`, which decides.

        >>> quick_event({"type": "track", "event": "E", "userId": "u", "messageId": "m",
        ...              "timestamp": "2024-05-01T12:00:00Z"}, "{...}").type
        'track'
    """
    global _UTC_ONLY
    if _UTC_ONLY is None:  # a mapping that reads zone-less times elsewhere: all through SQL
        _UTC_ONLY = Mapping.for_events().timestamp_column_timezone.upper() == "UTC"
    if not _UTC_ONLY or "NaN" in text or "Infinity" in text:  # not JSON to DuckDB: SQL says why
        return None
    mid, kind = _text(event.get("messageId")), _text(event.get("type"))
    if not isinstance(mid, str) or not isinstance(kind, str) or not kind.isascii():
        return None  # no messageId: the SQL derives it from the content
    kind = kind.lower()
    if kind not in _TYPES:
        return None
    got = [_text(event.get(k)) for k in _TEXT_KEYS]
    if False in got:
        return None
    ev, name, user, anon, group, prev = got
    if (
        (kind == "track" and (ev is None or ev == ORDER_COMPLETED))  # order lines: SQL
        or (kind != "alias" and user is None and anon is None)
        or (kind == "group" and group is None)
        or (kind == "alias" and (prev is None or user is None))
    ):
        return None
    for k in _OBJECT_KEYS:
        v = event.get(k)
        if v is not None and not isinstance(v, dict):
            return None
    ts = _text(event.get("timestamp"))
    if ts is None:
        ts = _text(event.get("originalTimestamp"))
    if not isinstance(ts, str) or not _ISO.fullmatch(ts):
        return None
    try:
        datetime.fromisoformat(ts)  # a real date and time (no 31 February)
    except ValueError:
        return None
    return QuickEvent(mid, kind, ev, name, user, anon, group, prev, ts)  # type: ignore[arg-type]


# Every field from the text in one json_transform (C), not nine Python columns: a quick event's
# text fields are plain unpadded strings or absent (quick_event checked), so NULLIF(x, '') is what
# the loader's NULLIF(trim(x), '') gives; its type is lower-cased as there.
_QUICK_KEYS = (
    "'{\"messageId\": \"VARCHAR\", \"type\": \"VARCHAR\", \"event\": \"VARCHAR\", \"name\": \"VARCHAR\", "
    "\"userId\": \"VARCHAR\", \"anonymousId\": \"VARCHAR\", \"groupId\": \"VARCHAR\", "
    "\"previousId\": \"VARCHAR\", \"timestamp\": \"VARCHAR\", \"originalTimestamp\": \"VARCHAR\", "
    "\"properties\": \"JSON\", \"traits\": \"JSON\", \"context\": \"JSON\"}'"
)
_INSERT_QUICK = f"""
    INSERT INTO events ({EVENT_COLUMNS})
    SELECT __s.messageId, lower(__s.type), NULLIF(__s.event, ''), NULLIF(__s.name, ''),
        NULLIF(__s.userId, ''), NULLIF(__s.anonymousId, ''), NULLIF(__s.groupId, ''),
        NULLIF(__s.previousId, ''),
        timezone('UTC', CAST(coalesce(NULLIF(__s.timestamp, ''), __s.originalTimestamp) AS TIMESTAMPTZ)),
        timezone('UTC', now()), ?, __s.properties, __s.traits, __s.context, NULL, NULL, NULL, ?
    FROM (SELECT json_transform(__raw, {_QUICK_KEYS}) AS __s FROM __xrm_q)"""


def insert_quick_events(
    cur: duckdb.DuckDBPyConnection,
    rows: Sequence[tuple[QuickEvent, str]],
    *,
    source: str | None,
    load_id: str,
) -> int:
    """Store (fields, JSON text) of events from :func:`quick_event`, none of them stored yet.

    Every column comes from the text, by the same ``json_transform`` as the loader's SQL, so
    events are stored byte for byte alike. The caller leaves out ids already stored (one plain
    ``INSERT``, cheaper than ``INSERT OR IGNORE``). Needs the session TimeZone = UTC.
    """
    if not rows:
        return 0
    import pyarrow as pa

    # Read by DuckDB's replacement scan from this frame: cheaper than register + unregister.
    __xrm_q = pa.table({"__raw": pa.array([t for _, t in rows], type=pa.string())})
    cur.execute(_INSERT_QUICK, [source, load_id]).fetchall()
    return len(rows)


def store_quick_events(
    cur: duckdb.DuckDBPyConnection,
    rows: Sequence[tuple[QuickEvent, str]],
    *,
    source: str | None,
    load_id: str,
) -> set[str]:
    """Store events from :func:`quick_event` not stored yet; return the message ids it added.

    One statement instead of a look-up and an insert: ``ON CONFLICT DO NOTHING`` finds a retry
    by the primary key's index, where a look-up of the ids joined against ``events`` scans the
    whole table (its cost grew with the store: about 30 ms a group at a million events). The rows
    must not repeat a message id among themselves.
    """
    if not rows:
        return set()
    import pyarrow as pa

    __xrm_q = pa.table({"__raw": pa.array([t for _, t in rows], type=pa.string())})
    got = cur.execute(_INSERT_QUICK + " ON CONFLICT DO NOTHING RETURNING message_id", [source, load_id])
    return {r[0] for r in got.fetchall()}
