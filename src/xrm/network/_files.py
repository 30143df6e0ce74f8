"""Reading relationship, party, handle and post files (CSV or JSONL) row by row, with rejects.

Every bad row is kept in ``network_rejects`` with file, line, field, value and the rule it broke;
the good rows around it are loaded.

    >>> report = load_relationships(store, "relationships.csv")  # doctest: +SKIP
    >>> report.rows_loaded, report.rows_rejected  # doctest: +SKIP
    (812, 3)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xrm.exceptions import InputError
from xrm.network._types import PARTY_KINDS, REL_TYPES, ROLES, SYMMETRIC_TYPES
from xrm.store import Store

__all__ = ["LoadReport", "Problem", "normalise_handle", "parse_timestamp", "read_rows"]

_MAX_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One broken rule in one row."""

    line: int
    field: str
    value: Any
    rule: str

    def message(self, file: str) -> str:
        return f"{file} line {self.line}: '{self.field}' = {self.value!r} {self.rule}"


@dataclass
class LoadReport:
    """What one file load did: rows read, loaded and rejected, and the first problems."""

    file: str
    kind: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "problems": self.problems,
        }


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line, row or None when unreadable, raw text) for each data line of a CSV or JSONL file."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if suffix in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as f:
            for n, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError:
                    yield n, None, raw.rstrip("\n")
                    continue
                yield n, row if isinstance(row, dict) else None, raw.rstrip("\n")
    elif suffix in (".csv", ".tsv", ".txt"):
        with path.open(encoding="utf-8-sig", newline="") as f:
            sample = f.read(4096)
            f.seek(0)
            delimiter = "\t" if suffix == ".tsv" else (";" if sample.count(";") > sample.count(",") else ",")
            reader = csv.DictReader(f, delimiter=delimiter)
            for row in reader:
                line = reader.line_num
                raw = delimiter.join("" if v is None else str(v) for v in row.values())
                clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
                yield line, {k: (None if v == "" else v) for k, v in clean.items()}, raw
    else:
        raise InputError(f"{path}: '{suffix}' files are not read here; use .csv, .tsv or .jsonl")


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 date or date-time (with 'Z' or an offset) as naive UTC; None when not parseable."""
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def normalise_handle(value: str) -> str:
    """'Anna_K' and '@anna_k' are the same handle: lower case, one leading '@'."""
    return "@" + value.strip().lstrip("@").lower()


def _text(
    row: dict[str, Any], name: str, problems: list[Problem], line: int, *, required: bool
) -> str | None:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(Problem(line, name, value, "is missing; every row needs it"))
        return None
    if not isinstance(value, str | int):
        problems.append(Problem(line, name, value, "must be text"))
        return None
    return str(value).strip()


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).replace(";", ",").replace(" ", ",").split(",") if v.strip()]


# -- row validators: a row -> (a tuple to insert, problems) ----------------------------------------


def relationship_row(
    row: dict[str, Any], line: int, file: str
) -> tuple[tuple[Any, ...] | None, list[Problem]]:
    problems: list[Problem] = []
    src = _text(row, "src", problems, line, required=True)
    dst = _text(row, "dst", problems, line, required=True)
    rel = row.get("rel_type", row.get("type"))
    if rel not in REL_TYPES:
        problems.append(
            Problem(line, "rel_type", rel, f"is not a relationship type (one of: {', '.join(REL_TYPES)})")
        )
    weight: float = 1.0
    if row.get("weight") is not None:
        try:
            weight = float(row["weight"])
        except (TypeError, ValueError):
            weight = -1.0
        if not weight > 0:
            problems.append(
                Problem(line, "weight", row["weight"], "must be a number > 0 (leave empty for 1)")
            )
    ts = None
    if row.get("ts", row.get("timestamp")) is not None:
        raw_ts = row.get("ts", row.get("timestamp"))
        ts = parse_timestamp(raw_ts)
        if ts is None:
            problems.append(
                Problem(line, "ts", raw_ts, "is not a date or time (expected YYYY-MM-DD[THH:MM:SS])")
            )
    if src and dst and src == dst:
        problems.append(Problem(line, "dst", dst, "equals src; a party is not related to itself"))
    if problems or src is None or dst is None:
        return None, problems
    if rel in SYMMETRIC_TYPES and dst < src:
        src, dst = dst, src
    source = str(row.get("source") or file)
    return (src, dst, rel, weight, ts, "file", source, row.get("evidence")), []


def party_row(row: dict[str, Any], line: int, file: str) -> tuple[tuple[Any, ...] | None, list[Problem]]:
    problems: list[Problem] = []
    party_id = _text(row, "party_id", problems, line, required=True)
    kind = row.get("kind") or "person"
    if kind not in PARTY_KINDS:
        problems.append(
            Problem(line, "kind", kind, f"is not a party kind (one of: {', '.join(PARTY_KINDS)})")
        )
    roles = _list(row.get("roles", row.get("role")))
    for role in roles:
        if role not in ROLES:
            problems.append(Problem(line, "roles", role, f"is not a role (any of: {', '.join(ROLES)})"))
    if problems or party_id is None:
        return None, problems
    return (party_id, kind, roles, row.get("name"), "file", file), []


def handle_row(row: dict[str, Any], line: int, file: str) -> tuple[tuple[Any, ...] | None, list[Problem]]:
    problems: list[Problem] = []
    handle = _text(row, "handle", problems, line, required=True)
    party_id = _text(row, "party_id", problems, line, required=True)
    platform = (row.get("platform") or "*").strip().lower()
    if handle is not None and not handle.strip().lstrip("@"):
        problems.append(Problem(line, "handle", handle, "is empty after the '@'"))
    if problems or handle is None or party_id is None:
        return None, problems
    return (platform, normalise_handle(handle), party_id, file), []


def load_rows(
    store: Store,
    path: Path | str,
    kind: str,
    validate: Callable[[dict[str, Any], int, str], tuple[tuple[Any, ...] | None, list[Problem]]],
    key: Callable[[tuple[Any, ...]], Any],
    insert: Callable[[Store, list[tuple[Any, ...]]], None],
) -> LoadReport:
    """Validate every row of ``path``; insert the good ones (last wins per key), reject the rest."""
    p = Path(path)
    report = LoadReport(str(p), kind)
    good: dict[Any, tuple[Any, ...]] = {}
    rejects: list[tuple[Any, ...]] = []
    for line, row, raw in read_rows(p):
        report.rows_read += 1
        if row is None:
            problems = [Problem(line, "(row)", raw[:80], "is not a JSON object or CSV row; fix the line")]
        else:
            values, problems = validate(row, line, p.name)
            if values is not None:
                good[key(values)] = values
                continue
        report.rows_rejected += 1
        for pr in problems:
            rejects.append(
                (
                    p.name,
                    kind,
                    line,
                    pr.field,
                    None if pr.value is None else str(pr.value),
                    pr.message(p.name),
                    raw,
                )
            )
            if len(report.problems) < _MAX_SHOWN:
                report.problems.append(pr.message(p.name) + "; the row was kept in network_rejects")
    rows = list(good.values())
    if rows:
        insert(store, rows)
    report.rows_loaded = len(rows)
    if rejects:
        cur = store.con.cursor()
        try:
            cur.executemany(
                "INSERT INTO network_rejects (file, kind, line, field, value, reason, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rejects,
            )
        finally:
            cur.close()
    return report
