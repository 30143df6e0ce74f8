"""Phone numbers to E.164 with the ``phonenumbers`` library (Google's libphonenumber metadata).

A number without a country code is read in the record's country, else the default region (DE).
Invalid numbers are not guessed at: the value is dropped and the reason kept.

    >>> normalize_phone("030/1234567")
    ('+49301234567', None)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["normalize_phone", "normalize_phones", "phone_fast_sql"]

_POSSIBLE_REASONS = {
    1: "its country code is not valid",
    2: "it is too short",
    3: "it is too long",
    4: "its length fits no number type",
    5: "it is too short for a local number",
}


def normalize_phone(value: str | None, region: str = "DE") -> tuple[str | None, str | None]:
    """(E.164, None) or (None, reason); ``(None, None)`` for empty input."""
    import phonenumbers

    if value is None or not value.strip():
        return None, None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"{value!r} is not a phone number ({exc.args[0] if exc.args else exc})"
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None
    why = _POSSIBLE_REASONS.get(int(phonenumbers.is_possible_number_with_reason(number)))
    detail = why or "no number of that shape is assigned"
    return None, f"{value!r} is not a valid phone number for region {region} ({detail})"


def normalize_phones(
    values: Iterable[tuple[str, str | None]], default_region: str = "DE"
) -> list[tuple[str, str | None, str | None, str | None]]:
    """Batch form over ``(raw, region)`` pairs: ``(raw, region, e164, reason)`` rows.

    Callers pass *distinct* pairs (DuckDB does the DISTINCT), so each is parsed once.
    """
    out = []
    for raw, region in values:
        e164, reason = normalize_phone(raw, region or default_region)
        out.append((raw, region, e164, reason))
    return out


# -- the SQL fast path -------------------------------------------------------------------------
# phonenumbers parses ~15k numbers/s in Python. Most numbers in a German customer base come in
# a few plain shapes ('030/1234567', '+49 (0)30 1234567', '0049 ...'), so DuckDB resolves those
# with the library's own metadata (the validity patterns of each region, compiled by RE2) and
# only the rest goes through phonenumbers. A number the fast path does not vouch for is left to
# phonenumbers, so results never differ (tests compare both).

_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip",
    "pager", "uan", "voicemail",
)


def _region_pattern(region: str) -> tuple[str, str, list[tuple[str, tuple[int, ...]]]] | None:
    """(country code, national prefix, [(type pattern, possible lengths)]) or None."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.country_code is None or meta.general_desc is None:
        return None
    cc = str(meta.country_code)
    if len(phonenumbers.region_codes_for_country_code(int(cc))) != 1:
        return None  # shared country codes (+1, +7 ...) need phonenumbers' region logic
    prefix = meta.national_prefix or ""
    if meta.national_prefix_transform_rule or (
        meta.national_prefix_for_parsing not in (None, prefix)
    ) or not prefix.isdigit():
        return None
    general_lengths = tuple(meta.general_desc.possible_length or ())
    types = []
    for t in _TYPES:
        desc = getattr(meta, t, None)
        if desc is None or not desc.national_number_pattern:
            continue
        lengths = tuple(desc.possible_length or general_lengths)
        if lengths and lengths[0] == -1:  # the type does not exist in this region
            continue
        types.append((desc.national_number_pattern, lengths))
    if not types or not meta.general_desc.national_number_pattern:
        return None
    # First rule of is_valid_number: the number fits the region's general description.
    return cc, prefix, [(meta.general_desc.national_number_pattern, general_lengths), *types]


def _valid_sql(nsn: str, types: list[tuple[str, tuple[int, ...]]]) -> str:
    """SQL: ``nsn`` is a valid national number (phonenumbers' rule: the general description, then
    the pattern and length of one number type); ``types[0]`` is the general description."""
    from xrm.identify._text import sql_str

    def fits(pattern: str, lengths: tuple[int, ...]) -> str:
        size = f" AND length({nsn}) IN ({', '.join(map(str, lengths))})" if lengths else ""
        return f"(regexp_full_match({nsn}, {sql_str(pattern)}){size})"

    general, *rest = types
    return f"({fits(*general)} AND ({' OR '.join(fits(*t) for t in rest)}))"


def phone_fast_sql(raw: str, region: str, regions: list[str]) -> str:
    """SQL: the E.164 form of ``raw`` for plain shapes in ``regions``; NULL = ask phonenumbers."""
    clean = f"regexp_replace(replace({raw}, '(0)', ''), '[\\s/\\-.()]+', '', 'g')"
    intl = (
        f"CASE WHEN regexp_full_match({clean}, '\\+\\d+') THEN substr({clean}, 2) "
        f"WHEN regexp_full_match({clean}, '00\\d+') THEN substr({clean}, 3) END"
    )
    national = f"CASE WHEN regexp_full_match({clean}, '\\d+') THEN {clean} END"
    cases = []
    for r in sorted(set(regions)):
        found = _region_pattern(r)
        if found is None:
            continue
        cc, prefix, types = found
        nsn = f"substr(n, {len(prefix) + 1})"
        cases.append(
            f"WHEN i IS NULL AND reg = '{r}' AND starts_with(n, '{prefix}') "
            f"AND {_valid_sql(nsn, types)} THEN '+{cc}' || {nsn}"
        )
        cases.append(
            f"WHEN starts_with(i, '{cc}') AND {_valid_sql(f'substr(i, {len(cc) + 1})', types)} "
            f"THEN '+' || i"
        )
    if not cases:
        return "CAST(NULL AS VARCHAR)"
    return (
        f"(SELECT CASE {' '.join(cases)} END FROM (SELECT {intl} AS i, {national} AS n, "
        f"{region} AS reg))"
    )
