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

__all__ = [
    "INSERT_ORDER_LINES",
    "SEGMENT_TYPES",
    "EventPlan",
    "insert_events_sql",
    "insert_order_lines_sql",
    "plan_events",
]

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
# JSONL: each line is parsed once, into these top-level keys.
_JSONL_KEYS = {
    "messageId": "VARCHAR",
    "type": "VARCHAR",
    "event": "VARCHAR",
    "name": "VARCHAR",
    "userId": "VARCHAR",
    "anonymousId": "VARCHAR",
    "groupId": "VARCHAR",
    "previousId": "VARCHAR",
    "timestamp": "VARCHAR",
    "originalTimestamp": "VARCHAR",
    "properties": "JSON",
    "traits": "JSON",
    "context": "JSON",
}

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


def plan_events(
    facts: FileFacts, mapping: Mapping, schema: pa.Schema, padded: frozenset[str] | None = None
) -> EventPlan:
    """Build the SQL for a file of events (JSONL Segment objects, or flat CSV / Parquet).

    ``padded``: the text columns whose values may have spaces at either end (from
    :func:`~xrm.ingest._padding.padded_columns` on a batch); the others skip ``trim``. ``None``
    trims every column.
    """
    if facts.format == "jsonl":
        return EventPlan(_normalise(_jsonl_fields(mapping), mapping), "b.__raw")
    return _flat_plan(facts, mapping, schema, padded)


def _jsonl_fields(mapping: Mapping) -> str:
    structure = lit("{" + ", ".join(f'"{k}": "{t}"' for k, t in _JSONL_KEYS.items()) + "}")

    def txt(key: str) -> str:
        return f"NULLIF(trim(__s.{ident(key)}), '')"

    ts_text = f"coalesce({txt('timestamp')}, {txt('originalTimestamp')})"
    return f"""
    SELECT __line, __not_json, __not_object, left(__raw, 200) AS __raw_head,
        {txt('messageId')} AS message_id, {txt('type')} AS type_text, {txt('event')} AS event,
        {txt('name')} AS name, {txt('userId')} AS user_id, {txt('anonymousId')} AS anonymous_id,
        {txt('groupId')} AS group_id, {txt('previousId')} AS previous_id,
        {ts_text} AS ts_text,
        {timestamp_sql(ts_text, _string(), mapping.timestamp_column_timezone, mapping.date_formats)} AS ts,
        __s.properties AS properties, __s.traits AS traits, __s.context AS context,
        FALSE AS __props_text_bad, FALSE AS __traits_text_bad, FALSE AS __context_text_bad,
        {_NO_FLAT}
    FROM (
        SELECT __line, __raw, __not_json, __not_object,
            CASE WHEN NOT __not_object THEN json_transform(__raw, {structure}) END AS __s
        FROM (
            SELECT __line, __raw, NOT json_valid(__raw) AS __not_json,
                NOT json_valid(__raw) OR NOT starts_with(__raw, '{{') AS __not_object
            FROM __xrm_b
        )
    )"""


# JSONL has no flat e-commerce columns: they come from properties.
_NO_FLAT = (
    "CAST(NULL AS VARCHAR) AS flat_order_id, CAST(NULL AS VARCHAR) AS flat_revenue_text, "
    "CAST(NULL AS DOUBLE) AS flat_revenue, CAST(NULL AS VARCHAR) AS flat_currency, "
    "CAST(NULL AS JSON) AS flat_products"
)


def _string() -> pa.DataType:
    import pyarrow as pa

    return pa.string()


def _flat_plan(
    facts: FileFacts, mapping: Mapping, schema: pa.Schema, padded: frozenset[str] | None
) -> EventPlan:
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

    def clean(fld: str) -> bool:
        return padded is not None and fld in cols and cols[fld] not in padded

    def txt(fld: str) -> str:
        got = src(fld)
        return text_sql(*got, clean=clean(fld)) if got else "CAST(NULL AS VARCHAR)"

    def jsn(fld: str) -> str:
        got = src(fld)
        return f"NULLIF({json_sql(*got, clean=clean(fld))}, 'null')" if got else "CAST(NULL AS JSON)"

    def bad_json(fld: str, parsed: str) -> str:
        got = src(fld)
        if not got:
            return "FALSE"
        return f"({text_sql(*got, clean=clean(fld))} IS NOT NULL AND {parsed} IS NULL)"

    ts = src("timestamp")
    assert ts is not None
    used = set(cols.values())
    unmapped = [c for c in facts.columns if c not in used]
    props, traits = "__props", "__traits"
    if unmapped:
        # Columns with no event field of their own are kept: in traits for identify and group
        # calls, in properties for the others.
        extra = "json_object(" + ", ".join(f"{lit(c)}, b.{ident(c)}" for c in unmapped) + ")"
        type_expr = f"lower({txt('type')})"
        props = (
            f"(CASE WHEN {type_expr} IN ('identify', 'group') THEN __props "
            f"ELSE json_merge_patch(coalesce(__props, '{{}}'), {extra}) END)"
        )
        traits = (
            f"(CASE WHEN {type_expr} IN ('identify', 'group') "
            f"THEN json_merge_patch(coalesce(__traits, '{{}}'), {extra}) ELSE __traits END)"
        )
        notes.append(f"columns kept in properties / traits: {', '.join(unmapped[:10])}")
    if "message_id" not in cols and "message_id" not in mapping.constants:
        notes.append("no message_id column: ids derived from each event's content (see docs)")

    import pyarrow as pa

    ts_expr, ts_type = ts
    # A typed timestamp column needs no text (casting every value to text is slow).
    ts_text = (
        text_sql(*ts, clean=clean("timestamp"))
        if pa.types.is_string(ts_type) or pa.types.is_large_string(ts_type)
        else f"CASE WHEN {ts_expr} IS NOT NULL THEN '(typed)' END"
    )
    rev = src("revenue")
    fields = f"""
    SELECT __line, FALSE AS __not_json, FALSE AS __not_object, CAST(NULL AS VARCHAR) AS __raw_head,
        {', '.join(f'{txt(f)} AS {"type_text" if f == "type" else f}' for f in _TEXT_FIELDS)},
        {ts_text} AS ts_text,
        {timestamp_sql(*ts, mapping.timestamp_column_timezone, mapping.date_formats,
                       clean=clean("timestamp"))} AS ts,
        {props} AS properties, {traits} AS traits, {jsn('context')} AS context,
        {bad_json('properties', '__props')} AS __props_text_bad,
        {bad_json('traits', '__traits')} AS __traits_text_bad,
        {bad_json('context', jsn('context'))} AS __context_text_bad,
        {txt('order_id')} AS flat_order_id,
        {txt('revenue')} AS flat_revenue_text,
        {number_sql(*rev, mapping.decimal, clean=clean("revenue")) if rev else 'CAST(NULL AS DOUBLE)'}
            AS flat_revenue,
        {txt('currency')} AS flat_currency,
        {jsn('products')} AS flat_products
    FROM (SELECT b.*, {jsn('properties')} AS __props, {jsn('traits')} AS __traits FROM __xrm_b b) b"""
    raw = (
        csv_row_sql(list(facts.columns), facts.delimiter or ",")
        if facts.format == "csv"
        else json_struct_sql(list(facts.columns))
    )
    return EventPlan(_normalise(fields, mapping), raw, notes)


def _normalise(fields_sql: str, mapping: Mapping) -> str:
    """From the per-format field extraction to typed rows with their first broken rule."""
    types = ", ".join(SEGMENT_TYPES)
    dec = lit(mapping.decimal)

    def problem(fld: str, value: str, reason: str) -> str:
        return f"{{'field': {lit(fld)}, 'value': CAST({value} AS VARCHAR), 'reason': {reason}}}"

    def not_object(col: str) -> str:
        # Valid JSON (checked on the way in) is an object exactly when it starts with '{'.
        return f"({col} IS NOT NULL AND NOT starts_with(CAST({col} AS VARCHAR), '{{'))"

    rules = [
        ("__not_json", problem("(line)", "__raw_head", lit(
            "is not valid JSON; write one JSON object per line (JSONL), e.g. "
            '{"type": "track", "event": "...", ...}'))),
        ("__not_object", problem("(line)", "__raw_head", lit(
            "is JSON but not an object; each line must be one event object {...}"))),
        ("type_text IS NULL", problem("type", "NULL", lit(
            f"type is missing; every event needs type = one of {types}"))),
        ("type NOT IN (" + ", ".join(lit(t) for t in SEGMENT_TYPES) + ")",
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
        (f"__props_text_bad OR {not_object('properties')}",
         problem("properties", "left(CAST(properties AS VARCHAR), 200)", lit(
             "properties is not a JSON object; give it as {\"key\": value, ...}"))),
        (f"__traits_text_bad OR {not_object('traits')}",
         problem("traits", "left(CAST(traits AS VARCHAR), 200)", lit(
             "traits is not a JSON object; give it as {\"key\": value, ...}"))),
        (f"__context_text_bad OR {not_object('context')}",
         problem("context", "left(CAST(context AS VARCHAR), 200)", lit(
             "context is not a JSON object; give it as {\"key\": value, ...}"))),
        ("is_oc AND revenue_text IS NOT NULL AND (revenue IS NULL OR NOT isfinite(revenue))",
         problem("properties.revenue", "revenue_text", f"format('revenue {{}} is not a number "
                 f"(decimal mark {{}}); write it like 12.50, or set decimal in the mapping', "
                 f"__q(revenue_text), {dec})")),
        ("is_oc AND order_id IS NULL", problem("properties.order_id", "NULL", lit(
            "an Order Completed event needs properties.order_id (Segment e-commerce spec)"))),
        ("is_oc AND currency IS NOT NULL AND NOT regexp_full_match(currency, '[A-Za-z]{3}')",
         problem("properties.currency", "currency", "format('currency {} is not a 3-letter ISO "
                 "4217 code such as EUR', __q(currency))")),
        ("is_oc AND products IS NOT NULL AND NOT starts_with(CAST(products AS VARCHAR), '[')",
         problem("properties.products", "left(CAST(products AS VARCHAR), 200)", lit(
             "products must be a list of product objects [{\"product_id\": ..., \"price\": ...}]"))),
        ("__bad_product > 0",
         problem("properties.products", "left(CAST(CAST(products AS JSON[])[__bad_product] AS VARCHAR), 200)",
                 "format('products[{}] is not an object with numeric price and quantity', "
                 "__bad_product - 1)")),
    ]
    case = "CASE " + " ".join(f"WHEN {cond} THEN {result}" for cond, result in rules) + " END"
    case = _QUOTED.sub(lambda m: "('''' || left(" + m.group(1) + ", 100) || '''')", case)
    bad_product = (
        "list_position(list_transform(CAST(products AS JSON[]), lambda p: json_type(p) <> 'OBJECT' "
        "OR (p->>'price' IS NOT NULL AND TRY_CAST(p->>'price' AS DOUBLE) IS NULL) "
        "OR (p->>'quantity' IS NOT NULL AND TRY_CAST(p->>'quantity' AS DOUBLE) IS NULL)), true)"
    )
    digest = (
        "'xrm-' || left(sha256(concat_ws('|', type, coalesce(event, ''), coalesce(name, ''), "
        "coalesce(user_id, ''), coalesce(anonymous_id, ''), coalesce(group_id, ''), "
        "coalesce(previous_id, ''), strftime(ts, '%Y-%m-%dT%H:%M:%S.%f'), "
        "coalesce(CAST(properties AS VARCHAR), ''), coalesce(CAST(traits AS VARCHAR), ''))), 32)"
    )
    # Only Order Completed events have their e-commerce fields read (CASE evaluates lazily).
    ecommerce = (
        "CASE WHEN is_oc AND starts_with(CAST(properties AS VARCHAR), '{') THEN "
        "json_extract_string(properties, ['$.order_id', '$.revenue', '$.total', '$.currency', "
        "'$.products']) END"
    )
    return f"""
    CREATE OR REPLACE TEMP TABLE __xrm_n AS
    SELECT __line,
        CASE WHEN message_id IS NULL THEN {digest} ELSE message_id END AS message_id,
        message_id IS NULL AS __derived,
        type, event, name, user_id, anonymous_id, group_id, previous_id, ts, properties, traits,
        context, order_id, revenue, upper(currency) AS currency, products,
        {case} AS __problem
    FROM (
        SELECT *, CASE WHEN products IS NOT NULL AND starts_with(CAST(products AS VARCHAR), '[')
                       THEN {bad_product} END AS __bad_product
        FROM (
            SELECT * EXCLUDE (__e, flat_order_id, flat_revenue_text, flat_revenue, flat_currency,
                              flat_products),
                CASE WHEN is_oc THEN coalesce(flat_order_id, NULLIF(trim(__e[1]), '')) END AS order_id,
                CASE WHEN is_oc THEN coalesce(flat_revenue_text, NULLIF(trim(coalesce(__e[2], __e[3])), ''))
                     END AS revenue_text,
                CASE WHEN is_oc THEN (CASE WHEN flat_revenue_text IS NOT NULL THEN flat_revenue
                     ELSE TRY_CAST(coalesce(__e[2], __e[3]) AS DOUBLE) END) END AS revenue,
                CASE WHEN is_oc THEN coalesce(flat_currency, NULLIF(trim(__e[4]), '')) END AS currency,
                CASE WHEN is_oc THEN coalesce(flat_products, NULLIF(TRY_CAST(__e[5] AS JSON), 'null'))
                     END AS products
            FROM (
                SELECT *, {ecommerce} AS __e
                FROM (
                    SELECT *, type = 'track' AND event = {lit(ORDER_COMPLETED)} AS is_oc
                    FROM (SELECT *, lower(type_text) AS type FROM ({fields_sql}))
                )
            )
        )
    )"""


def insert_events_sql(ignore: bool = True, table: str = "events") -> str:
    """Valid rows into events (or ``table``, a bulk load's staging table); ``?`` = source, load_id.
    The statement's count is rows added.

    ``ignore=False`` is a plain ``INSERT``: it fails with a ``duckdb.ConstraintException`` when
    an event is stored already, and is cheaper than ``INSERT OR IGNORE`` (which looks every key up
    before inserting it) when none is (see :mod:`xrm.ingest._load`).
    """
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    return f"""
    {verb} INTO {table} ({EVENT_COLUMNS})
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


def insert_order_lines_sql(ignore: bool = True) -> str:
    """The valid events' ``products[]`` into order_lines; ``ignore`` as in :func:`insert_events_sql`."""
    return INSERT_ORDER_LINES if ignore else INSERT_ORDER_LINES.replace("INSERT OR IGNORE", "INSERT", 1)
