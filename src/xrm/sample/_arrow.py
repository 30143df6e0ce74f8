"""Vectorised building blocks for millions of events: UUIDs, JSON fragments, event tables.

Strings are assembled by Arrow compute kernels, never row by row in Python, so a chunk of five
million events takes seconds.  Values spliced into JSON here are ids, numbers and names from the
sample's own lists, none of which contains a quote or backslash.

    >>> concat(pa.array(['{"a":']), pa.array(['1']), '}')  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVENT_SCHEMA",
    "concat",
    "event_table",
    "lookup",
    "money",
    "take",
    "uuid4",
]

# Low-cardinality columns are dictionary-encoded in memory (built from small lookup tables, never
# materialised row by row); the Parquet files are written without the Arrow schema, so readers
# see plain strings.
_DICT = pa.dictionary(pa.int32(), pa.string())
EVENT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", _DICT),
        ("event", _DICT),
        ("name", _DICT),
        ("user_id", _DICT),
        ("anonymous_id", _DICT),
        ("group_id", pa.string()),
        ("previous_id", pa.string()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("properties", _DICT),
        ("traits", pa.string()),
        ("context", _DICT),
        ("order_id", pa.string()),
        ("revenue", pa.float64()),
        ("currency", _DICT),
    ]
)

_HEX2 = np.array(
    [ord(f"{b:02x}"[0]) | (ord(f"{b:02x}"[1]) << 8) for b in range(256)], dtype="<u2"
)
_DASHES = np.full(36, ord("-"), dtype=np.uint8)


def uuid4(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random version-4 UUID strings, drawn from ``rng`` (so they are reproducible)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = _HEX2[raw].view(np.uint8)  # (n, 32) ASCII
    out = np.broadcast_to(_DASHES, (n, 36)).copy()  # block copies beat strided column writes
    out[:, 0:8] = hexed[:, 0:8]
    out[:, 9:13] = hexed[:, 8:12]
    out[:, 14:18] = hexed[:, 12:16]
    out[:, 19:23] = hexed[:, 16:20]
    out[:, 24:36] = hexed[:, 20:32]
    buf = pa.py_buffer(out)
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32) * 36)
    return pa.StringArray.from_buffers(n, offsets, buf)


def concat(*parts: Any) -> pa.Array:
    """Element-wise string concatenation of arrays and scalars (a null part counts as empty)."""
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")


def money(cents: np.ndarray) -> pa.Array:
    """Euro amounts from integer cents, as JSON numbers (``35.9``): the shortest decimal text."""
    return pc.cast(pa.array(np.asarray(cents, dtype=np.int64) / 100.0), pa.string())


def take(values: np.ndarray | pa.Array, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``values[index]`` as an Arrow array; rows where ``valid`` is False become null."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    idx = pa.array(np.asarray(index, dtype=np.int64), mask=None if valid is None else ~valid)
    return arr.take(idx)


def lookup(
    dictionary: pa.Array | list[str] | np.ndarray, index: np.ndarray, valid: np.ndarray | None = None
) -> pa.DictionaryArray:
    """``dictionary[index]`` without copying strings: a dictionary-encoded array (null where not
    ``valid``)."""
    values = dictionary if isinstance(dictionary, pa.Array) else pa.array(dictionary, type=pa.string())
    # Parquet refuses nulls inside a dictionary and writes one with repeated values differently
    # from run to run: reduce it to its distinct values and renumber the indices to match
    encoded = values.dictionary_encode()
    renumber = encoded.indices.fill_null(0).to_numpy()
    values = encoded.dictionary
    index = renumber[np.asarray(index, dtype=np.int64)]
    idx = pa.array(index.astype(np.int32), mask=None if valid is None else ~np.asarray(valid))
    return pa.DictionaryArray.from_arrays(idx, values)


def _column(value: Any, kind: pa.DataType, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, type=kind)
    if isinstance(value, str):
        if pa.types.is_dictionary(kind):
            return lookup([value], np.zeros(n, dtype=np.int32))
        return pa.array(np.full(n, value, dtype=object), type=kind)
    if isinstance(value, pa.DictionaryArray):
        return value if pa.types.is_dictionary(kind) else value.cast(kind)
    arr = value if isinstance(value, pa.Array) else pa.array(value, type=kind.value_type
                                                              if pa.types.is_dictionary(kind) else kind)
    if pa.types.is_dictionary(kind):
        return arr.dictionary_encode().cast(kind)
    return arr.cast(kind)


def event_table(
    rng: np.random.Generator, ts_ms: np.ndarray, plain: tuple[str, ...] = (), **columns: Any
) -> pa.Table:
    """An events table in :data:`EVENT_SCHEMA`: missing columns are null, scalars repeat.

    Columns named in ``plain`` are kept as plain strings (for values that are all different,
    where a dictionary would only cost time).
    """
    n = len(ts_ms)
    schema = EVENT_SCHEMA
    for name in plain:
        schema = schema.set(schema.get_field_index(name), pa.field(name, pa.string()))
    arrays = []
    for field in schema:
        if field.name == "message_id":
            arrays.append(uuid4(rng, n))
        elif field.name == "timestamp":
            arrays.append(pa.array(np.asarray(ts_ms, dtype=np.int64), type=field.type))
        else:
            arrays.append(_column(columns.pop(field.name, None), field.type, n))
    if columns:
        raise TypeError(f"unknown event columns: {sorted(columns)}")
    return pa.Table.from_arrays(arrays, schema=schema)
