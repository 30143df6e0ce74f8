"""Records (a source system's rows about parties): the vectorised SQL for one batch.

``record_id = source || ':' || source_key`` is the key, so a re-load adds nothing; columns the
mapping does not name are kept in ``extra`` (JSON) for lineage.

    >>> plan = plan_records(facts, read_mapping("mappings/crm.toml"), batch.schema)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xrm.ingest._columns import resolve_columns
from xrm.ingest._files import FileFacts
from xrm.ingest._mapping import RECORD_FIELDS, Mapping
from xrm.ingest._sql import csv_row_sql, date_sql, ident, json_struct_sql, lit, text_sql, timestamp_sql

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RecordPlan", "insert_records_sql", "plan_records"]

PARTY_KINDS = ("person", "organisation")


@dataclass
class RecordPlan:
    normalise: str
    raw: str
    notes: list[str] = field(default_factory=list)


def plan_records(facts: FileFacts, mapping: Mapping, schema: pa.Schema) -> RecordPlan:
    """Build the SQL that turns a batch of ``facts``' rows into checked records."""
    import pyarrow as pa

    cols = resolve_columns(facts, mapping, tuple(mapping.columns))
    types = {name: schema.field(name).type for name in schema.names}

    def src(fld: str) -> tuple[str, pa.DataType] | None:
        if fld in cols:
            return f"b.{ident(cols[fld])}", types[cols[fld]]
        if fld in mapping.constants:
            return lit(mapping.constants[fld]), pa.string()
        return None

    def where(fld: str) -> str:
        return f"column {cols[fld]!r}" if fld in cols else "constant"

    values: dict[str, str] = {}
    texts: dict[str, str] = {}
    for fld in RECORD_FIELDS:
        got = src(fld)
        texts[fld] = text_sql(*got) if got else "CAST(NULL AS VARCHAR)"
        if got is None:
            values[fld] = "NULL"
        elif fld == "birth_date":
            values[fld] = date_sql(*got, mapping.date_formats)
        elif fld == "updated_at":
            values[fld] = timestamp_sql(*got, mapping.timestamp_column_timezone, mapping.date_formats)
        elif fld == "party_kind":
            values[fld] = f"lower({texts[fld]})"
        else:
            values[fld] = texts[fld]
    used = set(cols.values())
    unmapped = [c for c in facts.columns if c not in used]
    extra = (
        "json_object(" + ", ".join(f"{lit(c)}, b.{ident(c)}" for c in unmapped) + ")"
        if unmapped
        else "CAST(NULL AS JSON)"
    )
    formats = ", ".join(mapping.date_formats)

    def problem(fld: str, value: str, reason: str) -> str:
        return f"{{'field': {lit(fld)}, 'value': CAST({value} AS VARCHAR), 'reason': {reason}}}"

    def quoted(expr: str) -> str:
        return f"('''' || left({expr}, 100) || '''')"

    def reason(template: str, value: str) -> str:
        """``template`` with ``{}`` where the quoted value goes."""
        return f"format({lit(template)}, {quoted(value)})"

    rules = [
        ("source_key IS NULL", problem("source_key", "NULL", lit(
            f"source_key ({where('source_key')}) is empty; every record needs its key in the "
            f"source system"))),
    ]
    if "party_kind" in cols or "party_kind" in mapping.constants:
        rules.append((
            "party_kind IS NOT NULL AND party_kind NOT IN ('person', 'organisation')",
            problem("party_kind", "__t_party_kind", reason(
                f"party_kind {{}} ({where('party_kind')}) must be person or organisation",
                "__t_party_kind")),
        ))
    if "birth_date" in cols or "birth_date" in mapping.constants:
        rules += [
            ("__t_birth_date IS NOT NULL AND birth_date IS NULL", problem(
                "birth_date", "__t_birth_date", reason(
                    f"birth_date {{}} ({where('birth_date')}) is not a date (expected {formats}); "
                    f"fix the value or add its format to date_formats in the mapping",
                    "__t_birth_date"))),
            ("birth_date > current_date", problem("birth_date", "__t_birth_date", reason(
                f"birth_date {{}} ({where('birth_date')}) is in the future", "__t_birth_date"))),
        ]
    if "updated_at" in cols or "updated_at" in mapping.constants:
        rules.append((
            "__t_updated_at IS NOT NULL AND updated_at IS NULL",
            problem("updated_at", "__t_updated_at", reason(
                f"updated_at {{}} ({where('updated_at')}) is not a time; use ISO 8601 "
                f"(2024-05-01T12:00:00) or one of the mapping's date_formats", "__t_updated_at")),
        ))
    case = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in rules) + " END"
    source = lit(mapping.source or "")
    normalise = f"""
    CREATE OR REPLACE TEMP TABLE __xrm_n AS
    SELECT *, {source} || ':' || source_key AS record_id, {case} AS __problem
    FROM (
        SELECT b.__line,
            {', '.join(f'{values[f]} AS {f}' for f in RECORD_FIELDS)},
            {texts['party_kind']} AS __t_party_kind, {texts['birth_date']} AS __t_birth_date,
            {texts['updated_at']} AS __t_updated_at,
            {extra} AS extra
        FROM __xrm_b b
    )"""
    raw = (
        csv_row_sql(list(facts.columns), facts.delimiter or ",")
        if facts.format == "csv"
        else json_struct_sql(list(facts.columns))
    )
    notes = [f"unmapped columns kept in records.extra: {', '.join(unmapped[:10])}"] if unmapped else []
    return RecordPlan(normalise, raw, notes)


def insert_records_sql(ignore: bool = True) -> str:
    """Valid rows into records; ``?`` = source, load_id. The statement's count is rows added.
    ``ignore=False``: a plain ``INSERT``, failing when a record_id is stored already."""
    fields = ", ".join(RECORD_FIELDS)
    # ::VARCHAR: DuckDB 1.5 (the encryption extra's version) types an all-empty column as INTEGER.
    values = ", ".join(
        "coalesce(party_kind::VARCHAR, 'person')" if f == "party_kind" else f for f in RECORD_FIELDS
    )
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    return f"""
    {verb} INTO records (record_id, source, {fields}, extra, load_id)
    SELECT record_id, ?, {values}, extra, ?
    FROM __xrm_n WHERE __problem IS NULL"""
