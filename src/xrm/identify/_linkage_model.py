"""The Fellegi–Sunter model xrm trains with Splink: comparisons, blocking rules, parameters.

Fellegi & Sunter (1969), "A theory for record linkage", JASA 64(328): a pair's match weight is
``log2(λ/(1-λ)) + Σ_k log2(m_k/u_k)`` over the comparison levels it falls in (their eq. 2 in
log form), with ``m = P(level | match)`` and ``u = P(level | non-match)``. Splink computes it in
SQL; here are the comparisons, the blocking rules (each cheap at 1M records: every block is a
person's e-mail, phone or account, a birthday or postcode narrowed by a name or a street or
house number, a swapped pair of names, or one house) and the packaged parameters used when
the data is too small to train on.

    >>> [c for c, _ in comparison_specs()]
    ['first_name', 'last_name', 'birth_date', 'address', 'email', 'phone', 'account_id']
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from xrm.exceptions import ModelError

__all__ = [
    "INPUT_COLUMNS",
    "PARAMETERS_FORMAT",
    "PRIOR_RECALL",
    "PRIOR_RULES",
    "UNSEEN_M",
    "blocking_rules",
    "bound_weights",
    "comparison_specs",
    "correct_u_for_matches",
    "packaged_parameters",
    "parameters_from_splink",
    "prior_from_pairs_per_record",
    "splink_settings",
    "training_rules",
    "u_sample_pairs",
    "weights_look_right",
]

PARAMETERS_FORMAT = 2
UNSEEN_M = 0.005
U_FLOOR_SHARE = 0.01
MIN_LEVEL_WEIGHT = -12.0
U_PAIRS_PER_RECORD = 40
# Columns the linkage reads from normalized_records (SQL expressions, aliased).
INPUT_COLUMNS = (
    "record_id AS unique_id",
    "first_name_key",
    "first_name_canon",
    "last_name_key",
    "strftime(birth_date, '%Y-%m-%d') AS birth_date",
    # For blocking only: 1 January is the usual placeholder for a year alone (the sample's
    # '2005-01-01' is on 3 % of records); blocks on it held 23M of 32M candidate pairs at 1M
    # records, nearly all non-matches. Comparisons still see the date.
    "CASE WHEN strftime(birth_date, '%m-%d') <> '01-01' THEN strftime(birth_date, '%Y-%m-%d') END "
    "AS birth_date_block",
    "email",
    # The user part counts apart from the domain only when it holds more than letters: a user
    # part of letters alone is mostly the name ('christine.schneider'), which namesakes share and
    # the name comparisons already count (106 of 400 wrong links at 100k sample records).
    "CASE WHEN regexp_matches(split_part(email, '@', 1), '[0-9]') THEN split_part(email, '@', 1) END "
    "AS email_user",
    "phone",
    "street_key",
    "house_number",
    "postcode",
    "city_key",
    "account_id",
)
# Each block stays small at 1M records: one person's identifiers, a birthday (not the 1 January
# placeholder) narrowed by a name or a place, a postcode narrowed by a name, one house
# (households are scored, then kept apart by the cannot-link rules).
_PREDICT_BLOCKS = (
    ("email",),
    ("phone",),
    ("account_id",),
    ("first_name_canon", "birth_date_block"),
    ("last_name_key", "birth_date_block"),
    ("postcode", "birth_date_block"),
    ("postcode", "last_name_key"),
    ("postcode", "first_name_canon"),
    ("street_key", "house_number", "city_key"),
    ("first_name_canon", "last_name_key", "city_key"),
    ("birth_date_block", "street_key"),
    ("birth_date_block", "house_number"),
)
# First and last name swapped (whole or one of them, with the birth date): an equi-join each,
# both orientations because Splink keeps only l.unique_id < r.unique_id.
_SWAP_BLOCKS = (
    "l.first_name_key = r.last_name_key AND l.last_name_key = r.first_name_key",
    "l.first_name_key = r.last_name_key AND l.birth_date_block = r.birth_date_block",
    "l.last_name_key = r.first_name_key AND l.birth_date_block = r.birth_date_block",
)
# EM runs once per rule, each rule leaving other comparisons free to be estimated (Splink fixes
# the comparisons a rule blocks on); a rule that finds no pairs (no e-mails at all) is skipped.
_TRAINING_BLOCKS = (
    ("first_name_canon", "birth_date"),
    ("postcode", "last_name_key"),
    ("street_key", "house_number", "city_key"),
    ("email",),
)
# Deterministic rules that admit almost no false pairs, for the prior λ (Splink's
# estimate_probability_two_random_records_match with an assumed recall).
PRIOR_RULES = (
    ("account_id",), ("email", "first_name_canon"), ("first_name_canon", "last_name_key", "birth_date")
)
PRIOR_RECALL = 0.6


def comparison_specs() -> list[tuple[str, Callable[[], list[Any]]]]:
    """``(name, make_levels)`` per comparison; levels run from the null level to 'else'.

    Exact levels on names, birth date, postcode and city carry term-frequency adjustments (a
    shared 'müller' or '10115' says less than a shared rare value).
    """
    import splink.comparison_level_library as cll

    def name(key: str, canon: str | None) -> Callable[[], list[Any]]:
        def levels() -> list[Any]:
            exact = (
                cll.ExactMatchLevel(canon, term_frequency_adjustments=True).configure(
                    label_for_charts="same (nicknames folded)")
                if canon else cll.ExactMatchLevel(key, term_frequency_adjustments=True).configure(
                    label_for_charts="same")
            )
            return [cll.NullLevel(key), exact,
                    cll.ColumnsReversedLevel("first_name_key", "last_name_key").configure(
                        label_for_charts="first and last name swapped"),
                    cll.JaroWinklerLevel(key, 0.92), cll.JaroWinklerLevel(key, 0.8), cll.ElseLevel()]

        return levels

    def birth() -> list[Any]:
        day_month_swapped = (
            "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
            "substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) AND "
            "substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)"
        )
        # Term frequencies: a placeholder date (1 January) shared by many says little.
        return [cll.NullLevel("birth_date"),
                cll.ExactMatchLevel("birth_date", term_frequency_adjustments=True),
                cll.DamerauLevenshteinLevel("birth_date", 1).configure(label_for_charts="one typo"),
                cll.CustomLevel(day_month_swapped, "day and month swapped"),
                cll.DamerauLevenshteinLevel("birth_date", 2).configure(label_for_charts="two typos"),
                cll.ElseLevel()]

    def typo(col: str, edits: int) -> Callable[[], list[Any]]:
        def levels() -> list[Any]:
            return [cll.NullLevel(col),
                    cll.ExactMatchLevel(col, term_frequency_adjustments=True).configure(
                        label_for_charts="same"),
                    cll.DamerauLevenshteinLevel(col, edits).configure(
                        label_for_charts=f"up to {edits} typos"),
                    cll.ElseLevel()]

        return levels

    def address() -> list[Any]:
        # One comparison over street, number, postcode and city: they are not independent
        # (a household agrees on all four), so separate comparisons would count a shared house
        # four times. The levels still forgive a typo in any one part.
        same, jw = cll.ExactMatchLevel, cll.JaroWinklerLevel
        area = cll.Or(same("postcode"), same("city_key"))
        return [
            cll.And(cll.NullLevel("postcode"), cll.NullLevel("street_key")).configure(is_null_level=True),
            cll.And(same("street_key"), same("house_number"), same("postcode")).configure(
                label_for_charts="same street, number and postcode"),
            cll.And(jw("street_key", 0.88), same("house_number"), area).configure(
                label_for_charts="same house, one part mistyped"),
            cll.And(same("street_key"), area).configure(label_for_charts="same street, other number"),
            same("postcode", term_frequency_adjustments=True).configure(label_for_charts="same postcode"),
            same("city_key", term_frequency_adjustments=True).configure(label_for_charts="same city"),
            cll.ElseLevel(),
        ]

    def email() -> list[Any]:
        return [cll.NullLevel("email"), cll.ExactMatchLevel("email"),
                cll.ExactMatchLevel("email_user").configure(label_for_charts="same user, other domain"),
                cll.ElseLevel()]

    def phone() -> list[Any]:
        return [cll.NullLevel("phone"), cll.ExactMatchLevel("phone"), cll.ElseLevel()]

    return [
        ("first_name", name("first_name_key", "first_name_canon")),
        ("last_name", name("last_name_key", None)),
        ("birth_date", birth),
        ("address", address),
        ("email", email),
        ("phone", phone),
        ("account_id", typo("account_id", 2)),
    ]


def blocking_rules() -> list[Any]:
    from splink import block_on

    return [*(block_on(*cols) for cols in _PREDICT_BLOCKS), *_SWAP_BLOCKS]


def training_rules() -> list[Any]:
    from splink import block_on

    return [block_on(*cols) for cols in _TRAINING_BLOCKS]


def splink_settings(parameters: dict[str, Any] | None = None, prior: float | None = None) -> Any:
    """Splink settings; with ``parameters`` every non-null level gets its m and u from them."""
    import splink.comparison_library as cl
    from splink import SettingsCreator

    comparisons: list[Any] = []
    for name, make in comparison_specs():
        levels = make()
        if parameters is not None:
            known = parameters["comparisons"].get(name)
            if known is None or len(known) != len(levels) - 1:
                raise ModelError(
                    f"linkage parameters do not fit comparison {name!r} ({len(levels) - 1} levels); "
                    f"retrain them with xrm.identify.train_linkage_parameters"
                )
            for level, p in zip(levels[1:], known, strict=True):
                level.configure(m_probability=p["m"], u_probability=p["u"])
        comparisons.append(cl.CustomComparison(comparison_levels=levels, output_column_name=name))
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking_rules(),
        probability_two_random_records_match=prior if prior is not None else 1e-4,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,
    )


def parameters_from_splink(model: dict[str, Any]) -> dict[str, Any]:
    """Portable parameters from a Splink settings dict (``linker.misc.save_model_to_json()``)."""
    out: dict[str, Any] = {
        "format": PARAMETERS_FORMAT,
        "probability_two_random_records_match": model["probability_two_random_records_match"],
        "comparisons": {},
    }
    for comp in model["comparisons"]:
        levels = []
        for lv in comp["comparison_levels"]:
            if lv.get("is_null_level"):
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            seen = m is not None and u is not None
            # A level no pair fell into cannot be trained. It must not count for a match: an
            # unseen m is min(floor, u) (zero or negative weight), an unseen u equals m (zero).
            if m is None:
                m = min(UNSEEN_M, u) if u else UNSEEN_M
            if u is None:
                u = m
            weight = math.log2(m / u) if m and u else None
            levels.append({"label": lv.get("label_for_charts"), "m": m, "u": u, "seen": seen,
                           "weight": None if weight is None else round(weight, 3)})
        out["comparisons"][comp["output_column_name"]] = levels
    # Splink leaves out a comparison whose columns the data never fills (no e-mails at all):
    # neutral weights keep the parameters complete.
    done = out["comparisons"]
    out["comparisons"] = {}
    for name, make in comparison_specs():
        out["comparisons"][name] = done.get(name) or [
            {"label": None, "m": UNSEEN_M, "u": UNSEEN_M, "seen": False, "weight": 0.0}
            for _ in make()[1:]
        ]
    return out


def correct_u_for_matches(parameters: dict[str, Any], floor_share: float = U_FLOOR_SHARE) -> dict[str, Any]:
    """Take the true matches out of u estimated from random pairs.

    Random pairs follow the mixture ``λ·m + (1-λ)·u`` (Fellegi & Sunter 1969, §2; the same
    mixture Winkler's EM fits), so the u that random sampling measures is contaminated by
    ``λ·m``. For nearly unique values (e-mail, phone, full address) that contamination is all of
    it: the weight of an e-mail match comes out as exactly ``-log2 λ`` and cancels the prior, so
    an e-mail-only pair scores p ≈ 0.5 at every data size. Solving the mixture for u, floored at
    ``floor_share`` of the measured u (some values are really shared: family e-mails), fixes it.
    """
    lam = parameters["probability_two_random_records_match"]
    for levels in parameters["comparisons"].values():
        for lv in levels:
            m, u = lv["m"], lv["u"]
            u_true = max((u - lam * m) / (1 - lam), u * floor_share)
            lv["u_measured"], lv["u"] = u, u_true
            lv["weight"] = round(math.log2(m / u_true), 3)
    return parameters


def bound_weights(parameters: dict[str, Any], lowest: float = MIN_LEVEL_WEIGHT) -> dict[str, Any]:
    """Keep EM's extremes out of the model: a partial level never outweighs exact agreement
    (capped at the exact level's weight, or at 0 when no pair agreed exactly), and no level
    weighs less than ``lowest`` bits. EM drives m to ~0 for a level that only non-matches
    fill in the blocks it saw (neighbouring postcodes in the sample: -78 bits), which would
    veto every true match with one typo there. m is moved to fit the bounded weight.
    """
    for levels in parameters["comparisons"].values():
        cap = levels[0]["weight"] if levels[0].get("seen", True) else 0.0
        for i, lv in enumerate(levels):
            w = lv["weight"]
            if w is None:
                continue
            bounded = max(min(w, cap) if i else w, lowest)
            if bounded != w:
                lv["m_trained"], lv["m"] = lv["m"], lv["u"] * 2.0**bounded
                lv["weight"] = round(bounded, 3)
    return parameters


def weights_look_right(parameters: dict[str, Any]) -> list[str]:
    """Sanity checks on learned weights; each broken one is named (empty list: all fine).

    Agreement on the best level must count for a match and the 'else' level against it; an m
    or u that EM could not estimate (no pairs in that level) is a problem too.
    """
    problems = []
    for name, levels in parameters["comparisons"].items():
        if not levels[0].get("seen", True):
            # No pair agreed on the field (never filled, or unique per record like a shop's
            # account ids): its agreement weight is neutral by construction, nothing to check.
            continue
        if any(lv["m"] is None or lv["u"] is None for lv in levels):
            problems.append(f"{name}: some levels have no trained m or u")
            continue
        best, worst = levels[0]["weight"], levels[-1]["weight"]
        if best is None or best <= 0:
            problems.append(f"{name}: agreement weight {best} is not positive")
        if worst is None or worst >= 0:
            problems.append(f"{name}: disagreement weight {worst} is not negative")
    return problems


@cache
def _packaged_text() -> str:
    return resources.files("xrm.identify").joinpath("linkage_parameters.json").read_text("utf-8")


def packaged_parameters() -> dict[str, Any]:
    """The parameters shipped with xrm (trained on the sample business, see their ``trained_on``)."""
    data: dict[str, Any] = json.loads(_packaged_text())
    if data.get("format") != PARAMETERS_FORMAT:
        raise ModelError(
            f"packaged linkage parameters have format {data.get('format')}, this xrm reads "
            f"format {PARAMETERS_FORMAT}; reinstall xrm"
        )
    return data


def u_sample_pairs(n_records: int, cap: float, per_record: int = U_PAIRS_PER_RECORD) -> float:
    """Random pairs for u: ``per_record`` per record (at least 2·10⁵), at most ``cap``.

    u only needs enough pairs in each level, which depends on how many distinct values a field
    has, so it grows with the records, not with the n²/2 pairs. A tenth of all pairs (the old
    rule) was 1.25M pairs on FEBRL3's 5,000 records: 9 CPU seconds of 13 for the same weights
    and the same accuracy as 2·10⁵ pairs (1.6 s).

        >>> u_sample_pairs(5_000, 1e7), u_sample_pairs(100_000, 1e7), u_sample_pairs(10**6, 1e7)
        (200000.0, 4000000.0, 10000000.0)
    """
    return float(min(cap, max(2e5, per_record * n_records)))


def prior_from_pairs_per_record(pairs_per_record: float, n_records: int) -> float:
    """λ for ``n`` records when each record has ``pairs_per_record`` true partners on average."""
    if n_records < 2:
        return 0.5
    return min(0.5, 2 * pairs_per_record / (n_records - 1))
