"""Times in interact: naive UTC datetimes, as the store keeps them."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc"]


def utc(moment: datetime | None = None) -> datetime:
    """``moment`` (or now) as a naive UTC datetime; aware datetimes are converted."""
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment
