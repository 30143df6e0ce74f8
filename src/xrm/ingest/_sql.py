"""SQL snippets shared by the event and record loaders: quoting and vectorised parsing.

Each helper turns a column (whose Arrow type is known) into a DuckDB expression that yields the
parsed value or NULL; the loaders flag "present but NULL after parsing" as a rejected row.

    >>> number_sql('"betrag"', pa.string(), decimal=",")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "csv_row_sql",
    "date_sql",
    "ident",
    "json_sql",
    "json_struct_sql",
    "lit",
    "number_sql",
    "text_sql",
    "timestamp_sql",
]

# An explicit UTC offset at the end of a time: '...T12:00:00Z', '... 12:00+01:00'.
_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|z|[+-]\d\d(:?\d\d)?)$"


def ident(name: str) -> str:
    """A quoted SQL identifier: ``ident('Kunden Nr')`` -> ``"Kunden Nr"``."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _is_text(atype: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(atype) or pa.types.is_large_string(atype) or pa.types.is_null(atype))


def text_sql(expr: str, atype: pa.DataType, *, clean: bool = False) -> str:
    """Trimmed text, empty -> NULL. ``clean``: the column is known to have no value with spaces
    at either end (see :func:`~xrm.ingest._padding.padded_columns`), so ``trim`` is skipped: it
    decodes every character and costs more than the JSON parse of the same text."""
    if _is_text(atype):
        return f"NULLIF({expr}, '')" if clean else f"NULLIF(trim({expr}), '')"
    return f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"


def number_sql(expr: str, atype: pa.DataType, decimal: str = ".", *, clean: bool = False) -> str:
    """A DOUBLE; text uses the mapping's decimal mark ('12,50' with decimal = ',')."""
    import pyarrow as pa

    if pa.types.is_integer(atype) or pa.types.is_floating(atype) or pa.types.is_decimal(atype):
        return f"CAST({expr} AS DOUBLE)"
    t = text_sql(expr, atype, clean=clean)
    if decimal == ",":
        # '1.234,50' -> 1234.5; a '.' that is not a thousands separator is refused, not guessed.
        return (
            f"(CASE WHEN contains({t}, '.') AND NOT regexp_full_match({t}, "
            rf"'[+-]?\d{{1,3}}(\.\d{{3}})+(,\d*)?') THEN NULL "
            f"ELSE TRY_CAST(replace(replace({t}, '.', ''), ',', '.') AS DOUBLE) END)"
        )
    return f"(CASE WHEN contains({t}, ',') THEN NULL ELSE TRY_CAST({t} AS DOUBLE) END)"


def _formats(formats: tuple[str, ...], with_time: bool) -> str:
    items: list[str] = []
    for f in formats:
        if with_time:
            items += [f + " %H:%M:%S", f + " %H:%M", f + "T%H:%M:%S"]
        items.append(f)
    return "[" + ", ".join(lit(i) for i in items) + "]"


def date_sql(expr: str, atype: pa.DataType, formats: tuple[str, ...]) -> str:
    """A DATE, trying the mapping's ``date_formats`` in order."""
    import pyarrow as pa

    if pa.types.is_date(atype):
        return f"CAST({expr} AS DATE)"
    if pa.types.is_timestamp(atype):
        return f"CAST({expr} AS DATE)"
    return f"CAST(try_strptime({text_sql(expr, atype)}, {_formats(formats, False)}) AS DATE)"


def timestamp_sql(
    expr: str, atype: pa.DataType, tz: str, formats: tuple[str, ...], *, clean: bool = False
) -> str:
    """A UTC TIMESTAMP. Text with an offset ('Z', '+01:00') is exact; a time without one is read
    in ``tz`` (the mapping's ``timestamp_column_timezone``). Needs the session TimeZone = UTC."""
    import pyarrow as pa

    def to_utc(naive: str) -> str:
        return naive if tz.upper() == "UTC" else f"timezone('UTC', timezone({lit(tz)}, {naive}))"

    if pa.types.is_timestamp(atype):
        if atype.tz:  # type: ignore[attr-defined]
            return f"timezone('UTC', {expr})"
        return to_utc(f"CAST({expr} AS TIMESTAMP)")
    if pa.types.is_date(atype):
        return to_utc(f"CAST({expr} AS TIMESTAMP)")
    t = text_sql(expr, atype, clean=clean)
    other = to_utc(f"try_strptime({t}, {_formats(formats, True)})")
    if tz.upper() == "UTC":
        return f"coalesce(timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ)), {other})"
    return (
        f"(CASE WHEN regexp_matches({t}, {lit(_OFFSET)}) "
        f"THEN timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ)) "
        f"ELSE coalesce({to_utc(f'TRY_CAST({t} AS TIMESTAMP)')}, {other}) END)"
    )


def json_sql(expr: str, atype: pa.DataType, *, clean: bool = False) -> str:
    """JSON from a JSON text column (invalid -> NULL) or from a struct / map / list column."""
    if _is_text(atype):
        return f"TRY_CAST({text_sql(expr, atype, clean=clean)} AS JSON)"
    return f"to_json({expr})"


def json_struct_sql(columns: list[str], table: str = "b") -> str:
    """The row as a JSON object (Parquet rows in rejected_rows.raw)."""
    if not columns:
        return "NULL"
    return "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {table}.{ident(c)}" for c in columns) + "))"


def csv_row_sql(columns: list[str], delimiter: str, table: str = "b") -> str:
    """The row as one CSV line again (CSV rows in rejected_rows.raw), quoted where needed."""
    d = lit(delimiter)
    parts = []
    for c in columns:
        v = f"{table}.{ident(c)}"
        parts.append(
            f"(CASE WHEN {v} IS NULL THEN '' WHEN contains({v}, {d}) OR contains({v}, '\"') "
            f"OR contains({v}, chr(10)) THEN '\"' || replace({v}, '\"', '\"\"') || '\"' ELSE {v} END)"
        )
    return f" || {d} || ".join(parts) if parts else "NULL"
