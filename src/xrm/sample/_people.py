"""The ground-truth people of one chunk: names, households, addresses, contact identifiers.

People are drawn household by household, so members share an address, often a last name, a
landline and sometimes a family e-mail address.  Identifiers that must be unique across the
whole sample (phone numbers, ids) come from a bijective scramble of a global counter; e-mail
addresses and social handles go through :class:`UniqueNames`, which remembers what is taken.

    >>> people = draw_people(np.random.default_rng(1), offset=0, n=1000, params=SampleParams(),
    ...                      names=UniqueNames(), start_ms=0)  # doctest: +SKIP
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from xrm.sample._names import (
    CITIES,
    EMAIL_DOMAINS,
    FEMALE,
    LAST_NAMES,
    MALE,
    MOBILE_PREFIXES,
    STREET_KINDS,
    STREETS,
)
from xrm.sample._noise import ascii_fold
from xrm.sample._params import SampleParams

__all__ = ["DAY_MS", "NULL", "People", "UniqueNames", "draw_people", "scramble"]

DAY_MS = 86_400_000
NULL = np.array(None, dtype=object)  # the missing value in object arrays, for np.where


def _round(values: np.ndarray, key: int) -> np.ndarray:
    # any mixing function will do inside a Feistel round; this one is a cheap integer hash
    v = (values.astype(np.uint64) + np.uint64(key)) * np.uint64(0x9E3779B97F4A7C15)
    return (v ^ (v >> np.uint64(29))).astype(np.uint64)


def scramble(index: np.ndarray, digits: int) -> np.ndarray:
    """A bijection of 0 .. 10**digits - 1 that hides sequence: ids look random but never collide.

    A four-round Feistel network on the two halves of the decimal digits (format-preserving
    encryption in miniature): each round is invertible, so the whole map is a permutation.
    """
    hi_mod = np.uint64(10 ** (digits // 2))
    lo_mod = np.uint64(10 ** (digits - digits // 2))
    x = np.asarray(index, dtype=np.int64).astype(np.uint64) % (hi_mod * lo_mod)
    left: np.ndarray = x // lo_mod
    right: np.ndarray = x % lo_mod
    with np.errstate(over="ignore"):
        for key in (11, 23, 37, 53):
            left = (left + _round(right, key) % hi_mod) % hi_mod
            right = (right + _round(left, key + 1) % lo_mod) % lo_mod
    return (left * lo_mod + right).astype(np.int64)


def _weights(items: tuple[tuple, ...], col: int) -> np.ndarray:
    w = np.array([it[col] for it in items], dtype=np.float64)
    return w / w.sum()


class UniqueNames:
    """Remembers the e-mail addresses and handles given out, across chunks, so none is reused.

    A Bloom filter (Bloom 1970, CACM 13(7)) with 16 bits and 4 probes per expected name: a few
    hundred megabytes would go to a set of strings at ten million customers; this takes 128 MB,
    deterministically.  A false positive only gives a free name a number, never a name twice.
    """

    _PROBES = 4

    def __init__(self, capacity: int = 100_000) -> None:
        bits = 1 << max(20, int(np.ceil(np.log2(16 * max(capacity, 1)))))
        self._mask = np.uint64(bits - 1)
        self._bits = np.zeros(bits // 8, dtype=np.uint8)
        self.claimed = 0

    def _slots(self, names: list[str]) -> np.ndarray:
        raw = [x.encode("utf-8") for x in names]
        h1 = np.fromiter((zlib.crc32(b) for b in raw), dtype=np.uint64, count=len(raw))
        h2 = np.fromiter((zlib.adler32(b) for b in raw), dtype=np.uint64, count=len(raw))
        probes = np.arange(self._PROBES, dtype=np.uint64)
        return (h1[:, None] + probes * (h2[:, None] * np.uint64(2) + np.uint64(1))) & self._mask

    def claim(self, wanted: list[str], rng: np.random.Generator, sep: str = "") -> list[str]:
        """Each wanted name, or, if taken, with a number before the ``@`` (or at the end)."""
        names = list(wanted)
        pending = np.arange(len(names))
        tries = 0
        while len(pending):
            slots = self._slots([names[i] for i in pending])
            byte, bit = slots >> np.uint64(3), np.left_shift(1, slots & np.uint64(7)).astype(np.uint8)
            free = ~np.all(self._bits[byte] & bit, axis=1)
            # of equal free names in this round, the first one wins
            candidates = np.flatnonzero(free)
            _, first = np.unique(np.array([names[pending[c]] for c in candidates], dtype=object),
                                 return_index=True)
            won = np.zeros(len(pending), dtype=bool)
            won[candidates[first]] = True
            np.bitwise_or.at(self._bits, byte[won].ravel(), bit[won].ravel())
            self.claimed += int(won.sum())
            pending = pending[~won]
            tries += 1  # widen the numbers if a common name has used up the short ones
            top = 10 ** (3 + tries // 20)
            for i, number in zip(pending.tolist(), rng.integers(1, top, len(pending)).tolist(), strict=True):
                local, at, domain = wanted[i].rpartition("@") if "@" in wanted[i][1:] else (wanted[i], "", "")
                names[i] = f"{local}{sep}{number}{at}{domain}"
        return names


@dataclass
class People:
    """One chunk of ground-truth persons; every array has one entry per person."""

    gidx: np.ndarray  # global person number
    person_id: np.ndarray
    household: np.ndarray  # global household number (its head's gidx)
    household_size: np.ndarray
    member: np.ndarray  # 0 head, 1 partner, 2+ adult children
    gender: np.ndarray  # "f" | "m"
    first_name: np.ndarray
    nicknames: np.ndarray  # tuple of nicknames per person
    last_name: np.ndarray
    maiden_name: np.ndarray  # the last name before a recent change, or None
    title: np.ndarray  # "" | "Dr." | "Prof. Dr."
    birth: np.ndarray  # datetime64[D]
    street: np.ndarray
    house_number: np.ndarray
    postcode: np.ndarray
    city: np.ndarray
    area: np.ndarray  # phone area code of the city, without 0
    moved: np.ndarray  # bool
    old_street: np.ndarray
    old_house_number: np.ndarray
    old_postcode: np.ndarray
    old_city: np.ndarray
    email: np.ndarray
    alt_email: np.ndarray  # a second address, used for a second account or subscription
    family_email: np.ndarray  # shared by the household, or None
    mobile: np.ndarray  # (prefix, number) or None
    landline: np.ndarray  # (area, number) of the household, or None
    handle: np.ndarray  # social-media handle or None
    platform: np.ndarray  # "twitter" | "instagram" | None

    def __len__(self) -> int:
        return len(self.gidx)


def _household_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    sizes = rng.choice([1, 2, 3, 4], size=n, p=[0.50, 0.32, 0.12, 0.06])
    ends = np.cumsum(sizes)
    k = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:k].copy()
    sizes[-1] -= ends[k - 1] - n
    return sizes


def _address(rng: np.random.Generator, k: int) -> tuple[np.ndarray, ...]:
    stems = np.array(STREETS, dtype=object)[rng.integers(0, len(STREETS), k)]
    kinds_ = np.array([s for s, _ in STREET_KINDS], dtype=object)
    kinds = kinds_[rng.choice(len(STREET_KINDS), size=k, p=_weights(STREET_KINDS, 1))]
    street = np.array([s + t for s, t in zip(stems, kinds, strict=True)], dtype=object)
    num = rng.integers(1, 120, k)
    letter = np.where(rng.random(k) < 0.08, np.array(list("abc"), dtype=object)[rng.integers(0, 3, k)], "")
    house = np.array([f"{a}{b}" for a, b in zip(num, letter, strict=True)], dtype=object)
    city_i = rng.choice(len(CITIES), size=k, p=_weights(CITIES, 4))
    lo = np.array([c[1] for c in CITIES])[city_i]
    hi = np.array([c[2] for c in CITIES])[city_i]
    plz = lo + (rng.random(k) * (hi - lo + 1)).astype(np.int64)
    postcode = np.array([f"{p:05d}" for p in plz], dtype=object)
    city = np.array([c[0] for c in CITIES], dtype=object)[city_i]
    area = np.array([c[3] for c in CITIES], dtype=object)[city_i]
    return street, house, postcode, city, area


def _first_names(
    rng: np.random.Generator, female: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(female)
    f_i = rng.choice(len(FEMALE), size=n, p=_weights(FEMALE, 1))
    m_i = rng.choice(len(MALE), size=n, p=_weights(MALE, 1))
    f_names = np.array([x[0] for x in FEMALE], dtype=object)
    m_names = np.array([x[0] for x in MALE], dtype=object)
    f_nick = np.empty(len(FEMALE), dtype=object)
    f_nick[:] = [x[2] for x in FEMALE]
    m_nick = np.empty(len(MALE), dtype=object)
    m_nick[:] = [x[2] for x in MALE]
    first = np.where(female, f_names[f_i], m_names[m_i])
    nicks = np.where(female, f_nick[f_i], m_nick[m_i])
    return first, nicks


def _email_local(first: str, last: str, year: int, kind: int, nick: str) -> str:
    f, la = ascii_fold(first), ascii_fold(last)
    yy = year % 100
    return (
        f"{f}.{la}", f"{f}{la}", f"{f[0]}.{la}", f"{f}_{la}", f"{la}.{f}", f"{f}.{la}{yy:02d}",
        f"{f}{la}{year}", f"{ascii_fold(nick)}{yy:02d}", f"{la}{yy:02d}",
    )[kind]


def draw_people(
    rng: np.random.Generator,
    *,
    offset: int,
    n: int,
    params: SampleParams,
    names: UniqueNames,
    start_ms: int,
) -> People:
    """Draw ``n`` persons numbered from ``offset``, grouped into households."""
    cov = params.coverage
    gidx = np.arange(offset, offset + n, dtype=np.int64)
    sizes = _household_sizes(rng, n)
    n_hh = len(sizes)
    hh_local = np.repeat(np.arange(n_hh), sizes)
    starts = np.cumsum(sizes) - sizes
    member = np.arange(n) - starts[hh_local]
    household = gidx[starts][hh_local]

    # Gender: partners mostly of the other gender; heads and children at random.
    head_female = rng.random(n_hh) < 0.5
    female = rng.random(n) < 0.5
    partner = member == 1
    female[partner] = np.where(rng.random(partner.sum()) < 0.93, ~head_female[hh_local[partner]],
                               head_female[hh_local[partner]])
    female[member == 0] = head_female
    first, nicknames = _first_names(rng, female)

    # Ages: heads 21-85, partners near the head, children adult but young.
    head_age = 21 + rng.beta(1.6, 1.8, n_hh) * 64
    age = head_age[hh_local].copy()
    age[partner] += rng.normal(0, 4, partner.sum())
    child = member >= 2
    age[child] = np.maximum(18, age[child] - rng.uniform(22, 36, child.sum()))
    age = np.clip(age, 18, 92)
    start_day = np.datetime64(start_ms // DAY_MS, "D")
    birth = start_day - np.round(age * 365.25).astype("timedelta64[D]")

    # Last names: the household's; partners keep their own in a quarter of couples; of those
    # who share, some changed their name recently (older records show the maiden name).
    ln = np.array([x[0] for x in LAST_NAMES], dtype=object)
    ln_p = _weights(LAST_NAMES, 1)
    hh_last = ln[rng.choice(len(ln), size=n_hh, p=ln_p)]
    last = hh_last[hh_local].copy()
    own = ln[rng.choice(len(ln), size=n, p=ln_p)]
    keeps_own = partner & (rng.random(n) < 0.25)
    last[keeps_own] = own[keeps_own]
    changed = partner & ~keeps_own & (rng.random(n) < cov.name_changed) & (own != last)
    maiden = np.where(changed, own, NULL)

    title = np.full(n, "", dtype=object)
    u = rng.random(n)
    title[(age > 30) & (u < cov.title_dr)] = "Dr."
    title[(age > 40) & (u < cov.title_prof)] = "Prof. Dr."

    street, house, postcode, city, area = (a[hh_local] for a in _address(rng, n_hh))
    moved_hh = rng.random(n_hh) < cov.moved
    moved = moved_hh[hh_local]
    o_street, o_house, o_postcode, o_city, _ = (a[hh_local] for a in _address(rng, n_hh))
    none = np.full(n, None, dtype=object)
    old = [np.where(moved, a, none) for a in (o_street, o_house, o_postcode, o_city)]

    years = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    dom = np.array([d for d, _ in EMAIL_DOMAINS], dtype=object)
    domain = dom[rng.choice(len(dom), size=n, p=_weights(EMAIL_DOMAINS, 1))]
    alt_domain = dom[rng.choice(len(dom), size=n, p=_weights(EMAIL_DOMAINS, 1))]
    kind = rng.integers(0, 9, n)
    alt_kind = rng.integers(0, 9, n)
    use_maiden = changed & (rng.random(n) < 0.5)  # addresses outlive a marriage
    nick_pick = rng.integers(0, 8, n)

    def nick(i: int) -> str:
        options = nicknames[i]
        return options[nick_pick[i] % len(options)] if options else first[i]

    lasts = np.where(use_maiden, maiden, last)
    nicks = [nick(i) for i in range(n)]
    email = np.array(names.claim([
        f"{_email_local(f, la, int(y), int(k), ni)}@{d}"
        for f, la, y, k, ni, d in zip(first, lasts, years, kind, nicks, domain, strict=True)
    ], rng), dtype=object)
    alt_email = np.array(names.claim([
        f"{_email_local(f, la, int(y), int(k), ni)}@{d}"
        for f, la, y, k, ni, d in zip(first, last, years, alt_kind, nicks, alt_domain, strict=True)
    ], rng), dtype=object)

    family = np.full(n, None, dtype=object)
    fam_hh = np.flatnonzero((sizes >= 2) & (rng.random(n_hh) < 0.4))
    fam_domain = dom[rng.choice(len(dom), size=n_hh, p=_weights(EMAIL_DOMAINS, 1))]
    fam_pick = rng.integers(0, 3, n_hh)
    fam_local = [(f"familie.{la}", f"{la}.familie", f"fam{la}")[fam_pick[h]]
                 for h, la in zip(fam_hh, (ascii_fold(x) for x in hh_last[fam_hh]), strict=True)]
    fam_addr = names.claim([f"{loc}@{fam_domain[h]}" for loc, h in zip(fam_local, fam_hh, strict=True)], rng)
    for h, addr in zip(fam_hh.tolist(), fam_addr, strict=True):
        family[starts[h] : starts[h] + sizes[h]] = addr

    mobile = np.full(n, None, dtype=object)
    has_mobile = rng.random(n) < 0.9
    prefixes = np.array(MOBILE_PREFIXES, dtype=object)
    pre = prefixes[gidx % len(prefixes)]
    num = scramble(gidx, 8)
    for i in np.flatnonzero(has_mobile).tolist():
        mobile[i] = (pre[i], f"{num[i]:08d}")
    landline = np.full(n, None, dtype=object)
    has_land = (rng.random(n_hh) < 0.6)[hh_local]
    land_num = scramble(household, 7)
    for i in np.flatnonzero(has_land).tolist():
        landline[i] = (area[i], f"{land_num[i]:07d}")

    handle = np.full(n, None, dtype=object)
    platform = np.full(n, None, dtype=object)
    social = rng.random(n) < cov.social_handle
    plat = np.where(rng.random(n) < 0.5, "twitter", "instagram")
    h_kind = rng.integers(0, 4, n)
    social_i = np.flatnonzero(social)
    wanted = []
    for i in social_i.tolist():
        f, la, yy = ascii_fold(nicks[i]), ascii_fold(last[i]), int(years[i]) % 100
        options = (f"{f}_{la}", f"{f}.{la}{yy:02d}", f"{la}_{f}", f"{f}{la[:1]}{yy:02d}")
        wanted.append("@" + options[h_kind[i]])
    handle[social_i] = names.claim(wanted, rng, sep="_")
    platform[social_i] = plat[social_i]

    return People(
        gidx=gidx,
        person_id=np.array([f"P{g:08d}" for g in gidx], dtype=object),
        household=household,
        household_size=sizes[hh_local],
        member=member,
        gender=np.where(female, "f", "m"),
        first_name=first,
        nicknames=nicknames,
        last_name=last,
        maiden_name=maiden,
        title=title,
        birth=birth,
        street=street,
        house_number=house,
        postcode=postcode,
        city=city,
        area=area,
        moved=moved,
        old_street=old[0],
        old_house_number=old[1],
        old_postcode=old[2],
        old_city=old[3],
        email=email,
        alt_email=alt_email,
        family_email=family,
        mobile=mobile,
        landline=landline,
        handle=handle,
        platform=platform,
    )
