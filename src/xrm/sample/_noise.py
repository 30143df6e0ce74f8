"""Small, seeded text distortions: typos, transliteration, street abbreviations, phone formats.

Each function takes its randomness from the ``numpy.random.Generator`` it is given, so the
sample stays reproducible.

    >>> transliterate("Weiß-Müller")
    'Weiss-Mueller'
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "PHONE_FORMATS",
    "ascii_fold",
    "email_variant",
    "phone_variant",
    "street_variant",
    "transliterate",
    "typo",
]

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_FOLD = str.maketrans({"é": "e", "è": "e", "á": "a", "ç": "c", " ": "", "'": "", "(": "", ")": ""})

# QWERTZ neighbours for "fat finger" typos.
_NEIGHBOURS = {
    "a": "sq", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "kö", "m": "n", "n": "bm", "o": "ip", "p": "oü",
    "r": "et", "s": "ad", "t": "rz", "u": "zi", "v": "cb", "w": "qe", "x": "yc", "z": "tu",
}


def transliterate(text: str) -> str:
    """Write umlauts out and ß as ss, as old till systems and e-mail addresses do."""
    return text.translate(_TRANSLIT)


@lru_cache(maxsize=8192)  # names repeat: a few hundred distinct values per chunk
def ascii_fold(text: str) -> str:
    """Lower-case ASCII for e-mail local parts and handles (Müller -> mueller)."""
    return transliterate(text).translate(_FOLD).lower()


def typo(text: str, rng: np.random.Generator) -> str:
    """One typing error: swap two neighbours, drop, double or mistype one letter."""
    if len(text) < 3:
        return text
    i = int(rng.integers(1, len(text) - 1))  # keep the first letter: people rarely miss it
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    near = _NEIGHBOURS.get(text[i].lower())
    if not near:
        return text[:i] + text[i + 1 :]
    return text[:i] + near[int(rng.integers(0, len(near)))] + text[i + 1 :]


def street_variant(street: str, rng: np.random.Generator) -> str:
    """Straße written as Str., str., Strasse or strasse."""
    for long in ("straße", "Straße"):
        if street.endswith(long):
            short = ("str.", "Str.", "strasse", "Strasse")[int(rng.integers(0, 4))]
            stem = street[: -len(long)]
            return stem + (short.lower() if stem and not stem.endswith(" ") else short)
    return street


def email_variant(email: str, kind: int) -> str:
    """0: as is; 1: upper case; 2: capitalised; 3: stray whitespace around it."""
    if kind == 1:
        return email.upper()
    if kind == 2:
        return email[:1].upper() + email[1:]
    if kind == 3:
        return f" {email} "
    return email


def phone_variant(area: str, number: str, kind: int) -> str:
    """A German phone number (area code without 0, subscriber number) in one of eight formats."""
    if kind == 0:
        return f"+49 {area} {number}"
    if kind == 1:
        return f"0{area}/{number}"
    if kind == 2:
        return f"0049{area}{number}"
    if kind == 3:
        return f"0{area} {number}"
    if kind == 4:
        return f"+49 (0){area} {number}"
    if kind == 5:
        return f"0{area}-{number}"
    if kind == 6:
        return f"(0{area}) {number[:3]} {number[3:]}"
    return f"+49{area}{number}"


PHONE_FORMATS = 8
