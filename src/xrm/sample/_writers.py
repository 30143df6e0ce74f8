"""Append-only writers: every chunk's rows go straight to disk, so memory stays flat.

    >>> with Sink(out_dir) as sink:  # doctest: +SKIP
    ...     sink.parquet("events/orders.parquet", table)
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Sink"]


class Sink:
    """Open files under ``root``, keyed by their relative path; counts the rows written to each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: dict[str, int] = {}
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._text: dict[str, IO[str]] = {}
        self._csv: dict[str, Any] = {}

    def _path(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def parquet(self, rel: str, *tables: pa.Table) -> None:
        """Append tables (each its own row groups) to a Parquet file.

        The Arrow schema is not stored, so dictionary-encoded columns read back as strings.
        """
        for table in tables:
            writer = self._parquet.get(rel)
            if writer is None:
                # random ids neither compress nor dictionary-encode: skip the wasted effort
                plain = {"message_id", "order_id"}
                writer = pq.ParquetWriter(
                    self._path(rel), table.schema, compression="zstd", store_schema=False,
                    use_dictionary=[c for c in table.column_names if c not in plain],
                )
                self._parquet[rel] = writer
            writer.write_table(table)
            self.rows[rel] = self.rows.get(rel, 0) + table.num_rows

    def csv(self, rel: str, header: tuple[str, ...], rows: list[tuple[str, ...]], *,
            encoding: str = "utf-8", delimiter: str = ",", newline: str = "\n") -> None:
        writer = self._csv.get(rel)
        if writer is None:
            handle = self._path(rel).open("w", encoding=encoding, newline="")
            self._text[rel] = handle
            writer = csv.writer(handle, delimiter=delimiter, lineterminator=newline)
            writer.writerow(header)
            self._csv[rel] = writer
        writer.writerows(rows)
        self.rows[rel] = self.rows.get(rel, 0) + len(rows)

    def lines(self, rel: str, lines: list[str]) -> None:
        handle = self._text.get(rel)
        if handle is None:
            handle = self._path(rel).open("w", encoding="utf-8", newline="\n")
            self._text[rel] = handle
        if lines:
            handle.write("\n".join(lines) + "\n")
        self.rows[rel] = self.rows.get(rel, 0) + len(lines)

    def close(self) -> None:
        for writer in self._parquet.values():
            writer.close()
        for handle in self._text.values():
            handle.close()
        self._parquet.clear()
        self._text.clear()
        self._csv.clear()

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
