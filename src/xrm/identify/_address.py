"""Postal addresses: street keys (Straße/Str./Strasse alike), house numbers, postcodes, countries.

    >>> a = normalize_address("Hauptstr. 12 A", None, "1067", "Dresden", "Deutschland")
    >>> (a.street_key, a.house_number, a.postcode, a.country)
    ('hauptstr', '12a', '01067', 'DE')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xrm.identify._text import fold, fold_sql, sql_str, squash_sql

__all__ = [
    "NormalizedAddress",
    "country_sql",
    "house_number_sql",
    "normalize_address",
    "normalize_country",
    "postcode_reason_sql",
    "postcode_sql",
    "street_key_sql",
]

# A house number at the end of the street field: '12', '12a', '12 A', '12-14', '3/1'.
HOUSE_PATTERN = r"^(.*?)[\s,]+(\d+\s*[a-zA-Z]?(?:\s*[-/]\s*\d+\s*[a-zA-Z]?)?)\s*$"
_HOUSE_RE = re.compile(HOUSE_PATTERN)
# After folding: the same street written several ways gets one key.
_STREET_WORDS = (("strasse", "str"), ("platz", "pl"), ("sankt ", "st "))
_COUNTRIES = {
    "de": "DE", "d": "DE", "deu": "DE", "ger": "DE", "deutschland": "DE", "germany": "DE",
    "brd": "DE", "at": "AT", "a": "AT", "aut": "AT", "oesterreich": "AT", "austria": "AT",
    "ch": "CH", "che": "CH", "schweiz": "CH", "switzerland": "CH", "suisse": "CH",
}


@dataclass(frozen=True)
class NormalizedAddress:
    street_key: str | None
    house_number: str | None
    postcode: str | None
    postcode_reason: str | None
    city_key: str | None
    country: str | None


def normalize_country(value: str | None) -> str | None:
    key = fold(value)
    if key is None:
        return None
    return _COUNTRIES.get(key, key.upper())


def _street_key(street: str | None) -> str | None:
    s = fold(street)
    if s is None:
        return None
    s = f"{s} "
    for src, dst in _STREET_WORDS:
        s = s.replace(src, dst)
    return s.replace(" ", "") or None


def _house(value: str | None) -> str | None:
    return "".join(value.split()).lower() or None if value else None


def normalize_postcode(value: str | None, country: str | None) -> tuple[str | None, str | None]:
    if value is None or not value.strip():
        return None, None
    s = "".join(value.split()).upper()
    if country in (None, "DE"):
        s = s.removeprefix("D-")
        if re.fullmatch(r"\d{4}", s):  # a spreadsheet dropped the leading zero: 1067 -> 01067
            s = "0" + s
        if not re.fullmatch(r"\d{5}", s):
            return None, f"{value!r} is not a German postcode (expected 5 digits, e.g. 10115)"
    return s, None


def normalize_address(
    street: str | None,
    house_number: str | None,
    postcode: str | None,
    city: str | None,
    country: str | None = None,
) -> NormalizedAddress:
    """Normalise one address; a house number inside the street field is taken out of it."""
    if street and not (house_number and house_number.strip()):
        m = _HOUSE_RE.match(street.strip())
        if m:
            street, house_number = m.group(1), m.group(2)
    ctry = normalize_country(country)
    pc, reason = normalize_postcode(postcode, ctry)
    return NormalizedAddress(_street_key(street), _house(house_number), pc, reason, fold(city), ctry)


# -- SQL twins ---------------------------------------------------------------------------------


def _street_part(street: str, house: str) -> str:
    s = squash_sql(street)
    return (
        f"CASE WHEN {squash_sql(house)} IS NULL AND regexp_matches({s}, {sql_str(HOUSE_PATTERN)}) "
        f"THEN regexp_extract({s}, {sql_str(HOUSE_PATTERN)}, 1) ELSE {s} END"
    )


def street_key_sql(street: str, house: str) -> str:
    s = f"({fold_sql(_street_part(street, house))} || ' ')"
    for src, dst in _STREET_WORDS:
        s = f"replace({s}, '{src}', '{dst}')"
    return f"nullif(replace({s}, ' ', ''), '')"


def house_number_sql(street: str, house: str) -> str:
    s = squash_sql(street)
    raw = (
        f"coalesce({squash_sql(house)}, CASE WHEN regexp_matches({s}, {sql_str(HOUSE_PATTERN)}) "
        f"THEN regexp_extract({s}, {sql_str(HOUSE_PATTERN)}, 2) END)"
    )
    return f"nullif(lower(regexp_replace({raw}, '\\s+', '', 'g')), '')"


def country_sql(expr: str) -> str:
    pairs = ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in _COUNTRIES.items())
    key = fold_sql(expr)
    return f"coalesce(map_extract_value(MAP {{{pairs}}}, {key}), upper({key}))"


def _pc_clean(pc: str, country: str) -> str:
    s = f"upper(regexp_replace({pc}, '\\s+', '', 'g'))"
    de = f"regexp_replace({s}, '^D-', '')"
    de = f"CASE WHEN regexp_matches({de}, '^\\d{{4}}$') THEN '0' || {de} ELSE {de} END"
    return f"nullif(CASE WHEN coalesce({country}, 'DE') = 'DE' THEN {de} ELSE {s} END, '')"


def postcode_sql(pc: str, country: str) -> str:
    c = _pc_clean(pc, country)
    return (
        f"CASE WHEN coalesce({country}, 'DE') <> 'DE' OR regexp_matches({c}, '^\\d{{5}}$') "
        f"THEN {c} END"
    )


def postcode_reason_sql(pc: str, country: str) -> str:
    c = _pc_clean(pc, country)
    return (
        f"CASE WHEN {c} IS NOT NULL AND coalesce({country}, 'DE') = 'DE' "
        f"AND NOT regexp_matches({c}, '^\\d{{5}}$') "
        f"THEN '''' || {pc} || ''' is not a German postcode (expected 5 digits, e.g. 10115)' END"
    )
