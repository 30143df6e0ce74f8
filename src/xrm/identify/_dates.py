"""Dates of birth in the formats German sources use, checked for plausibility.

    >>> parse_birth_date("03.07.1981")
    (datetime.date(1981, 7, 3), None)
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["DATE_FORMATS", "birth_date_sql", "parse_birth_date"]

DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y", "%d/%m/%Y", "%Y/%m/%d", "%Y%m%d", "%d-%m-%Y")
_MONTHS = {
    "januar": 1, "jan": 1, "jänner": 1, "februar": 2, "feb": 2, "märz": 3, "maerz": 3, "mär": 3,
    "mrz": 3, "april": 4, "apr": 4, "mai": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "oktober": 10, "okt": 10,
    "november": 11, "nov": 11, "dezember": 12, "dez": 12,
}
_WORDY = re.compile(r"^(\d{1,2})\.?\s+([a-zä]+)\.?\s+(\d{4})$")
EARLIEST = dt.date(1900, 1, 1)


def _plausible(d: dt.date, raw: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    if d < EARLIEST or d > today:
        return None, f"{raw!r} is not a plausible date of birth (before 1900 or in the future)"
    return d, None


def parse_birth_date(
    value: str | dt.date | None, *, today: dt.date | None = None
) -> tuple[dt.date | None, str | None]:
    """(date, None) or (None, reason). Two-digit years are in the past century when needed."""
    today = today or dt.date.today()
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return _plausible(value, value.isoformat(), today)
    s = value.strip()
    if not s:
        return None, None
    s = s.split("T", 1)[0] if re.match(r"^\d{4}-\d{2}-\d{2}T", s) else s
    m = _WORDY.match(s.lower())
    if m and m.group(2) in _MONTHS:
        try:
            return _plausible(dt.date(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1))), value, today)
        except ValueError:
            return None, f"{value!r} is not a date (no such day)"
    for fmt in DATE_FORMATS:
        try:
            d = dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
        if fmt.endswith("%y") and d > today:
            d = d.replace(year=d.year - 100)  # '03.07.81' is 1981, never 2081
        return _plausible(d, value, today)
    return None, (
        f"{value!r} is not a date (expected YYYY-MM-DD or DD.MM.YYYY, e.g. 1981-07-03)"
    )


def birth_date_sql(expr: str) -> str:
    """SQL twin for VARCHAR columns: the first format that parses, NULL if none or implausible."""
    tries = ", ".join(
        f"try_strptime(trim({expr}), '{f}')::DATE" for f in DATE_FORMATS if not f.endswith("%y")
    )
    d = f"coalesce({tries})"
    return f"CASE WHEN {d} BETWEEN DATE '1900-01-01' AND current_date THEN {d} END"
