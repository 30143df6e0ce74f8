"""Cannot-link rules: evidence strong enough that two records are different people.

Households share surname, address, phone and often an e-mail, so a plain match-weight threshold
merges parents and children. Two records whose known birth dates differ by more than a typo,
or whose first names clearly differ (after nickname folding) without the same known birthday,
or whose known genders differ, are never merged by fuzzy links; the clustering checks every
record pair across two clusters before joining them.

Entry errors must not split one person (FEBRL3 replaces a duplicate's whole birth date or
first name; the sample mistypes nicknames): first names one keying error apart do not differ,
a person-level identifier (account id) within one typo overrides a conflict, and a conflict
between two records is outvoted when another record of either side vouches for the odd one
(``vouches``: same account up to a typo, or the same birth date and first name): that side
already holds the odd record through glue or earlier evidence.

    >>> round(jaro_winkler("martha", "marhta"), 4)
    0.9611
    >>> conflict(("anna", "anna", "1980-01-02"), ("ben", "benjamin", None), 0.8, 1)
    "first names 'anna' and 'ben' differ"
    >>> conflict(("anna", "anna", "1980-01-02", "7001311"), ("ben", "ben", None, "7001131"), 0.8, 1)
"""

from __future__ import annotations

from functools import cache, lru_cache

__all__ = ["RecordKey", "conflict", "damerau_levenshtein", "jaro_winkler", "vouches", "within_edits"]

# (first_name_key, first_name_canon, birth date as YYYY-MM-DD[, account_id[, gender 'f'/'m']]);
# any part may be None.
RecordKey = tuple[str | None, ...]
# An account id shorter than this is too easily one typo from another person's.
MIN_ACCOUNT_LEN = 6


@lru_cache(maxsize=200_000)
def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1) -> float:
    """Jaro–Winkler similarity (Winkler 1990, "String comparator metrics and enhanced decision
    rules in the Fellegi–Sunter model of record linkage", eq. 1 and 2; prefix up to 4)."""
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    used_b = [False] * lb
    match_a = []
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not used_b[j] and b[j] == ch:
                used_b[j] = True
                match_a.append(ch)
                break
    m = len(match_a)
    if not m:
        return 0.0
    match_b = [b[j] for j in range(lb) if used_b[j]]
    transpositions = sum(x != y for x, y in zip(match_a, match_b, strict=True)) / 2
    jaro = (m / la + m / lb + (m - transpositions) / m) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1 - jaro)


def damerau_levenshtein(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


@lru_cache(maxsize=200_000)
def within_edits(a: str, b: str, k: int) -> bool:
    """``damerau_levenshtein(a, b) <= k``, without the O(len²) table in the common cases.

    Equal lengths (birth dates, account ids): at most ``k`` positions differ, or for ``k = 1``
    one adjacent transposition. The clustering asks this for every record pair across two
    clusters it tries to join (1.1M pairs at 1M records): the full table was half its time.
    """
    if a == b:
        return True
    if abs(len(a) - len(b)) > k:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) <= k:
            return True
        if k == 1:
            i, j = diff[0], diff[-1]
            return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    return damerau_levenshtein(a, b) <= k


def _is_subsequence(short: str, long_: str) -> bool:
    it = iter(long_)
    return all(ch in it for ch in short)


@cache
def _nicknames_of() -> dict[str, frozenset[str]]:
    """Folded canonical first name -> its nicknames (the packaged table, reversed)."""
    from xrm.identify._names import nicknames

    out: dict[str, set[str]] = {}
    for nick, canon in nicknames().items():
        out.setdefault(canon, set()).add(nick)
    return {canon: frozenset(nicks) for canon, nicks in out.items()}


@lru_cache(maxsize=200_000)
def _entry_error(a: str, b: str) -> bool:
    """Two first names one keying error apart that string similarity misses: two letters
    swapped ('lea' / 'lae': Jaro-Winkler 0.6 on three letters), or a nickname of the other's
    name with one typo ('heiz' for Heinz, Heinrich; 'lsa' for Lisa, Elisabeth). A plain one-edit
    difference is not enough: Paul and Paula are brother and sister.
    """
    if len(a) == len(b) and sorted(a) == sorted(b) and within_edits(a, b, 1):
        return True
    table = _nicknames_of()
    return any(within_edits(short, nick, 1) for short, long_ in ((a, b), (b, a))
               for nick in table.get(long_, ()) if len(short) >= 3)


def _names_differ(x: RecordKey, y: RecordKey, threshold: float) -> bool:
    kx, cx, ky, cy = x[0], x[1], y[0], y[1]
    if not (kx and ky):
        return False
    if (cx or kx) == (cy or ky):
        return False
    tokens_x = set((cx or kx).split()) | set(kx.split())
    tokens_y = set((cy or ky).split()) | set(ky.split())
    if tokens_x & tokens_y:  # 'hans peter' and 'peter'
        return False
    short, long_ = sorted((cx or kx, cy or ky), key=len)
    if short[0] == long_[0] and _is_subsequence(short, long_):  # 'ue' / 'uwe', 'wlfi' / 'wolfi'
        return False
    if len(short) >= 4 and long_.endswith(short):  # short forms that drop the start: 'fred' / 'manfred'
        return False
    best = max(jaro_winkler(kx, ky), jaro_winkler(cx or kx, cy or ky))
    return best < threshold and not _entry_error(kx, cy or ky) and not _entry_error(cx or kx, ky)


def _genders_differ(x: RecordKey, y: RecordKey) -> bool:
    gx, gy = (x[4] if len(x) > 4 else None), (y[4] if len(y) > 4 else None)
    return bool(gx and gy and gx != gy)


def _day_month_swapped(a: str, b: str) -> bool:
    """'1980-03-12' and '1980-12-03', or two digits of month and day swapped ('1962-11-21' and
    '1962-12-11'): entry errors, not another person. Same year, same month and day digits."""
    return a[:4] == b[:4] and sorted(a[5:7] + a[8:10]) == sorted(b[5:7] + b[8:10])


def _same_account(x: RecordKey, y: RecordKey) -> bool:
    """Account ids (a customer number, FEBRL's soc_sec_id) equal up to one typo. Equal ones are
    glue already; one typo among a 7-digit number's neighbours is rare enough to outweigh a
    replaced birth date or first name, and the pair still needs a high match weight to be joined.
    """
    ax, ay = (x[3] if len(x) > 3 else None), (y[3] if len(y) > 3 else None)
    return bool(ax and ay and min(len(ax), len(ay)) >= MIN_ACCOUNT_LEN and within_edits(ax, ay, 1))


@lru_cache(maxsize=200_000)  # the clustering asks again for every pair of clusters it tries
def vouches(x: RecordKey, y: RecordKey, name_threshold: float, birth_edits: int) -> bool:
    """Positive evidence that two records are one person: account ids within one typo, or
    birth dates known, equal up to ``birth_edits`` typos (or month and day digits swapped), not
    the 1 January placeholder, and first names that do not differ. A missing birth date is no
    evidence: a record without one vouches for nobody.
    """
    if _same_account(x, y):
        return True
    bx, by = x[2], y[2]
    if not (bx and by) or "01-01" in (bx[5:], by[5:]):
        return False
    if not within_edits(bx, by, birth_edits) and not _day_month_swapped(bx, by):
        return False
    # First names must not differ: the same birthday with another first name is a twin as often
    # as a replaced name (the sample's Huber twins), and a twin must not vouch for a sibling.
    return not _names_differ(x, y, name_threshold) and not _genders_differ(x, y)


@lru_cache(maxsize=500_000)  # asked again for the same records as their clusters grow
def conflict(x: RecordKey, y: RecordKey, name_threshold: float, birth_edits: int) -> str | None:
    """Why two records cannot be one person, or None.

    A confident non-match needs first name and birth date together: birth dates far apart
    (more than ``birth_edits`` edits and not day and month swapped), or first names that differ
    unless the birth dates are known and identical. That exception is what FEBRL-style entry
    errors need (a replaced first name on an otherwise equal record); it does not hold for 1
    January, the usual placeholder for a birth year alone, which siblings and partners share
    in real files. Twins in one household (same birthday, other first name) are left to the
    match weight. Known genders (the salutation) that differ are two people too (Stefan and
    Stefanie Huber: first names a prefix apart, one record without a birth date; twins of the
    same birthday and other first names), unless the birth dates are known and identical and
    the first names do not differ: then the salutation is the entry error. Account ids within
    one typo lift every rule.
    """
    if _same_account(x, y):
        return None
    bx, by = x[2], y[2]
    if bx and by and not within_edits(bx, by, birth_edits) and not _day_month_swapped(bx, by):
        return f"birth dates {bx} and {by} differ"
    same_birthday = bool(bx and bx == by and bx[5:] != "01-01")
    names_differ = _names_differ(x, y, name_threshold)
    if names_differ and not same_birthday:
        return f"first names {x[0]!r} and {y[0]!r} differ"
    # Another gender is another person, unless it is the one difference of a same-birthday pair.
    if _genders_differ(x, y) and (names_differ or not same_birthday):
        return f"genders {x[4]!r} and {y[4]!r} differ"
    return None
