"""Personal names: titles taken out, folded keys for matching, German nicknames resolved.

    >>> n = normalize_name("Dr. Hans", "MÜLLER")
    >>> (n.title, n.first_name, n.first_name_key, n.first_name_canon, n.last_name_key)
    ('Dr.', 'Hans', 'hans', 'johannes', 'mueller')
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from xrm.identify._text import fold, fold_sql, sql_str, squash_sql

__all__ = [
    "TITLE_PATTERN",
    "NormalizedName",
    "canon_sql",
    "canonical_first_name",
    "nicknames",
    "normalize_name",
    "title_sql",
    "untitled_sql",
]

# Salutations (dropped) then academic titles (kept in the title field), at the start of a name.
# The same pattern runs in Python's re and DuckDB's RE2: keep it to their common syntax.
_SEP = r"(?:\.\s*|\s+)"
_SALUTATION = rf"(?:(?:herr|frau|hr|fr){_SEP})?"
_TITLE = r"(?:prof|dr|mag|ing|dipl\.?\s?-?\s?[a-zäöü]+)"
_SUFFIX = r"(?:med|dent|vet|rer\.?\s?nat|phil|jur|h\.?\s?c|habil|ing|oec|pol)"
TITLE_PATTERN = rf"(?i)^\s*{_SALUTATION}((?:{_TITLE}{_SEP}(?:{_SUFFIX}{_SEP})*)*)"
_TITLE_RE = re.compile(TITLE_PATTERN)
SALUTATION_ONLY = r"(?i)^(?:herr|frau|hr\.?|fr\.?)(?:\s+|$)"
_SALUTATION_ONLY_RE = re.compile(SALUTATION_ONLY)


@dataclass(frozen=True)
class NormalizedName:
    title: str | None
    first_name: str | None
    last_name: str | None
    first_name_key: str | None
    first_name_canon: str | None
    last_name_key: str | None


@cache
def nicknames() -> dict[str, str]:
    """Folded nickname -> folded canonical first name, from the packaged ``nicknames.csv``."""
    text = resources.files("xrm.identify").joinpath("nicknames.csv").read_text(encoding="utf-8")
    table = {}
    for row in csv.DictReader(text.splitlines()):
        nick, canon = fold(row["nickname"]), fold(row["canonical"])
        if nick and canon and nick != canon:
            table[nick] = canon
    return table


def canonical_first_name(key: str | None) -> str | None:
    """Resolve nicknames token by token: 'hans peter' -> 'johannes peter'."""
    if key is None:
        return None
    table = nicknames()
    return " ".join(table.get(t, t) for t in key.split(" "))


def _split_title(value: str | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    value = " ".join(value.replace("\xa0", " ").split())
    m = _TITLE_RE.match(value)
    title = " ".join(m.group(1).split()) if m and m.group(1) else None
    rest = value[m.end() :] if m else value
    return title, (rest.strip() or None)


def normalize_name(
    first: str | None, last: str | None, title: str | None = None
) -> NormalizedName:
    """Take titles out of the name fields and fold both names for matching."""
    t1, first = _split_title(first)
    t2, last = _split_title(last)
    own = _SALUTATION_ONLY_RE.sub("", " ".join(title.split())) if title else None
    titles = [t for t in (own, t1, t2) if t]
    first_key, last_key = fold(first), fold(last)
    return NormalizedName(
        title=" ".join(titles) or None,
        first_name=first,
        last_name=last,
        first_name_key=first_key,
        first_name_canon=canonical_first_name(first_key),
        last_name_key=last_key,
    )


# -- SQL twins (the batch path) ---------------------------------------------------------------


def title_sql(expr: str) -> str:
    """The title part of a name column (NULL if none)."""
    s = squash_sql(expr)
    found = f"regexp_extract({s}, {sql_str(TITLE_PATTERN)}, 1)"
    return f"nullif(trim(regexp_replace({found}, '\\s+', ' ', 'g')), '')"


def untitled_sql(expr: str) -> str:
    """The name column with salutation and titles removed."""
    s = squash_sql(expr)
    return f"nullif(trim(regexp_replace({s}, {sql_str(TITLE_PATTERN)}, '')), '')"


def canon_sql(key_expr: str) -> str:
    """Nickname resolution of a folded first-name key, token by token."""
    pairs = ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in sorted(nicknames().items()))
    return (
        f"array_to_string(list_transform(string_split({key_expr}, ' '), "
        f"lambda t: coalesce(map_extract_value(MAP {{{pairs}}}, t), t)), ' ')"
    )


def own_title_sql(expr: str) -> str:
    """A title column without its salutation ('Herr Dr.' -> 'Dr.')."""
    return f"nullif(regexp_replace({squash_sql(expr)}, {sql_str(SALUTATION_ONLY)}, ''), '')"


def first_key_sql(expr: str) -> str:
    return fold_sql(untitled_sql(expr))
