"""The Fellegi–Sunter model xrm trains with Splink: comparisons, blocking rules, parameters.

Fellegi & Sunter (1969), "A theory for record linkage", JASA 64(328): a pair's match weight is
``log2(λ/(1-λ)) + Σ_k log2(m_k/u_k)`` over the comparison levels it falls in (their eq. 2 in
log form), with ``m = P(level | match)`` and ``u = P(level | non-match)``. Splink computes it in
SQL; here are the comparisons, the blocking rules (each cheap at 1M records: every block is a
person's e-mail, phone, birthday or a postcode narrowed by a name) and the packaged parameters
used when the data is too small to train on.

    >>> [c for c, _ in comparison_specs()]
    ['first_name', 'last_name', 'birth_date', 'address', 'email', 'phone']
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
    "UNSEEN_M",
    "blocking_rules",
    "comparison_specs",
    "correct_u_for_matches",
    "fallback_training_rule",
    "packaged_parameters",
    "parameters_from_splink",
    "prior_from_pairs_per_record",
    "splink_settings",
    "training_rules",
    "weights_look_right",
]

PARAMETERS_FORMAT = 1
UNSEEN_M = 0.005
U_FLOOR_SHARE = 0.01
# Columns the linkage reads from normalized_records (SQL expressions, aliased).
INPUT_COLUMNS = (
    "record_id AS unique_id",
    "first_name_key",
    "first_name_canon",
    "last_name_key",
    "strftime(birth_date, '%Y-%m-%d') AS birth_date",
    "email",
    "split_part(email, '@', 1) AS email_user",
    "phone",
    "street_key",
    "house_number",
    "postcode",
)
_PREDICT_BLOCKS = (
    ("email",),
    ("phone",),
    ("first_name_canon", "birth_date"),
    ("last_name_key", "birth_date"),
    ("postcode", "last_name_key"),
    ("postcode", "first_name_canon"),
)
_TRAINING_BLOCKS = (("email",), ("first_name_canon", "birth_date"))


def comparison_specs() -> list[tuple[str, Callable[[], list[Any]]]]:
    """``(name, make_levels)`` per comparison; levels run from the null level to 'else'."""
    import splink.comparison_level_library as cll

    def name(key: str, canon: str | None) -> Callable[[], list[Any]]:
        def levels() -> list[Any]:
            out: list[Any] = [cll.NullLevel(key)]
            out.append(
                cll.ExactMatchLevel(canon).configure(label_for_charts="same (nicknames folded)")
                if canon else cll.ExactMatchLevel(key).configure(label_for_charts="same")
            )
            return [*out, cll.JaroWinklerLevel(key, 0.92), cll.JaroWinklerLevel(key, 0.8), cll.ElseLevel()]

        return levels

    def birth() -> list[Any]:
        return [cll.NullLevel("birth_date"), cll.ExactMatchLevel("birth_date"),
                cll.DamerauLevenshteinLevel("birth_date", 1).configure(label_for_charts="one typo"),
                cll.ElseLevel()]

    def address() -> list[Any]:
        same = cll.ExactMatchLevel
        return [
            cll.NullLevel("postcode"),
            cll.And(same("street_key"), same("house_number"), same("postcode")).configure(
                label_for_charts="same street, number and postcode"),
            cll.And(same("street_key"), same("postcode")).configure(label_for_charts="same street"),
            same("postcode").configure(label_for_charts="same postcode"),
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
    ]


def blocking_rules() -> list[Any]:
    from splink import block_on

    return [block_on(*cols) for cols in _PREDICT_BLOCKS]


def training_rules() -> list[Any]:
    from splink import block_on

    return [block_on(*cols) for cols in _TRAINING_BLOCKS]


def fallback_training_rule() -> Any:
    """EM blocking for data where a training rule finds no pairs (e.g. no e-mails at all)."""
    from splink import block_on

    return block_on("postcode", "last_name_key")


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


def weights_look_right(parameters: dict[str, Any]) -> list[str]:
    """Sanity checks on learned weights; each broken one is named (empty list: all fine).

    Agreement on the best level must count for a match and the 'else' level against it; an m
    or u that EM could not estimate (no pairs in that level) is a problem too.
    """
    problems = []
    for name, levels in parameters["comparisons"].items():
        if not any(lv.get("seen", True) for lv in levels):
            continue  # a field the data never fills: every weight is 0, nothing to check
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


def prior_from_pairs_per_record(pairs_per_record: float, n_records: int) -> float:
    """λ for ``n`` records when each record has ``pairs_per_record`` true partners on average."""
    if n_records < 2:
        return 0.5
    return min(0.5, 2 * pairs_per_record / (n_records - 1))
