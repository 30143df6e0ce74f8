"""Segment-spec events: the vectorised SQL that reads, checks and stores one batch.

A batch (an Arrow table registered as ``__xrm_b``) becomes ``__xrm_n``: one row per input row
with typed columns and ``__problem`` (NULL, or the first rule the row breaks). Valid rows go to
``events`` with ``INSERT OR IGNORE`` (``message_id`` is the key, so a re-load adds nothing) and
their ``products[]`` to ``order_lines``.

    >>> plan = plan_events(facts, Mapping.for_events(), batch.schema)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xrm.exceptions import MappingError
from xrm.ingest._columns import resolve_columns
from xrm.ingest._files import FileFacts
from xrm.ingest._mapping import EVENT_FIELDS, Mapping
from xrm.ingest._sql import (
    csv_row_sql,
    ident,
    json_sql,
    json_struct_sql,
    lit,
    number_sql,
    text_sql,
    timestamp_sql,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["INSERT_ORDER_LINES", "SEGMENT_TYPES", "EventPlan", "insert_events_sql", "plan_events"]

_QUOTED = re.compile(r"__q\((\w+)\)")  # __q(col) in a reason: the value in quotes

SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")
ORDER_COMPLETED = "Order Completed"

# Flat files may use Segment's camelCase names as well as xrm's snake_case ones.
_ALIASES: dict[str, tuple[str, ...]] = {
    "message_id": ("messageId",),
    "user_id": ("userId",),
    "anonymous_id": ("anonymousId",),
    "group_id": ("groupId",),
    "previous_id": ("previousId",),
    "timestamp": ("originalTimestamp", "ts"),
}
_TEXT_FIELDS = ("message_id", "type", "event", "name", "user_id", "anonymous_id", "group_id", "previous_id")
# JSONL: one parse of each line per list of paths.
_JSON_TEXT_PATHS = (
    "$.messageId",
    "$.type",
    "$.event",
    "$.name",
    "$.userId",
    "$.anonymousId",
    "$.groupId",
    "$.previousId",
    "$.timestamp",
    "$.originalTimestamp",
    "$.properties.order_id",
    "$.properties.revenue",
    "$.properties.total",
    "$.properties.currency",
)
_JSON_OBJECT_PATHS = ("$.properties", "$.traits", "$.context", "$.properties.products")

EVENT_COLUMNS = (
    "message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, ts, received_at, "
    "source, properties, traits, context, order_id, revenue, currency, load_id"
)


@dataclass
class EventPlan:
    """The SQL for one file's batches, built once from its columns."""

    normalise: str  # CREATE TEMP TABLE __xrm_n AS ...
    raw: str  # expression over the batch ``b``: the row as read, for rejected_rows.raw
    notes: list[str] = field(default_factory=list)


def plan_events(facts: FileFacts, mapping: Mapping, schema: pa.Schema) -> EventPlan:
    """Build the SQL for a file of events (JSONL Segment objects, or flat CSV / Parquet)."""
    if facts.format == "jsonl":
        return EventPlan(_normalise(_jsonl_fields(mapping), mapping), "b.__raw")
    return _flat_plan(facts, mapping, schema)


def _jsonl_fields(mapping: Mapping) -> str:
    s = {p: f"__s[{i}]" for i, p in enumerate(_JSON_TEXT_PATHS, 1)}
    o = {p: f"NULLIF(__o[{i}], 'null')" for i, p in enumerate(_JSON_OBJECT_PATHS, 1)}
    ts_text = f"NULLIF(trim(coalesce({s['$.timestamp']}, {s['$.originalTimestamp']})), '')"
    revenue_text = f"NULLIF(trim(coalesce({s['$.properties.revenue']}, {s['$.properties.total']})), '')"

    def txt(path: str) -> str:
        return f"NULLIF(trim({s[path]}), '')"

    return f"""
    SELECT __line,
        __j IS NULL AS __not_json,
        __j IS NOT NULL AND json_type(__j) <> 'OBJECT' AS __not_object,
        left(__raw, 200) AS __raw_head,
        {txt('$.messageId')} AS message_id, {txt('$.type')} AS type_text, {txt('$.event')} AS event,
        {txt('$.name')} AS name, {txt('$.userId')} AS user_id, {txt('$.anonymousId')} AS anonymous_id,
        {txt('$.groupId')} AS group_id, {txt('$.previousId')} AS previous_id,
        {ts_text} AS ts_text,
        {timestamp_sql(ts_text, _string(), mapping.timestamp_column_timezone, mapping.date_formats)} AS ts,
        {o['$.properties']} AS properties, {o['$.traits']} AS traits, {o['$.context']} AS context,
        FALSE AS __props_text_bad, FALSE AS __traits_text_bad, FALSE AS __context_text_bad,
        {txt('$.properties.order_id')} AS order_id,
        {revenue_text} AS revenue_text,
        TRY_CAST({revenue_text} AS DOUBLE) AS revenue,
        {txt('$.properties.currency')} AS currency,
        {o['$.properties.products']} AS products
    FROM (
        SELECT __line, __raw, __j,
            json_extract_string(__j, [{', '.join(lit(p) for p in _JSON_TEXT_PATHS)}]) AS __s,
            json_extract(__j, [{', '.join(lit(p) for p in _JSON_OBJECT_PATHS)}]) AS __o
        FROM (SELECT __line, __raw, TRY_CAST(__raw AS JSON) AS __j FROM __xrm_b)
    )"""


def _string() -> pa.DataType:
    import pyarrow as pa

    return pa.string()


def _flat_plan(facts: FileFacts, mapping: Mapping, schema: pa.Schema) -> EventPlan:
    cols = resolve_columns(facts, mapping, EVENT_FIELDS, _ALIASES)
    types = {name: schema.field(name).type for name in schema.names}
    notes: list[str] = []
    needed = [f for f in ("type", "timestamp") if f not in cols and f not in mapping.constants]
    if needed:
        raise MappingError(
            f"{facts.path} has no column for {' and '.join(needed)}: every event needs them. "
            f"Its columns are: {', '.join(facts.columns[:40])}. Name the columns type and timestamp, "
            f"map them in a mapping ([columns] type = \"...\"), or set a constant ([constants] "
            f'type = "track")'
        )

    def src(fld: str) -> tuple[str, pa.DataType] | None:
        if fld in cols:
            return f"b.{ident(cols[fld])}", types[cols[fld]]
        if fld in mapping.constants:
            return lit(mapping.constants[fld]), _string()
        return None

    def txt(fld: str) -> str:
        got = src(fld)
        return text_sql(*got) if got else "CAST(NULL AS VARCHAR)"

    def jsn(fld: str) -> str:
        got = src(fld)
        return f"NULLIF({json_sql(*got)}, 'null')" if got else "CAST(NULL AS JSON)"

    def bad_json(fld: str) -> str:
        got = src(fld)
        if not got:
            return "FALSE"
        return f"({text_sql(*got)} IS NOT NULL AND {json_sql(*got)} IS NULL)"

    ts = src("timestamp")
    assert ts is not None
    used = set(cols.values())
    unmapped = [c for c in facts.columns if c not in used]
    props = jsn("properties")
    traits = jsn("traits")
    if unmapped:
        # Columns with no event field of their own are kept: in traits for identify and group
        # calls, in properties for the others.
        extra = "json_object(" + ", ".join(f"{lit(c)}, b.{ident(c)}" for c in unmapped) + ")"
        type_expr = f"lower({txt('type')})"
        props = (
            f"(CASE WHEN {type_expr} IN ('identify', 'group') THEN {props} "
            f"ELSE json_merge_patch(coalesce({props}, '{{}}'), {extra}) END)"
        )
        traits = (
            f"(CASE WHEN {type_expr} IN ('identify', 'group') "
            f"THEN json_merge_patch(coalesce({traits}, '{{}}'), {extra}) ELSE {traits} END)"
        )
        notes.append(f"columns kept in properties / traits: {', '.join(unmapped[:10])}")
    if "message_id" not in cols and "message_id" not in mapping.constants:
        notes.append("no message_id column: ids derived from each event's content (see docs)")

    rev = src("revenue")
    flat_revenue = number_sql(*rev, mapping.decimal) if rev else "CAST(NULL AS DOUBLE)"
    flat_revenue_text = txt("revenue") if rev else "CAST(NULL AS VARCHAR)"
    fields = f"""
    SELECT __line, FALSE AS __not_json, FALSE AS __not_object, CAST(NULL AS VARCHAR) AS __raw_head,
        {', '.join(f'{txt(f)} AS {"type_text" if f == "type" else f}' for f in _TEXT_FIELDS)},
        {text_sql(*ts)} AS ts_text,
        {timestamp_sql(*ts, mapping.timestamp_column_timezone, mapping.date_formats)} AS ts,
        __props AS properties, __traits AS traits, {jsn('context')} AS context,
        {bad_json('properties')} AS __props_text_bad, {bad_json('traits')} AS __traits_text_bad,
        {bad_json('context')} AS __context_text_bad,
        coalesce({txt('order_id')}, NULLIF(trim(__p[1]), '')) AS order_id,
        coalesce({flat_revenue_text}, NULLIF(trim(coalesce(__p[2], __p[3])), '')) AS revenue_text,
        CASE WHEN {flat_revenue_text} IS NOT NULL THEN {flat_revenue}
             ELSE TRY_CAST(coalesce(__p[2], __p[3]) AS DOUBLE) END AS revenue,
        coalesce({txt('currency')}, NULLIF(trim(__p[4]), '')) AS currency,
        coalesce({jsn('products')}, NULLIF(json_extract(__props, '$.products'), 'null')) AS products
    FROM (
        SELECT b.*, {props} AS __props, {traits} AS __traits,
            json_extract_string({props}, ['$.order_id', '$.revenue', '$.total', '$.currency']) AS __p
        FROM __xrm_b b
    ) b"""
    data_cols = [c for c in facts.columns]
    raw = (
        csv_row_sql(data_cols, facts.delimiter or ",")
        if facts.format == "csv"
        else json_struct_sql(data_cols)
    )
    return EventPlan(_normalise(fields, mapping), raw, notes)


def _normalise(fields_sql: str, mapping: Mapping) -> str:
    """From the per-format field extraction to typed rows with their first broken rule."""
    types = ", ".join(SEGMENT_TYPES)
    oc = lit(ORDER_COMPLETED)
    dec = lit(mapping.decimal)
    bad_product = (
        "list_position(list_transform(CAST(products AS JSON[]), lambda p: json_type(p) <> 'OBJECT' "
        "OR (p->>'price' IS NOT NULL AND TRY_CAST(p->>'price' AS DOUBLE) IS NULL) "
        "OR (p->>'quantity' IS NOT NULL AND TRY_CAST(p->>'quantity' AS DOUBLE) IS NULL)), true)"
    )

    def problem(fld: str, value: str, reason: str) -> str:
        return f"{{'field': {lit(fld)}, 'value': CAST({value} AS VARCHAR), 'reason': {reason}}}"

    rules = [
        ("__not_json", problem("(line)", "__raw_head", lit(
            "is not valid JSON; write one JSON object per line (JSONL), e.g. "
            '{"type": "track", "event": "...", ...}'))),
        ("__not_object", problem("(line)", "__raw_head", lit(
            "is JSON but not an object; each line must be one event object {...}"))),
        ("type_text IS NULL", problem("type", "NULL", lit(
            f"type is missing; every event needs type = one of {types}"))),
        ("type IS NULL OR type NOT IN (" + ", ".join(lit(t) for t in SEGMENT_TYPES) + ")",
         problem("type", "type_text", f"format('type {{}} is not a Segment call type; use one of "
                 f"{types}', __q(type_text))")),
        ("ts_text IS NULL", problem("timestamp", "NULL", lit(
            "timestamp is missing; every event needs its time, e.g. 2024-05-01T12:00:00Z"))),
        ("ts IS NULL", problem("timestamp", "ts_text", "format('timestamp {} is not a time; use "
         "ISO 8601 (2024-05-01T12:00:00Z) or one of the mapping''s date_formats', "
         "__q(ts_text))")),
        ("type = 'track' AND event IS NULL", problem("event", "NULL", lit(
            "a track call needs event (its name, e.g. 'Order Completed')"))),
        ("type <> 'alias' AND user_id IS NULL AND anonymous_id IS NULL", problem(
            "userId", "NULL", "format('a {} call needs userId or anonymousId (Segment spec)', type)")),
        ("type = 'group' AND group_id IS NULL", problem("groupId", "NULL", lit(
            "a group call needs groupId"))),
        ("type = 'alias' AND (previous_id IS NULL OR user_id IS NULL)", problem(
            "previousId", "previous_id", lit("an alias call needs previousId and userId"))),
        ("__props_text_bad OR (properties IS NOT NULL AND json_type(properties) <> 'OBJECT')",
         problem("properties", "left(CAST(properties AS VARCHAR), 200)", lit(
             "properties is not a JSON object; give it as {\"key\": value, ...}"))),
        ("__traits_text_bad OR (traits IS NOT NULL AND json_type(traits) <> 'OBJECT')",
         problem("traits", "left(CAST(traits AS VARCHAR), 200)", lit(
             "traits is not a JSON object; give it as {\"key\": value, ...}"))),
        ("__context_text_bad OR (context IS NOT NULL AND json_type(context) <> 'OBJECT')",
         problem("context", "left(CAST(context AS VARCHAR), 200)", lit(
             "context is not a JSON object; give it as {\"key\": value, ...}"))),
        ("revenue_text IS NOT NULL AND (revenue IS NULL OR NOT isfinite(revenue))",
         problem("revenue", "revenue_text", f"format('revenue {{}} is not a number (decimal mark "
                 f"{{}}); write it like 12.50, or set decimal in the mapping', "
                 f"__q(revenue_text), {dec})")),
        ("is_oc AND order_id IS NULL", problem("order_id", "NULL", lit(
            "an Order Completed event needs properties.order_id (Segment e-commerce spec)"))),
        ("currency IS NOT NULL AND NOT regexp_full_match(currency, '[A-Za-z]{3}')",
         problem("currency", "currency", "format('currency {} is not a 3-letter ISO 4217 code "
                 "such as EUR', __q(currency))")),
        ("is_oc AND products IS NOT NULL AND json_type(products) <> 'ARRAY'",
         problem("products", "left(CAST(products AS VARCHAR), 200)", lit(
             "products must be a list of product objects [{\"product_id\": ..., \"price\": ...}]"))),
        (f"is_oc AND products IS NOT NULL AND {bad_product} > 0",
         problem("products", f"left(CAST(CAST(products AS JSON[])[{bad_product}] AS VARCHAR), 200)",
                 f"format('products[{{}}] is not an object with numeric price and quantity', "
                 f"{bad_product} - 1)")),
    ]
    case = "CASE " + " ".join(f"WHEN {cond} THEN {result}" for cond, result in rules) + " END"
    case = _QUOTED.sub(lambda m: f"('''' || left({m.group(1)}, 100) || '''')", case)
    digest = (
        "'xrm-' || left(sha256(concat_ws('|', type, coalesce(event, ''), coalesce(name, ''), "
        "coalesce(user_id, ''), coalesce(anonymous_id, ''), coalesce(group_id, ''), "
        "coalesce(previous_id, ''), strftime(ts, '%Y-%m-%dT%H:%M:%S.%f'), "
        "coalesce(CAST(properties AS VARCHAR), ''), coalesce(CAST(traits AS VARCHAR), ''))), 32)"
    )
    return f"""
    CREATE OR REPLACE TEMP TABLE __xrm_n AS
    SELECT __line, coalesce(message_id, {digest}) AS message_id, message_id IS NULL AS __derived,
        type, event, name, user_id, anonymous_id, group_id, previous_id, ts, properties, traits,
        context,
        CASE WHEN is_oc THEN order_id END AS order_id,
        CASE WHEN is_oc THEN revenue END AS revenue,
        CASE WHEN is_oc THEN upper(currency) END AS currency,
        CASE WHEN is_oc THEN products END AS products,
        {case} AS __problem
    FROM (
        SELECT *, type = 'track' AND event = {oc} AS is_oc
        FROM (SELECT *, lower(type_text) AS type FROM ({fields_sql}))
    )"""


def insert_events_sql() -> str:
    """Valid rows into events; ``?`` = source, load_id. The statement's count is rows added."""
    return f"""
    INSERT OR IGNORE INTO events ({EVENT_COLUMNS})
    SELECT message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, ts,
        timezone('UTC', now()), ?, properties, traits, context, order_id, revenue, currency, ?
    FROM __xrm_n WHERE __problem IS NULL"""


INSERT_ORDER_LINES = """
    INSERT OR IGNORE INTO order_lines
        (message_id, line_no, order_id, product_id, sku, name, category, price, quantity)
    SELECT message_id, line_no, order_id, p->>'product_id', p->>'sku', p->>'name', p->>'category',
        TRY_CAST(p->>'price' AS DOUBLE), coalesce(TRY_CAST(p->>'quantity' AS DOUBLE), 1)
    FROM (
        SELECT message_id, order_id, unnest(CAST(products AS JSON[])) AS p,
            generate_subscripts(CAST(products AS JSON[]), 1) AS line_no
        FROM __xrm_n WHERE __problem IS NULL AND products IS NOT NULL
    )"""
