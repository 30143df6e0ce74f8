"""The four source systems' records of the people, each with its own habits and noise.

- web shop: typed by the customer; mostly clean, current, ISO dates.
- loyalty cards: typed at the till from a paper form years ago: nicknames, typos, ASCII
  umlauts, maiden names, old addresses, street and number in one field, dd.mm.yyyy.
- newsletter: an e-mail address as typed (case, spaces), sometimes a first name.
- call centre (CRM): titles, landlines, careful but sometimes outdated.

Rates come from :class:`~xrm.sample.NoiseRates`.  Every decision is drawn as an array for all
records at once; Python only touches the few values that actually get noise.  Each record's
person goes to ground truth.

    >>> recs = make_records(rng, people, keys, params, (rev1, rev2), end_ms)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from xrm.sample._keys import Keys
from xrm.sample._noise import PHONE_FORMATS, email_variant, phone_variant, street_variant, transliterate, typo
from xrm.sample._params import SampleParams
from xrm.sample._people import NULL, People

__all__ = ["CRM_SCHEMA", "LOYALTY_COLUMNS", "NEWSLETTER_COLUMNS", "WEBSHOP_COLUMNS", "Records",
           "make_records"]

WEBSHOP_COLUMNS = ("account_id", "email", "first_name", "last_name", "birth_date", "street",
                   "house_number", "postcode", "city", "phone", "created_at", "updated_at")
LOYALTY_COLUMNS = ("kartennr", "anrede", "vorname", "nachname", "strasse", "plz", "ort", "telefon",
                   "email", "geburtsdatum", "ausgestellt_am", "umsatz_gesamt", "punkte")
NEWSLETTER_COLUMNS = ("subscriber_id", "email", "first_name", "opt_in_date", "source")
CRM_SCHEMA = pa.schema([
    ("crm_id", pa.string()), ("salutation", pa.string()), ("title", pa.string()),
    ("first_name", pa.string()), ("last_name", pa.string()), ("phone", pa.string()),
    ("email", pa.string()), ("street", pa.string()), ("house_number", pa.string()),
    ("postcode", pa.string()), ("city", pa.string()), ("birth_date", pa.date32()),
    ("last_contact", pa.timestamp("ms", tz="UTC")),
])


@dataclass
class Records:
    """Rows per source (lists of tuples for CSV, a table for Parquet) and their persons."""

    webshop: list[tuple[Any, ...]]
    loyalty: list[tuple[Any, ...]]
    newsletter: list[tuple[Any, ...]]
    crm: pa.Table
    truth: pa.Table  # record_id, source, source_key, person_id


def _stamps(ms: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) for each millisecond time, vectorised."""
    text = np.datetime_as_string(np.asarray(ms, dtype="datetime64[ms]"), unit="s")
    return np.char.replace(text.astype("U19"), "T", " ").astype(object)


def _dmy(iso: np.ndarray) -> np.ndarray:
    """``dd.mm.yyyy`` from ``YYYY-MM-DD`` strings (None stays None)."""
    return np.array([None if d is None else f"{d[8:10]}.{d[5:7]}.{d[0:4]}" for d in iso], dtype=object)


class _Source:
    """The noise of one source system, applied to the records of persons ``pi``."""

    def __init__(self, rng: np.random.Generator, people: People, params: SampleParams, source: str,
                 pi: np.ndarray, older: np.ndarray) -> None:
        self.rng, self.p, self.pi, self.older = rng, people, pi, older
        nz = params.noise
        self.rates = {
            "typo": nz.typo[source], "nick": nz.nickname[source], "translit": nz.transliterate[source],
            "maiden": nz.maiden_name[source], "old": nz.old_address[source],
            "no_birth": nz.missing_birth_date[source], "no_phone": nz.missing_phone[source],
            "no_email": nz.missing_email[source], "abbrev": nz.street_abbreviation,
        }

    def chance(self, what: str | float) -> np.ndarray:
        rate = self.rates[what] if isinstance(what, str) else what
        return self.rng.random(len(self.pi)) < rate

    def _text(self, values: np.ndarray) -> np.ndarray:
        out = values.copy()
        for i in np.flatnonzero(self.chance("typo")).tolist():
            out[i] = typo(out[i], self.rng)
        for i in np.flatnonzero(self.chance("translit")).tolist():
            out[i] = transliterate(out[i])
        return out

    def first(self) -> np.ndarray:
        p, pi = self.p, self.pi
        out = p.first_name[pi].copy()
        use = self.chance("nick")
        pick = self.rng.random(len(pi))
        for i in np.flatnonzero(use).tolist():
            nicks = p.nicknames[pi[i]]
            if nicks:
                out[i] = nicks[int(pick[i] * len(nicks))]
        return self._text(out)

    def last(self) -> np.ndarray:
        p, pi = self.p, self.pi
        maiden = p.maiden_name[pi]
        use = (maiden != None) & self.older & self.chance("maiden")  # noqa: E711
        return self._text(np.where(use, maiden, p.last_name[pi]))

    def address(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        p, pi = self.p, self.pi
        old = p.moved[pi] & self.older & self.chance("old")
        street = np.where(old, p.old_street[pi], p.street[pi])
        house = np.where(old, p.old_house_number[pi], p.house_number[pi])
        plz = np.where(old, p.old_postcode[pi], p.postcode[pi])
        city = np.where(old, p.old_city[pi], p.city[pi])
        for i in np.flatnonzero(self.chance("abbrev")).tolist():
            street[i] = street_variant(street[i], self.rng)
        for i in np.flatnonzero(self.chance("translit")).tolist():
            city[i] = transliterate(city[i])
        return self._text(street), house, plz, city

    def birth(self, iso: np.ndarray) -> np.ndarray:
        return np.where(self.chance("no_birth"), NULL, iso[self.pi])

    def phone(self, landline_first: bool = False) -> np.ndarray:
        p, pi = self.p, self.pi
        a, b = (p.landline, p.mobile) if landline_first else (p.mobile, p.landline)
        number = np.where(a[pi] != None, a[pi], b[pi])  # noqa: E711
        number[self.chance("no_phone")] = None
        fmt = self.rng.integers(0, PHONE_FORMATS, len(pi))
        out = np.full(len(pi), None, dtype=object)
        for i in np.flatnonzero(number != None).tolist():  # noqa: E711
            out[i] = phone_variant(number[i][0], number[i][1], int(fmt[i]))
        return out

    def email(self) -> np.ndarray:
        return np.where(self.chance("no_email"), NULL, self.p.email[self.pi])


def _both(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record rows for keys ``first`` and ``second`` (None: absent): persons, which, older."""
    i1 = np.flatnonzero(first != None)  # noqa: E711
    i2 = np.flatnonzero(second != None)  # noqa: E711
    pi = np.concatenate((i1, i2))
    is_second = np.concatenate((np.zeros(len(i1), bool), np.ones(len(i2), bool)))
    order = np.argsort(pi, kind="stable")  # a person's records next to each other
    return pi[order], is_second[order], ~is_second[order]


def _empty(values: np.ndarray) -> list[str]:
    return ["" if v is None else v for v in values.tolist()]


def make_records(
    rng: np.random.Generator,
    people: People,
    keys: Keys,
    params: SampleParams,
    card_revenue: tuple[np.ndarray, np.ndarray],
    end_ms: int,
) -> Records:
    nz = params.noise
    pid = people.person_id
    birth_iso = np.datetime_as_string(people.birth.astype("datetime64[D]")).astype(object)
    truth: list[tuple[str, np.ndarray, np.ndarray]] = []

    # web shop: one row per account; a second account has another e-mail and is newer
    pi, second, older = _both(keys.account, keys.account2)
    src = _Source(rng, people, params, "webshop", pi, older)
    key = np.where(second, keys.account2[pi], keys.account[pi])
    created = np.where(second, keys.account2_at[pi], keys.account_at[pi])
    updated = created + (rng.random(len(pi)) * np.maximum(end_ms - created, 0)).astype(np.int64)
    street, house, plz, city = src.address()
    webshop = list(zip(
        key.tolist(), np.where(second, people.alt_email[pi], people.email[pi]).tolist(),
        src.first().tolist(), src.last().tolist(), _empty(src.birth(birth_iso)), street.tolist(),
        house.tolist(), plz.tolist(), city.tolist(), _empty(src.phone()), _stamps(created).tolist(),
        _stamps(updated).tolist(), strict=True,
    ))
    truth.append(("webshop", key, pid[pi]))

    # loyalty cards: one row per card; the old card carries old names and addresses
    pi, second, older = _both(keys.card, keys.card2)
    src = _Source(rng, people, params, "loyalty", pi, older)
    key = np.where(second, keys.card2[pi], keys.card[pi])
    issued = _dmy(_stamps(np.where(second, keys.card2_at[pi], keys.card_at[pi])))
    rev1, rev2 = card_revenue
    cents = np.where(second, rev2[pi], rev1[pi])
    street, house, plz, city = src.address()
    loyalty = list(zip(
        key.tolist(), np.where(people.gender[pi] == "f", "Frau", "Herr").tolist(), src.first().tolist(),
        src.last().tolist(), [f"{s} {h}" for s, h in zip(street.tolist(), house.tolist(), strict=True)],
        plz.tolist(), city.tolist(), _empty(src.phone(landline_first=True)), _empty(src.email()),
        _empty(_dmy(src.birth(birth_iso))), issued.tolist(),
        [f"{c // 100},{c % 100:02d}" for c in cents.tolist()], [str(c // 100) for c in cents.tolist()],
        strict=True,
    ))
    truth.append(("loyalty", key, pid[pi]))

    # newsletter: the address as typed, a first name now and then
    pi, second, older = _both(keys.subscriber, keys.subscriber2)
    src = _Source(rng, people, params, "newsletter", pi, older)
    key = np.where(second, keys.subscriber2[pi], keys.subscriber[pi])
    email = np.where(second, keys.subscriber2_email[pi], keys.subscriber_email[pi])
    u = rng.random(len(pi))
    kind = np.select([u < nz.email_upper, u < nz.email_upper + nz.email_capitalised,
                      u < nz.email_upper + nz.email_capitalised + nz.email_whitespace], [1, 2, 3], 0)
    first = np.where(src.chance(nz.missing_first_name_newsletter), NULL, src.first())
    opt_in = _stamps(np.where(second, keys.optin2_at[pi], keys.optin_at[pi]))
    channel = np.array(["Webshop", "Filiale", "Gewinnspiel", "Facebook"], dtype=object)
    newsletter = list(zip(
        key.tolist(), [email_variant(e, k) for e, k in zip(email.tolist(), kind.tolist(), strict=True)],
        _empty(first), [t[:10] for t in opt_in.tolist()],
        channel[rng.integers(0, len(channel), len(pi))].tolist(), strict=True,
    ))
    truth.append(("newsletter", key, pid[pi]))

    # call centre: titles (sometimes typed into the first name), landline first
    pi = np.flatnonzero(keys.crm != None)  # noqa: E711
    src = _Source(rng, people, params, "crm", pi, np.ones(len(pi), bool))
    title = np.where((people.title[pi] != "") & src.chance(nz.crm_title_shown), people.title[pi], NULL)
    first = src.first()
    in_first = (title != None) & src.chance(0.3)  # noqa: E711
    for i in np.flatnonzero(in_first).tolist():
        first[i] = f"{title[i]} {first[i]}"
    title[in_first] = None
    street, house, plz, city = src.address()
    birth = src.birth(birth_iso)
    crm = pa.table({
        "crm_id": pa.array(keys.crm[pi], pa.string()),
        "salutation": pa.array(np.where(people.gender[pi] == "f", "Frau", "Herr"), pa.string()),
        "title": pa.array(title, pa.string()),
        "first_name": pa.array(first, pa.string()),
        "last_name": pa.array(src.last(), pa.string()),
        "phone": pa.array(src.phone(landline_first=True), pa.string()),
        "email": pa.array(src.email(), pa.string()),
        "street": pa.array(street, pa.string()),
        "house_number": pa.array(house, pa.string()),
        "postcode": pa.array(plz, pa.string()),
        "city": pa.array(city, pa.string()),
        "birth_date": pa.array(birth, pa.string()).cast(pa.date32()),
        "last_contact": pa.array(keys.crm_at[pi], pa.timestamp("ms", tz="UTC")),
    }, schema=CRM_SCHEMA)
    truth.append(("crm", keys.crm[pi], pid[pi]))

    sources = np.concatenate([np.full(len(k), s, dtype=object) for s, k, _ in truth])
    source_keys = np.concatenate([k for _, k, _ in truth])
    return Records(webshop, loyalty, newsletter, crm, pa.table({
        "record_id": pa.array([f"{s}:{k}" for s, k in zip(sources, source_keys, strict=True)], pa.string()),
        "source": pa.array(sources, pa.string()),
        "source_key": pa.array(source_keys, pa.string()),
        "person_id": pa.array(np.concatenate([p for _, _, p in truth]), pa.string()),
    }))
