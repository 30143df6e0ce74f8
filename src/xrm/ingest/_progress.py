"""Progress of a load as plain callbacks, so the CLI can draw a Rich bar and ingest stays UI-free.

    >>> load_file(store, "events.parquet", progress=lambda p: print(p.rows, p.rate))  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoadProgress", "ProgressCallback", "print_progress"]


@dataclass(frozen=True)
class LoadProgress:
    """Where one file's load stands: ``fraction`` of the file read, ``rows`` read so far."""

    file: str
    rows: int
    fraction: float  # 0.0 .. 1.0 of the file's bytes (or Parquet rows)
    seconds: float
    done: bool = False

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[LoadProgress], None]


def print_progress(progress: LoadProgress) -> None:
    """The default for ``show_progress=True`` without a callback: one line per file, on stderr."""
    if progress.done:
        sys.stderr.write(
            f"read {progress.file}: {progress.rows:,} rows in {progress.seconds:.1f} s "
            f"({progress.rate:,.0f} rows/s)\n"
        )
