"""Mapping files: how a source file's columns become xrm records or events (TOML, typed, checked).

    >>> from xrm.ingest import read_mapping
    >>> mapping = read_mapping("mappings/webshop.toml")  # doctest: +SKIP

Every problem of a mapping file is gathered into one :class:`~xrm.exceptions.MappingError` that
names the file and the key, rather than stopping at the first.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from xrm.exceptions import MappingError

__all__ = [
    "DEFAULT_DATE_FORMATS",
    "EVENT_FIELDS",
    "FORMATS",
    "RECORD_FIELDS",
    "Mapping",
    "read_mapping",
]

Kind = Literal["records", "events"]

FORMATS = ("csv", "jsonl", "parquet")
ENCODINGS = ("auto", "utf-8", "latin-1", "cp1252")
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d")

# Columns of the records table a mapping may fill (record_id, source, extra and load_id are xrm's).
RECORD_FIELDS = (
    "source_key",
    "party_kind",
    "title",
    "first_name",
    "last_name",
    "organisation",
    "birth_date",
    "gender",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "loyalty_card",
    "account_id",
    "user_id",
    "updated_at",
)

# Flat event columns (CSV / Parquet); JSONL events are Segment-spec objects and need no mapping.
EVENT_FIELDS = (
    "message_id",
    "type",
    "event",
    "name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "timestamp",
    "properties",
    "traits",
    "context",
    "order_id",
    "revenue",
    "currency",
    "products",
)

_KEYS = (
    "kind",
    "source",
    "format",
    "encoding",
    "delimiter",
    "decimal",
    "date_formats",
    "timestamp_column_timezone",
    "columns",
    "constants",
)
_DIRECTIVE = re.compile(r"%-?(.)")
_STRPTIME_LETTERS = set("aAwdbBmyYHIpMSfzZjUWcxXg%")
_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class Mapping:
    """A parsed, checked mapping: ``Mapping(kind="records", source="crm", columns={...})``.

    ``columns`` maps an xrm field to the source column that fills it; ``constants`` gives fixed
    values for fields the file lacks. ``origin`` names the mapping file in error messages.
    """

    kind: Kind
    source: str | None = None
    format: str | None = None  # None: from the file extension
    encoding: str = "auto"
    delimiter: str = "auto"
    decimal: str = "."
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    timestamp_column_timezone: str = "UTC"
    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    origin: str = "(no mapping file)"

    @classmethod
    def for_events(cls, source: str | None = None) -> Mapping:
        """The mapping used for event files given without one (Segment names, UTC)."""
        return cls(kind="events", source=source)

    @classmethod
    def from_dict(cls, data: AnyMapping[str, Any], origin: str = "(mapping)") -> Mapping:
        """Check ``data`` (a parsed TOML document) and build the mapping, or raise one report."""
        problems: list[str] = []

        def problem(key: str, text: str) -> None:
            problems.append(f"  {key} {text}" if text.startswith("= ") else f"  {key}: {text}")

        for key in data:
            if key not in _KEYS:
                problem(key, f"unknown key{_did_you_mean(key, _KEYS)}; known keys: {', '.join(_KEYS)}")

        kind = data.get("kind")
        if kind not in ("records", "events"):
            problem("kind", f"= {kind!r}: must be \"records\" or \"events\"")
            kind = None
        source = data.get("source")
        if source is not None and (not isinstance(source, str) or not _SOURCE_NAME.fullmatch(source)):
            problem(
                "source",
                f"= {source!r}: must be a name of letters, digits, '_', '.' or '-' (e.g. \"webshop\")",
            )
            source = None
        if kind == "records" and "source" not in data:
            problem("source", 'missing: records need the source system\'s name, e.g. source = "webshop"')

        fmt = _choice(data, "format", (*FORMATS, None), problem)
        encoding = _choice(data, "encoding", ENCODINGS, problem, default="auto")
        decimal = _choice(data, "decimal", (".", ","), problem, default=".")
        delimiter = data.get("delimiter", "auto")
        if not isinstance(delimiter, str) or not (delimiter == "auto" or len(delimiter) == 1):
            problem(
                "delimiter",
                f"= {delimiter!r}: must be \"auto\" or one character such as \",\" \";\" \"\\t\" \"|\"",
            )
            delimiter = "auto"
        elif delimiter in ('"', "\n", "\r"):
            problem("delimiter", f"= {delimiter!r} cannot separate columns")
            delimiter = "auto"

        date_formats = data.get("date_formats", list(DEFAULT_DATE_FORMATS))
        if not isinstance(date_formats, list) or not date_formats:
            problem("date_formats", f"= {date_formats!r}: must be a non-empty list such as [\"%d.%m.%Y\"]")
            date_formats = list(DEFAULT_DATE_FORMATS)
        for i, fmt_text in enumerate(date_formats):
            bad = _bad_date_format(fmt_text)
            if bad:
                problem(f"date_formats[{i}]", f"= {fmt_text!r}: {bad}")

        tz = data.get("timestamp_column_timezone", "UTC")
        if not isinstance(tz, str) or not _known_zone(tz):
            problem(
                "timestamp_column_timezone",
                f"= {tz!r}: not a time zone; use an IANA name such as \"UTC\" or \"Europe/Berlin\"",
            )
            tz = "UTC"

        fields = RECORD_FIELDS if kind == "records" else EVENT_FIELDS
        columns = _table(data, "columns", problem, fields if kind else None, want="a source column name")
        constants = _table(data, "constants", problem, fields if kind else None, want="a value")
        for key in sorted(set(columns) & set(constants)):
            problem(
                f"columns.{key}",
                "is also set in [constants]; give a field a column or a constant, not both",
            )
        if kind == "records" and "source_key" not in columns:
            problem(
                "columns.source_key",
                "missing: records need the column that identifies a row in the source system, "
                'e.g. source_key = "customer_no"',
            )
        if problems:
            raise MappingError(
                f"mapping {origin} has {len(problems)} problem(s):\n"
                + "\n".join(problems)
                + "\nSee docs/loading.md for the mapping format."
            )
        return cls(
            kind=kind,  # type: ignore[arg-type]
            source=source,
            format=fmt,
            encoding=encoding,
            delimiter=delimiter,
            decimal=decimal,
            date_formats=tuple(date_formats),
            timestamp_column_timezone=tz,
            columns=columns,
            constants=constants,
            origin=origin,
        )

    def with_defaults(self, **changes: Any) -> Mapping:
        """A copy with some settings replaced, e.g. ``mapping.with_defaults(source="shop")``."""
        return replace(self, **changes)


def read_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping TOML file: ``read_mapping("mappings/webshop.toml")``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(
            f"mapping {path} does not exist; check the path (relative to {Path.cwd()})"
        ) from None
    except UnicodeDecodeError:
        raise MappingError(f"mapping {path} is not UTF-8 text; save it as UTF-8 TOML") from None
    except OSError as exc:
        raise MappingError(f"mapping {path} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(
            f"mapping {path} is not valid TOML ({exc}); see docs/loading.md for an example"
        ) from None
    return Mapping.from_dict(data, origin=str(path))


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _choice(
    data: AnyMapping[str, Any],
    key: str,
    allowed: tuple[Any, ...],
    problem: Any,
    default: Any = None,
) -> Any:
    value = data.get(key, default)
    if value not in allowed:
        shown = " | ".join(f'"{a}"' for a in allowed if a is not None)
        problem(key, f"= {value!r}: must be one of {shown}")
        return default
    return value


def _bad_date_format(text: Any) -> str:
    if not isinstance(text, str) or "%" not in text:
        return "must be a strptime format text such as \"%d.%m.%Y\""
    unknown = [d for d in _DIRECTIVE.findall(text) if d not in _STRPTIME_LETTERS]
    if unknown:
        return f"unknown directive(s) {', '.join('%' + d for d in unknown)}"
    return ""


def _known_zone(name: str) -> bool:
    if name.upper() == "UTC":
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _table(
    data: AnyMapping[str, Any],
    key: str,
    problem: Any,
    fields: tuple[str, ...] | None,
    *,
    want: str,
) -> dict[str, str]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        problem(key, f"must be a table ([{key}]), got {table!r}")
        return {}
    out: dict[str, str] = {}
    for name, value in table.items():
        if fields is not None and name not in fields:
            problem(
                f"{key}.{name}",
                f"is not a field{_did_you_mean(name, fields)}; fields: {', '.join(fields)}",
            )
            continue
        if key == "columns":
            if not isinstance(value, str) or not value:
                problem(f"{key}.{name}", f"= {value!r}: must be {want} (a non-empty text)")
                continue
            out[name] = value
        else:
            if isinstance(value, bool | int | float | str | date | datetime):
                out[name] = str(value).lower() if isinstance(value, bool) else str(value)
            else:
                problem(f"{key}.{name}", f"= {value!r}: must be {want} (text, number, date or boolean)")
    return out
