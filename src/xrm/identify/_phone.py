"""Phone numbers to E.164 with the ``phonenumbers`` library (Google's libphonenumber metadata).

A number without a country code is read in the record's country, else the default region (DE).
Invalid numbers are not guessed at: the value is dropped and the reason kept.

    >>> normalize_phone("030/1234567")
    ('+49301234567', None)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["normalize_phone", "normalize_phones"]

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
