"""What one load did: counts, speed, the first rejected rows with their reasons.

    >>> report = load_file(store, "events.jsonl")  # doctest: +SKIP
    >>> report.as_dict()["rows_loaded"]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LoadReport", "RejectedRow"]


@dataclass(frozen=True)
class RejectedRow:
    """One row kept in ``rejected_rows``: where it is, what is wrong, and how to fix it."""

    line: int | None
    field: str | None
    value: str | None
    reason: str


@dataclass
class LoadReport:
    """The summary of loading one file (``status`` is ``loaded`` or ``already loaded``)."""

    file: str
    kind: str
    source: str | None
    format: str
    sha256: str
    status: str
    load_id: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    order_lines: int = 0
    seconds: float = 0.0
    rejects: list[RejectedRow] = field(default_factory=list)  # the first few
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_per_second"] = round(self.rows_per_second)
        data["seconds"] = round(self.seconds, 3)
        return data

    def summary(self) -> str:
        """One line for people, e.g. ``crm.csv: 20,000 read, 19,990 loaded, ...``."""
        if self.status != "loaded":
            return f"{self.file}: {self.status} (load {self.load_id}); nothing added"
        return (
            f"{self.file}: {self.rows_read:,} read, {self.rows_loaded:,} loaded, "
            f"{self.rows_duplicate:,} duplicate, {self.rows_rejected:,} rejected "
            f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )

    def reject_lines(self) -> list[str]:
        """The first rejected rows as ``file line N: reason``."""
        return [
            f"{self.file} line {r.line}: {r.reason}" if r.line is not None else f"{self.file}: {r.reason}"
            for r in self.rejects
        ]
