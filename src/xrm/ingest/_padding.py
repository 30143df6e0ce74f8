"""Which text columns of a batch may hold values with spaces at either end (so need ``trim``).

DuckDB's ``trim`` removes the Unicode space separators (category Zs: U+0020, U+00A0, U+1680,
U+2000..U+200A, U+202F, U+205F, U+3000) and decodes every character to find them, which makes it
the most expensive step of checking a batch. Looking at the first and last byte of each value in
the Arrow buffers is a hundred times cheaper: a column none of whose values starts with a byte that
can begin such a character, or ends with one that can end it, needs no ``trim``.

    >>> padded_columns(pa.table({"a": ["x", " y"], "b": ["z", None]}))  # doctest: +SKIP
    frozenset({'a'})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["padded_columns"]

# UTF-8 of the Zs characters: ' ' is 20, U+00A0 is C2 A0, the others are three bytes E1..E3 ..
# ending in 80..8A, 9F or AF.
_FIRST_BYTES = (0x20, 0xC2, 0xE1, 0xE2, 0xE3)
_LAST_BYTES = (0x20, *range(0x80, 0x8B), 0x9F, 0xA0, 0xAF)
_TABLES: tuple[np.ndarray, np.ndarray] | None = None


def _tables() -> tuple[np.ndarray, np.ndarray]:
    global _TABLES
    if _TABLES is None:
        import numpy as np

        first = np.zeros(256, dtype=bool)
        first[list(_FIRST_BYTES)] = True
        last = np.zeros(256, dtype=bool)
        last[list(_LAST_BYTES)] = True
        _TABLES = (first, last)
    return _TABLES


def padded_columns(table: pa.Table) -> frozenset[str]:
    """Names of the text columns that may need ``trim`` (every non-text column is named too)."""
    import pyarrow as pa

    padded = set()
    for name, column in zip(table.column_names, table.columns, strict=True):
        atype = column.type
        if pa.types.is_null(atype):
            continue
        text = pa.types.is_string(atype) or pa.types.is_large_string(atype)
        if not text or any(_may_be_padded(chunk) for chunk in column.chunks):
            padded.add(name)
    return frozenset(padded)


def _may_be_padded(array: pa.Array) -> bool:
    import numpy as np
    import pyarrow as pa

    if len(array) == 0 or array.null_count == len(array):
        return False
    _, offsets_buf, data_buf = array.buffers()
    if data_buf is None or offsets_buf is None:
        return False
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    raw = np.frombuffer(offsets_buf, dtype=width)[array.offset : array.offset + len(array) + 1]
    offsets: np.ndarray[Any, np.dtype[np.int64]] = raw.astype(np.int64, copy=False)
    starts, ends = offsets[:-1], offsets[1:]
    filled = ends > starts  # empty values (and nulls, which Arrow stores as empty) need nothing
    data = np.frombuffer(data_buf, dtype=np.uint8)
    first, last = _tables()
    return bool(first[data[starts[filled]]].any() or last[data[ends[filled] - 1]].any())
