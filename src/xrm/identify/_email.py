"""E-mail addresses: trimmed and lower-cased; provider rules (Gmail dots, +tags) only when asked.

    >>> normalize_email("  Anna.Schmidt@GMX.de ")
    ('anna.schmidt@gmx.de', None)
"""

from __future__ import annotations

import re

__all__ = ["EMAIL_PATTERN", "email_reason_sql", "email_sql", "normalize_email"]

# Deliberately loose: one @, no spaces, a dot in the domain and a 2+ letter top-level domain.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
_GMAIL = ("gmail.com", "googlemail.com")


def normalize_email(value: str | None, *, provider_rules: bool = False) -> tuple[str | None, str | None]:
    """(normalised e-mail, None) or (None, reason); ``(None, None)`` for empty input."""
    if value is None:
        return None, None
    s = value.strip().lower()
    s = s.removeprefix("mailto:")
    if not s:
        return None, None
    if not _EMAIL_RE.match(s):
        return None, f"{value!r} is not an e-mail address (expected name@domain.tld)"
    if provider_rules:
        local, domain = s.rsplit("@", 1)
        if domain in _GMAIL:
            s = local.split("+", 1)[0].replace(".", "") + "@gmail.com"
    return s, None


def _clean_sql(expr: str) -> str:
    return f"nullif(regexp_replace(lower(trim({expr})), '^mailto:', ''), '')"


def email_sql(expr: str, *, provider_rules: bool = False) -> str:
    """SQL twin of :func:`normalize_email` (the value, NULL when empty or invalid)."""
    s = _clean_sql(expr)
    valid = f"CASE WHEN regexp_matches({s}, '{EMAIL_PATTERN}') THEN {s} END"
    if not provider_rules:
        return valid
    local = f"split_part({valid}, '@', 1)"
    domain = f"split_part({valid}, '@', 2)"
    return (
        f"CASE WHEN {domain} IN ('gmail.com', 'googlemail.com') "
        f"THEN replace(split_part({local}, '+', 1), '.', '') || '@gmail.com' ELSE {valid} END"
    )


def email_reason_sql(expr: str) -> str:
    s = _clean_sql(expr)
    return (
        f"CASE WHEN {s} IS NOT NULL AND NOT regexp_matches({s}, '{EMAIL_PATTERN}') "
        f"THEN '''' || {expr} || ''' is not an e-mail address (expected name@domain.tld)' END"
    )
