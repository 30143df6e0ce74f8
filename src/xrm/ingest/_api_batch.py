"""Events that arrive as JSON objects (the HTTP event API), checked and stored by the loader's SQL.

The same vectorised SQL as a JSONL file: the events' JSON texts become the batch ``__xrm_b``
(``__line`` = 0-based position, ``__raw`` = the text), are normalised into ``__xrm_n`` with the
first broken rule of each, and valid rows go to ``events`` / ``order_lines`` with
``INSERT OR IGNORE`` on ``message_id``. The caller owns the transaction, so one commit can hold
the events of many requests (group commit).

    >>> problems = stage_events(cur, ['{"type": "track", ...}'])  # doctest: +SKIP
    >>> added, lines = insert_staged_events(cur, source="webshop", load_id="api-1")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xrm.ingest._events import INSERT_ORDER_LINES, _jsonl_fields, _normalise, insert_events_sql
from xrm.ingest._mapping import Mapping

if TYPE_CHECKING:
    import duckdb

__all__ = ["EventProblem", "drop_staged", "insert_staged_events", "stage_events", "staged_ids"]

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
