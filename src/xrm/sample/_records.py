"""The four source systems' records of the people, each with its own habits and noise.

- web shop: typed by the customer; mostly clean, current, ISO dates.
- loyalty cards: typed at the till from a paper form years ago: nicknames, typos, ASCII
  umlauts, maiden names, old addresses, street and number in one field, dd.mm.yyyy.
- newsletter: an e-mail address as typed (case, spaces), sometimes a first name.
- call centre (CRM): titles, landlines, careful but sometimes outdated.

Rates come from :class:`~xrm.sample.NoiseRates`; each record's person goes to ground truth.

    >>> recs = make_records(rng, people, keys, params, card_revenue)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from xrm.sample._keys import Keys
from xrm.sample._noise import (
    PHONE_FORMATS,
    email_variant,
    phone_variant,
    street_variant,
    transliterate,
    typo,
)
from xrm.sample._params import SampleParams
from xrm.sample._people import People

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
    truth: pa.Table  # source, source_key, person_id


def _stamps(ms: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) for each millisecond time, vectorised."""
    text = np.datetime_as_string(np.asarray(ms, dtype="datetime64[ms]"), unit="s")
    return np.char.replace(text.astype("U19"), "T", " ").astype(object)


def _dmy(iso: np.ndarray) -> np.ndarray:
    """``dd.mm.yyyy`` from ``YYYY-MM-DD`` strings."""
    return np.array([f"{d[8:10]}.{d[5:7]}.{d[0:4]}" for d in iso], dtype=object)


class _Uniforms:
    """Uniform draws handed out one at a time from a pre-drawn block (much faster than rng.random())."""

    def __init__(self, rng: np.random.Generator, block: int = 65_536) -> None:
        self.rng, self.block = rng, block
        self.buf: list[float] = []
        self.pos = 0

    def __call__(self) -> float:
        if self.pos >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            self.pos = 0
        self.pos += 1
        return self.buf[self.pos - 1]


class _Writer:
    """Noise for one source: draws come from the chunk's generator, rates from the params."""

    def __init__(self, rng: np.random.Generator, people: People, params: SampleParams, source: str,
                 birth_iso: np.ndarray) -> None:
        self.rng, self.p, self.src = rng, people, source
        self.u = _Uniforms(rng)
        self.birth_iso = birth_iso
        nz = params.noise
        self.typo = nz.typo[source]
        self.nick = nz.nickname[source]
        self.translit = nz.transliterate[source]
        self.maiden = nz.maiden_name[source]
        self.old = nz.old_address[source]
        self.no_birth = nz.missing_birth_date[source]
        self.no_phone = nz.missing_phone[source]
        self.no_email = nz.missing_email[source]
        self.abbrev = nz.street_abbreviation

    def chance(self, rate: float) -> bool:
        return self.u() < rate

    def pick(self, k: int) -> int:
        return min(int(self.u() * k), k - 1)

    def _text(self, text: str) -> str:
        if self.chance(self.typo):
            text = typo(text, self.rng)
        if self.chance(self.translit):
            text = transliterate(text)
        return text

    def first(self, i: int) -> str:
        name = self.p.first_name[i]
        nicks = self.p.nicknames[i]
        if nicks and self.chance(self.nick):
            name = nicks[self.pick(len(nicks))]
        return self._text(name)

    def last(self, i: int, older: bool = True) -> str:
        maiden = self.p.maiden_name[i]
        name = maiden if maiden is not None and older and self.chance(self.maiden) else self.p.last_name[i]
        return self._text(name)

    def address(self, i: int, older: bool = True) -> tuple[str, str, str, str]:
        p = self.p
        if p.moved[i] and older and self.chance(self.old):
            street, house = p.old_street[i], p.old_house_number[i]
            plz, city = p.old_postcode[i], p.old_city[i]
        else:
            street, house, plz, city = p.street[i], p.house_number[i], p.postcode[i], p.city[i]
        if self.chance(self.abbrev):
            street = street_variant(street, self.rng)
        if self.chance(self.translit):
            city = transliterate(city)
        return self._text(street), house, plz, city

    def birth(self, i: int, dmy: bool = False) -> str:
        if self.chance(self.no_birth):
            return ""
        iso = self.birth_iso[i]
        return f"{iso[8:10]}.{iso[5:7]}.{iso[0:4]}" if dmy else iso

    def phone(self, i: int, landline_first: bool = False) -> str:
        if self.chance(self.no_phone):
            return ""
        mobile, land = self.p.mobile[i], self.p.landline[i]
        number = (land or mobile) if landline_first else (mobile or land)
        if number is None:
            return ""
        return phone_variant(number[0], number[1], self.pick(PHONE_FORMATS))

    def email(self, i: int) -> str:
        return "" if self.chance(self.no_email) else str(self.p.email[i])


def make_records(
    rng: np.random.Generator,
    people: People,
    keys: Keys,
    params: SampleParams,
    card_revenue: tuple[np.ndarray, np.ndarray],
    end_ms: int,
) -> Records:
    pid = people.person_id
    truth: list[tuple[str, str, str]] = []
    birth_iso = np.datetime_as_string(people.birth.astype("datetime64[D]")).astype(object)
    n = len(people)
    acc_at, acc2_at = _stamps(keys.account_at), _stamps(keys.account2_at)
    updated = keys.account_at + (rng.random(n) * np.maximum(end_ms - keys.account_at, 0)).astype(np.int64)
    updated2 = keys.account2_at + (rng.random(n) * np.maximum(end_ms - keys.account2_at, 0)).astype(np.int64)
    upd, upd2 = _stamps(updated), _stamps(updated2)

    web = _Writer(rng, people, params, "webshop", birth_iso)
    webshop = []
    for i in np.flatnonzero(keys.account != None).tolist():  # noqa: E711
        for acc, at, up, email, older in (
            (keys.account[i], acc_at[i], upd[i], people.email[i], True),
            (keys.account2[i], acc2_at[i], upd2[i], people.alt_email[i], False),
        ):
            if acc is None:
                continue
            street, house, plz, city = web.address(i, older)
            webshop.append((acc, email, web.first(i), web.last(i, older), web.birth(i),
                            street, house, plz, city, web.phone(i), at, up))
            truth.append(("webshop", acc, pid[i]))

    loy = _Writer(rng, people, params, "loyalty", birth_iso)
    card_at, card2_at = _dmy(_stamps(keys.card_at)), _dmy(_stamps(keys.card2_at))
    loyalty = []
    rev1, rev2 = card_revenue
    for i in np.flatnonzero(keys.card != None).tolist():  # noqa: E711
        for card, at, rev, older in ((keys.card[i], card_at[i], rev1[i], True),
                                     (keys.card2[i], card2_at[i], rev2[i], False)):
            if card is None:
                continue
            street, house, plz, city = loy.address(i, older)
            euros = int(rev)
            loyalty.append((card, "Frau" if people.gender[i] == "f" else "Herr", loy.first(i),
                            loy.last(i, older), f"{street} {house}", plz, city,
                            loy.phone(i, landline_first=True), loy.email(i), loy.birth(i, dmy=True),
                            at, f"{euros // 100},{euros % 100:02d}", str(euros // 100)))
            truth.append(("loyalty", card, pid[i]))

    news = _Writer(rng, people, params, "newsletter", birth_iso)
    optin, optin2 = _stamps(keys.optin_at), _stamps(keys.optin2_at)
    nz = params.noise
    newsletter = []
    for i in np.flatnonzero(keys.subscriber != None).tolist():  # noqa: E711
        for sid, email, at in ((keys.subscriber[i], keys.subscriber_email[i], optin[i]),
                               (keys.subscriber2[i], keys.subscriber2_email[i], optin2[i])):
            if sid is None:
                continue
            u = news.u()
            kind = (1 if u < nz.email_upper else 2 if u < nz.email_upper + nz.email_capitalised
                    else 3 if u < nz.email_upper + nz.email_capitalised + nz.email_whitespace else 0)
            first = "" if news.chance(nz.missing_first_name_newsletter) else news.first(i)
            source = ("Webshop", "Filiale", "Gewinnspiel", "Facebook")[news.pick(4)]
            newsletter.append((sid, email_variant(str(email), kind), first, at[:10], source))
            truth.append(("newsletter", sid, pid[i]))

    crm = _Writer(rng, people, params, "crm", birth_iso)
    cols: dict[str, list[object]] = {f.name: [] for f in CRM_SCHEMA}
    for i in np.flatnonzero(keys.crm != None).tolist():  # noqa: E711
        title = people.title[i] if people.title[i] and crm.chance(nz.crm_title_shown) else ""
        first = crm.first(i)
        if title and crm.chance(0.3):  # typed into the first-name field instead
            first, title = f"{title} {first}", ""
        street, house, plz, city = crm.address(i)
        birth = None if crm.chance(crm.no_birth) else people.birth[i].astype("datetime64[D]").item()
        row = {
            "crm_id": keys.crm[i], "salutation": "Frau" if people.gender[i] == "f" else "Herr",
            "title": title or None, "first_name": first, "last_name": crm.last(i),
            "phone": crm.phone(i, landline_first=True) or None, "email": crm.email(i) or None,
            "street": street, "house_number": house, "postcode": plz, "city": city, "birth_date": birth,
            "last_contact": int(keys.crm_at[i]),
        }
        for k, v in row.items():
            cols[k].append(v)
        truth.append(("crm", keys.crm[i], pid[i]))

    crm_table = pa.Table.from_pydict(cols, schema=CRM_SCHEMA)
    src, key, person = zip(*truth, strict=True) if truth else ((), (), ())
    truth_table = pa.table({
        "record_id": pa.array([f"{s}:{k}" for s, k in zip(src, key, strict=True)], pa.string()),
        "source": pa.array(src, pa.string()),
        "source_key": pa.array(key, pa.string()),
        "person_id": pa.array(person, pa.string()),
    })
    return Records(webshop, loyalty, newsletter, crm_table, truth_table)
