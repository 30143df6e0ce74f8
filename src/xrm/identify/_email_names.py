"""E-mail names: a record holding only an e-mail linked to the one profile its user part names.

A newsletter sign-up carries an e-mail and at most a first name: no surname, birth date or
address for Splink to compare, and its address is often one no other record of the person
holds. What it does carry is a name: people build the user part from their names and birth
year (``detlef.schneider64``, ``detlefschneider1964``, ``schneider.detlef64``, ``roth59``).
In the sample business at 100k records these records were 3,089 of the 3,932 records left
outside their person's profile.

A full name alone does not identify anyone at scale (at 100k records a nameless e-mail's full
name matched 17 named records on average, 6 % of them the same person), so the rule asks for
the birth year too, and then for a single profile:

1. **name and year**: the user part's letters spell the other record's first and last name (in
   either order; the first name as written or nickname-folded) and its digits are that
   record's birth year: two digits (``64``), four (``1964``), or four followed by more (a
   number a provider added to a taken name, ``1964381``); three digits are no year
   (``fischer.helmut557``: 557 is such a number, not 1955);
2. **surname and year**: the letters are the surname alone and the digits begin with the birth
   year, and the e-mail record carries a first name (which the cannot-link rules then check).

Only the strongest level found counts, and only when every candidate at that level lies in one
profile (namesakes born in the same year make it ambiguous: no link, and so does a namesake
profile with no birth date at all, which may be the person), the e-mail record's
profile holds no record with a surname yet (it was not placed by other evidence), and no
cannot-link rule refuses the join (the e-mail record's first name against the profile's).
Measured at 100k records: 0.90 of such links were right at level 1, 0.95 at level 2 (level 2
without a first name: 0.40, hence the requirement). The candidates are found by equality joins
on ``letters:digits`` keys, so the step stays cheap at 1M records. Household e-mails
(``familie.weber``) name no person and find no candidate.

    >>> email_user_key("detlef.schneider64@yahoo.de")
    ('detlefschneider', '64')
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["NAME_AND_YEAR", "SURNAME_AND_YEAR", "candidates_sql", "email_user_key", "pick_email_names",
           "undated_namesakes_sql"]

NAME_AND_YEAR, SURNAME_AND_YEAR = 1, 2
LEVEL_TEXT = {NAME_AND_YEAR: "first and last name", SURNAME_AND_YEAR: "surname"}
_MIN_LETTERS = 3  # 'li64' says too little


def email_user_key(email: str | None) -> tuple[str, str] | None:
    """(letters, digits) of an e-mail's user part, the Python twin of the SQL in
    :func:`candidates_sql`; None without an e-mail."""
    if not email:
        return None
    user = email.split("@", 1)[0].lower()
    digits = re.search(r"[0-9]+", user)
    return re.sub(r"[^a-z]", "", user), digits.group(0) if digits else ""


def _letters(expr: str) -> str:
    return f"regexp_replace({expr}, '[^a-z]', '', 'g')"


def candidates_sql(record_type: str) -> str:
    """SQL for the temp table ``email_name_pairs(na, nb, level, user_part, birth_year)``:
    record nodes ``na`` (an e-mail, no surname) and ``nb`` (a surname and a birth date) whose
    e-mail user part names ``nb`` at ``level``. Needs the temp table ``nodes``."""
    user = "split_part(r.email, '@', 1)"
    return f"""
    CREATE OR REPLACE TEMP TABLE email_name_pairs AS
    WITH nameless AS (
        SELECT n.node, {user} AS user_part, {_letters(user)} AS letters,
               regexp_extract({user}, '[0-9]+') AS digits, r.first_name_key IS NOT NULL AS has_first
        FROM normalized_records r JOIN nodes n ON n.id_type = '{record_type}' AND n.id_value = r.record_id
        WHERE r.email IS NOT NULL AND r.last_name_key IS NULL
    ),
    nameless_keys AS (
        SELECT node, user_part, has_first,
               letters || ':' || CASE WHEN length(digits) = 2 THEN digits ELSE left(digits, 4) END AS k
        FROM nameless WHERE length(letters) >= {_MIN_LETTERS} AND length(digits) IN (2, 4, 5, 6, 7)
    ),
    named AS (
        SELECT n.node, {_letters('r.first_name_key')} AS f,
               {_letters('coalesce(r.first_name_canon, r.first_name_key)')} AS c,
               {_letters('r.last_name_key')} AS l, strftime(r.birth_date, '%Y') AS y
        FROM normalized_records r JOIN nodes n ON n.id_type = '{record_type}' AND n.id_value = r.record_id
        WHERE r.last_name_key IS NOT NULL AND r.birth_date IS NOT NULL
    ),
    forms AS (
        SELECT node, y, {NAME_AND_YEAR} AS level,
               unnest(list_distinct([f || l, c || l, l || f, l || c])) AS form
        FROM named WHERE f <> '' AND l <> ''
        UNION ALL
        SELECT node, y, {SURNAME_AND_YEAR}, l FROM named WHERE l <> ''
    ),
    named_keys AS (
        SELECT node, y, level, form || ':' || right(y, 2) AS k FROM forms
        UNION ALL
        SELECT node, y, level, form || ':' || y FROM forms
    )
    SELECT a.node AS na, b.node AS nb, min(b.level) AS level, any_value(a.user_part) AS user_part,
           any_value(b.y) AS birth_year
    FROM nameless_keys a JOIN named_keys b ON a.k = b.k
    WHERE b.level = {NAME_AND_YEAR} OR a.has_first
    GROUP BY a.node, b.node
    """


def undated_namesakes_sql(record_type: str) -> str:
    """SELECT the e-mail record nodes of ``email_name_picks(na, root_b)`` whose full name (the
    letters of the user part, either order) is also held by a record without a birth date in
    another profile (``email_name_roots(node, root)``) that has no birth date at all: that
    profile may be the person, so the pick is not unique. (At 100k records these were the 25
    wrong links of 379: the person's own record had no birth date, a namesake's had the year.)
    Needs the temp tables ``nodes``, ``email_name_picks`` and ``email_name_roots``."""
    user = "split_part(r.email, '@', 1)"
    return f"""
    WITH pick_letters AS (
        SELECT p.na, p.root_b, {_letters(user)} AS letters
        FROM email_name_picks p JOIN nodes n ON n.node = p.na
        JOIN normalized_records r ON r.record_id = n.id_value
    ),
    undated AS (
        SELECT n.node, unnest(list_distinct([
            {_letters('r.first_name_key')} || {_letters('r.last_name_key')},
            {_letters('coalesce(r.first_name_canon, r.first_name_key)')} || {_letters('r.last_name_key')},
            {_letters('r.last_name_key')} || {_letters('r.first_name_key')},
            {_letters('r.last_name_key')} || {_letters('coalesce(r.first_name_canon, r.first_name_key)')}
        ])) AS form
        FROM normalized_records r JOIN nodes n ON n.id_type = '{record_type}' AND n.id_value = r.record_id
        WHERE r.birth_date IS NULL AND r.last_name_key IS NOT NULL AND r.first_name_key IS NOT NULL
    ),
    dated_roots AS (
        SELECT DISTINCT e.root FROM email_name_roots e JOIN nodes n ON n.node = e.node
        JOIN normalized_records r ON r.record_id = n.id_value WHERE r.birth_date IS NOT NULL
    )
    SELECT DISTINCT p.na FROM pick_letters p JOIN undated u ON u.form = p.letters
    JOIN email_name_roots e ON e.node = u.node
    WHERE e.root <> p.root_b AND e.root NOT IN (SELECT root FROM dated_roots)
    """


def pick_email_names(
    pairs: list[tuple[int, int, int, str, str]], root_of: Any, has_surname: Any
) -> list[tuple[int, int, int, str, str]]:
    """The pairs to join: per e-mail record's profile (``root_of(node)``) that holds no record
    with a surname (``has_surname(root)``), the pairs of the strongest level found when all of
    them point into one profile; one pair per such e-mail record, in node order.

    ``pairs`` are ``(na, nb, level, user_part, birth_year)`` from :func:`candidates_sql`.
    """
    by_root: dict[int, list[tuple[int, int, int, str, str]]] = {}
    for p in pairs:
        by_root.setdefault(root_of(p[0]), []).append(p)
    out = []
    for root in sorted(by_root):
        if has_surname(root):
            continue
        found = by_root[root]
        best = min(p[2] for p in found)
        top = [p for p in found if p[2] == best]
        if len({root_of(p[1]) for p in top}) == 1:
            out.append(min(top))
    return out
