"""Folding text for matching: one Python function and the same rule as a DuckDB SQL expression.

Both agree on German text (tests check them side by side): NFC/NFKC, lower case, ä→ae, ö→oe,
ü→ue, ß→ss, other accents stripped, anything but letters and digits becomes one space.

    >>> fold("  MÜLLER-Lüdenscheidt ")
    'mueller luedenscheidt'
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "fold_sql", "sql_str", "squash_sql"]

_LIGATURES = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe", "œ": "oe"}
_TRANSLATE = str.maketrans(_LIGATURES)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str | None) -> str | None:
    """Fold a name, street or city for matching; None for empty input."""
    if text is None:
        return None
    s = unicodedata.normalize("NFKC", text).lower().translate(_TRANSLATE)
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    s = " ".join(_NON_ALNUM.sub(" ", s).split())
    return s or None


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def squash_sql(expr: str) -> str:
    """Trim and collapse whitespace (also no-break spaces); empty becomes NULL."""
    return f"nullif(trim(regexp_replace({expr}, '[\\s\\x{{00A0}}]+', ' ', 'g')), '')"


def fold_sql(expr: str) -> str:
    """The SQL twin of :func:`fold`."""
    s = f"lower(nfc_normalize(replace({expr}, chr(160), ' ')))"
    for src, dst in _LIGATURES.items():
        s = f"replace({s}, '{src}', '{dst}')"
    return f"nullif(trim(regexp_replace(strip_accents({s}), '[^a-z0-9]+', ' ', 'g')), '')"
