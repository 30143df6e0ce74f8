"""Identifier values as the graph sees them: normalised per type, blocked values refused.

    >>> from xrm.identify import IdentityRules
    >>> normalize_identifier(IdentityRules(), "loyalty_card", " 1234-5678 ")
    ('12345678', None)
    >>> normalize_identifier(IdentityRules(), "email", "TEST@test.com")
    (None, "'test@test.com' is on the blocked list for email")
"""

from __future__ import annotations

import re

from xrm.identify._email import email_sql, normalize_email
from xrm.identify._phone import normalize_phone
from xrm.identify._rules import IdentityRules
from xrm.identify._text import sql_str

__all__ = ["blocked_reason", "blocked_reason_sql", "id_value_sql", "normalize_identifier"]

# Placeholders such as 0000000 or xxxxx are blocked; short ids such as customer "11" in CDNOW
# are real and must not be.
MIN_REPEATED = 5


def _plain(value: str | None) -> str | None:
    s = value.strip() if value is not None else None
    return s or None


def _card(value: str | None) -> str | None:
    s = re.sub(r"[\s\-]+", "", value).upper() if value is not None else None
    return s or None


def _normal_form(rules: IdentityRules, id_type: str, raw: str) -> str | None:
    if id_type == "email":
        return normalize_email(raw, provider_rules=rules.email_provider_rules)[0]
    if id_type == "phone":
        return normalize_phone(raw, rules.default_region)[0]
    if id_type == "loyalty_card":
        return _card(raw)
    return _plain(raw)


def _blocked_list(rules: IdentityRules, id_type: str) -> set[str]:
    """The blocked values of a type, in the normal form of that type, lower-cased."""
    out = {b.lower() for b in rules.blocked_any}
    for b in rules.rule(id_type).blocked:
        norm = _normal_form(rules, id_type, b)
        out.add((norm or b).lower())
    return out


def normalize_identifier(
    rules: IdentityRules, id_type: str, value: object, region: str | None = None
) -> tuple[str | None, str | None]:
    """(value, None) ready for the graph, or (None, reason) if invalid or blocked."""
    if value is None:
        return None, None
    raw = str(value)
    reason: str | None = None
    if id_type == "email":
        norm, reason = normalize_email(raw, provider_rules=rules.email_provider_rules)
    elif id_type == "phone":
        norm, reason = normalize_phone(raw, region or rules.default_region)
    else:
        norm = _normal_form(rules, id_type, raw)
    if norm is None:
        return None, reason
    blocked = blocked_reason(rules, id_type, norm)
    return (None, blocked) if blocked else (norm, None)


def blocked_reason(rules: IdentityRules, id_type: str, value: str) -> str | None:
    rule = rules.rule(id_type)
    if value.lower() in _blocked_list(rules, id_type):
        return f"{value!r} is on the blocked list for {id_type}"
    if rules.block_repeated_chars and len(value) >= MIN_REPEATED and len(set(value)) == 1:
        return f"{value!r} is one repeated character (blocked for every type)"
    if id_type == "phone" and len(set(value.lstrip("+").removeprefix("49"))) == 1:
        return f"{value!r} is one repeated digit (blocked for phone)"
    for pattern in rule.blocked_patterns:
        if re.fullmatch(pattern, value):
            return f"{value!r} matches the blocked pattern /{pattern}/ for {id_type}"
    return None


# -- SQL twins ---------------------------------------------------------------------------------


def id_value_sql(rules: IdentityRules, id_type: str, expr: str) -> str:
    """Normalise a VARCHAR column as identifier type ``id_type`` (phones excepted: Python)."""
    if id_type == "email":
        return email_sql(expr, provider_rules=rules.email_provider_rules)
    if id_type == "loyalty_card":
        return f"nullif(upper(regexp_replace(CAST({expr} AS VARCHAR), '[\\s\\-]+', '', 'g')), '')"
    return f"nullif(trim(CAST({expr} AS VARCHAR)), '')"


def blocked_reason_sql(rules: IdentityRules, id_type: str, expr: str) -> str:
    """SQL: the reason ``expr`` (already normalised) is blocked as ``id_type``, else NULL."""
    rule = rules.rule(id_type)
    listed = sorted(_blocked_list(rules, id_type))
    cases = []
    if listed:
        in_list = ", ".join(sql_str(b) for b in listed)
        cases.append(
            f"WHEN lower({expr}) IN ({in_list}) "
            f"THEN '''' || {expr} || ''' is on the blocked list for {id_type}'"
        )
    if rules.block_repeated_chars:
        cases.append(
            f"WHEN length({expr}) >= {MIN_REPEATED} AND replace({expr}, left({expr}, 1), '') = '' "
            f"THEN '''' || {expr} || ''' is one repeated character (blocked for every type)'"
        )
    if id_type == "phone":
        digits = f"regexp_replace({expr}, '^\\+(49)?', '')"
        cases.append(
            f"WHEN replace({digits}, left({digits}, 1), '') = '' "
            f"THEN '''' || {expr} || ''' is one repeated digit (blocked for phone)'"
        )
    for pattern in rule.blocked_patterns:
        shown = pattern.replace("'", "''")
        cases.append(
            f"WHEN regexp_full_match({expr}, {sql_str(pattern)}) "
            f"THEN '''' || {expr} || ''' matches the blocked pattern /{shown}/ for {id_type}'"
        )
    if not cases:
        return "CAST(NULL AS VARCHAR)"
    return "CASE " + " ".join(cases) + " END"
