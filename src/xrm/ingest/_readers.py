"""Read a file in bounded batches of Arrow rows, each with its 1-based ``__line``.

Memory stays flat whatever the file's size: CSV streams through Arrow's C++ reader, JSONL is read
``batch_rows`` lines at a time, Parquet one batch of row groups at a time.

    >>> for batch in read_batches(facts, 100_000): ...  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xrm.exceptions import InputError
from xrm.ingest._files import FileFacts

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Batch", "CsvShape", "csv_line_numbers", "read_batches"]

_ARROW_CODECS = {"utf-8": "utf8", "cp1252": "cp1252", "latin-1": "latin-1"}


@dataclass
class Batch:
    """Rows of one file: the source columns plus ``__line`` (and ``__raw`` for JSONL)."""

    table: pa.Table
    fraction: float  # of the file read so far


@dataclass
class CsvShape:
    """What the CSV reader saw that makes row numbers differ from line numbers."""

    malformed: int = 0  # rows with another number of fields than the header
    embedded_newlines: bool = False  # quoted values spanning lines
    samples: list[str] = field(default_factory=list)
    rows: int = 0  # rows read

    @property
    def lines_exact(self) -> bool:
        return not self.malformed and not self.embedded_newlines


def read_batches(facts: FileFacts, batch_rows: int, shape: CsvShape | None = None) -> Iterator[Batch]:
    """Yield the file's rows in batches of about ``batch_rows``."""
    if facts.format == "csv":
        yield from _csv_batches(facts, batch_rows, shape or CsvShape())
    elif facts.format == "jsonl":
        yield from _jsonl_batches(facts, batch_rows)
    else:
        yield from _parquet_batches(facts, batch_rows)


def _with_line(table: pa.Table, first: int, lines: Any = None) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    if lines is None:
        lines = np.arange(first, first + table.num_rows, dtype=np.int64)
    return table.append_column("__line", pa.array(lines, type=pa.int64()))


def _csv_batches(facts: FileFacts, batch_rows: int, shape: CsvShape) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    def on_bad_row(row: Any) -> str:
        shape.malformed += 1
        if len(shape.samples) < 5:
            shape.samples.append(str(row.text)[:200])
        return "skip"

    source = pa.OSFile(str(facts.path), "rb")
    try:
        reader = pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(
                encoding=_ARROW_CODECS[facts.encoding or "utf-8"], block_size=4 << 20
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=facts.delimiter or ",",
                newlines_in_values=True,
                invalid_row_handler=on_bad_row,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.string() for c in facts.columns},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
        # The header line is line 1; rows are numbered 2, 3, ... (fixed afterwards when a row
        # spans lines or is skipped: see csv_line_numbers).
        next_line = 2
        pending: list[pa.RecordBatch] = []
        rows = 0
        while True:
            try:
                rb = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise InputError(
                    f"{facts.path}: cannot read it as CSV (delimiter {facts.delimiter!r}, encoding "
                    f"{facts.encoding}): {exc}. Check the delimiter and quoting, or set them in "
                    f"the mapping"
                ) from None
            # Renamed columns: the header as read by Arrow keeps surrounding spaces.
            rb = rb.rename_columns(list(facts.columns))
            shape.rows += rb.num_rows
            pending.append(rb)
            rows += rb.num_rows
            if rows >= batch_rows:
                table = _with_line(pa.Table.from_batches(pending), next_line)
                next_line += rows
                pending, rows = [], 0
                yield Batch(table, min(source.tell() / facts.size, 1.0))
        if pending:
            yield Batch(_with_line(pa.Table.from_batches(pending), next_line), 1.0)
        # Header and rows take one line each unless a quoted value spans lines (blank lines and
        # skipped rows are counted apart): comparing counts is cheaper than searching the values.
        if facts.lines is not None:
            shape.embedded_newlines = shape.rows + shape.malformed + 1 < facts.lines
    finally:
        source.close()


def _jsonl_batches(facts: FileFacts, batch_rows: int) -> Iterator[Batch]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoding = "utf-8-sig" if facts.encoding == "utf-8" else (facts.encoding or "utf-8")
    line_no = 0
    with facts.path.open("rb") as raw_file, io.TextIOWrapper(raw_file, encoding=encoding) as fh:
        while True:
            chunk = list(itertools.islice(fh, batch_rows))
            if not chunk:
                break
            lines = np.arange(line_no + 1, line_no + 1 + len(chunk), dtype=np.int64)
            line_no += len(chunk)
            raw = pa.array(chunk, type=pa.string())
            # Blank lines are not events: drop them but keep every other line's number.
            stripped = pc.utf8_trim_whitespace(raw)
            keep = pc.not_equal(pc.utf8_length(stripped), 0)
            table = pa.table({"__raw": stripped, "__line": pa.array(lines)}).filter(keep)
            yield Batch(table, min(raw_file.tell() / facts.size, 1.0))


def _parquet_batches(facts: FileFacts, batch_rows: int) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = facts.rows_hint or 0
    done = 0
    try:
        pf = pq.ParquetFile(facts.path)
        for rb in pf.iter_batches(batch_size=batch_rows):
            table = _with_line(pa.Table.from_batches([rb]), done + 1)  # row numbers, 1-based
            done += rb.num_rows
            yield Batch(table, done / total if total else 1.0)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{facts.path}: the Parquet file is damaged after row {done:,} ({exc})") from None


def csv_line_numbers(
    facts: FileFacts, wanted: set[int]
) -> tuple[dict[int, int], list[tuple[int, str, int]]]:
    """Map row numbers (2 = first data row) to physical lines; list malformed rows
    (line, text, number of fields).

    Needed only when a quoted value spans lines, a line is blank or a row was malformed: one
    pass with Python's csv module, which tracks physical lines.
    """
    encoding = "utf-8-sig" if facts.encoding == "utf-8" else (facts.encoding or "utf-8")
    width = len(facts.columns)
    mapped: dict[int, int] = {}
    malformed: list[tuple[int, str, int]] = []
    delimiter = facts.delimiter or ","
    with facts.path.open("r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)  # header
        row_no = 1
        start = reader.line_num + 1
        for fields in reader:
            if fields and not (len(fields) == 1 and not fields[0].strip() and width > 1):
                if len(fields) == width:
                    row_no += 1
                    if row_no in wanted:
                        mapped[row_no] = start
                else:
                    malformed.append((start, delimiter.join(fields), len(fields)))
            start = reader.line_num + 1
    return mapped, malformed
