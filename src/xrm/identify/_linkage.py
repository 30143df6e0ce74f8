"""Probabilistic record linkage with Splink 5 over ``normalized_records`` -> ``linkage_pairs``.

Splink runs on a cursor of the store's own DuckDB instance whose default database is an
attached in-memory one (it creates many intermediate tables; the store file stays clean and its
transactions untouched), under the store's one ``memory_limit``. Records come in and scored
pairs go back by SQL, not through Python. Which pairs become links is decided later, in the graph
(:mod:`xrm.identify._probabilistic`), where deterministic rules, overrides and review decisions
are known.

    >>> link_records(store)  # doctest: +SKIP
    {'records': 4046, 'pairs': 3655, 'model': 'trained', ...}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from xrm.identify._linkage_model import (
    INPUT_COLUMNS,
    PRIOR_RECALL,
    PRIOR_RULES,
    bound_weights,
    correct_u_for_matches,
    packaged_parameters,
    parameters_from_splink,
    prior_from_pairs_per_record,
    splink_settings,
    training_rules,
    u_sample_pairs,
    weights_look_right,
)
from xrm.identify._rules import IdentityRules

__all__ = ["link_records", "train_linkage_parameters"]


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink logs each untrainable level as a warning; xrm reports them in its summary."""
    log = logging.getLogger("splink")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def _linkage_db(store: Any, rules: IdentityRules) -> Iterator[tuple[Any, str]]:
    """A cursor for Splink on the store's own DuckDB instance, its default database an attached
    in-memory one holding ``input_records``; yields ``(cursor, that database's name)``.

    One instance means one buffer pool under the store's ``memory_limit`` (spilling to its
    temp directory, encrypted like the store's): a second connection with a limit of its own
    doubled the step's ceiling, and the scored pairs had to cross to the store through Python.
    Splink's intermediate tables stay out of the store file and go with the DETACH.
    ``linkage.memory_limit``, when set, is the instance's limit while the linkage runs (other
    work on the store meanwhile shares it).
    """
    cur = store.con.cursor()
    (catalog,), = cur.execute("SELECT current_database()").fetchall()
    name = f"xrm_linkage_{uuid.uuid4().hex[:12]}"
    limit = store.settings.memory_limit  # as the store was opened (the SQL setting is rounded)
    try:
        if rules.linkage.memory_limit:
            cur.execute(f"SET memory_limit = '{_unquoted(rules.linkage.memory_limit)}'")
        cur.execute(f"ATTACH ':memory:' AS {name}")
        cur.execute(f"USE {name}")
        cur.execute(
            f"CREATE TABLE input_records AS SELECT {', '.join(INPUT_COLUMNS)} "
            f"FROM {_ident(catalog)}.main.normalized_records ORDER BY record_id"
        )
        yield cur, name
    finally:
        cur.execute(f"USE {_ident(catalog)}")
        cur.execute(f"DETACH DATABASE IF EXISTS {name}")
        if rules.linkage.memory_limit:
            cur.execute(f"SET memory_limit = '{_unquoted(limit)}'")
        cur.close()


def _unquoted(value: str) -> str:
    return value.replace("'", "")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _train(df: Any, rules: IdentityRules, n: int) -> tuple[Any, dict[str, Any], list[str]]:
    """Train λ, u and m on the data; returns the linker, its parameters and their problems."""
    from splink import Linker, block_on

    lk = rules.linkage
    linker = Linker(df, splink_settings(), log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in PRIOR_RULES], recall=PRIOR_RECALL
    )
    # The prior from deterministic rules is kept: Splink 5 overwrites λ with an EM session's
    # in-block estimate (even one that failed), which is the share of matches inside a block.
    prior = linker.misc.save_model_to_json()["probability_two_random_records_match"]
    u_pairs = u_sample_pairs(n, lk.u_max_pairs)  # grows with records, not pairs (see there)
    # One chunk per comparison: Splink 5's default (a probe, then up to 10 chunks until each level
    # has 100 pairs) reran every comparison's query ~11 times for rare levels (swapped names).
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=lk.seed, num_chunks=1)
    from splink.internals.exceptions import EMTrainingException

    for rule in training_rules():
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True, max_pairs=lk.em_max_pairs
            )
        except EMTrainingException:  # no pairs in this block (no e-mails in the data): next rule
            continue
    model = linker.misc.save_model_to_json()
    model["probability_two_random_records_match"] = prior
    params = bound_weights(correct_u_for_matches(parameters_from_splink(model)))
    lam = params["probability_two_random_records_match"]
    params["pairs_per_record"] = lam * (n - 1) / 2
    # Predict with exactly the parameters that are stored (unseen levels filled in).
    return Linker(df, splink_settings(params, lam), log_level=None), params, weights_look_right(params)


def link_records(
    store: Any, rules: IdentityRules | None = None, *, train: bool | None = None
) -> dict[str, Any]:
    """Score record pairs with Splink; rewrites ``linkage_pairs`` and logs the model.

    ``train`` None: train on the data from ``linkage.min_train_records`` records up, else use
    the packaged parameters.
    """
    with _quiet_splink():
        return _link_records(store, rules, train)


def _link_records(store: Any, rules: IdentityRules | None, train: bool | None) -> dict[str, Any]:
    from splink import DuckDBAPI, Linker

    rules = rules or IdentityRules.for_settings(store.settings)
    lk = rules.linkage
    start = time.perf_counter()
    with _linkage_db(store, rules) as (con, db):
        (n,), = con.execute("SELECT count(*) FROM input_records").fetchall()
        df = DuckDBAPI(con).register("input_records")
        problems: list[str] = []
        linker = None
        if train if train is not None else n >= lk.min_train_records:
            linker, params, problems = _train(df, rules, n)
            source = "trained"
            if problems:  # implausible weights: the packaged ones are safer than a broken model
                linker = None
        if linker is None:
            params = packaged_parameters()
            source = "packaged (trained weights implausible)" if problems else "packaged"
            prior = prior_from_pairs_per_record(params["pairs_per_record"], n)
            linker = Linker(df, splink_settings(params, prior), log_level=None)
        t_train = time.perf_counter() - start
        predictions = linker.inference.predict(
            threshold_match_probability=lk.review_probability, warning_mode="never"
        )
        prior_used = linker.misc.save_model_to_json()["probability_two_random_records_match"]
        weights = ", ".join(f"'{c}': round(mw_{c}, 3)" for c in params["comparisons"])
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # Scored pairs go from Splink's table to the store in SQL, never through Python: Splink's
        # output has ~40 columns per pair (gammas, Bayes factors, term frequencies).
        scored = f"{db}.main.{_ident(predictions.physical_name)}"
        with store.transaction() as cur:
            (model_id,), = cur.execute("SELECT coalesce(max(model_id), 0) + 1 FROM linkage_models").fetchall()
            cur.execute("DELETE FROM linkage_pairs")
            cur.execute(
                f"""
                INSERT INTO linkage_pairs
                SELECT least(unique_id_l, unique_id_r), greatest(unique_id_l, unique_id_r),
                       match_weight, match_probability, to_json({{{weights}}}), 'scored', NULL, {model_id}
                FROM {scored} WHERE unique_id_l <> unique_id_r
                """
            )
            (n_pairs,), = cur.execute("SELECT count(*) FROM linkage_pairs").fetchall()
            t_predict = time.perf_counter() - start - t_train
            summary = {
                "records": n,
                "pairs": int(n_pairs),
                "model": source,
                "weight_problems": problems,
                "probability_two_random_records_match": prior_used,
                "train_seconds": round(t_train, 3),
                "predict_seconds": round(t_predict, 3),
            }
            cur.execute(
                "INSERT INTO linkage_models VALUES (?, ?, ?, ?, ?, ?)",
                [model_id, now, n, source, json.dumps(params), json.dumps(summary)],
            )
    summary["model_id"] = int(model_id)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    return summary


def train_linkage_parameters(store: Any, rules: IdentityRules | None = None) -> dict[str, Any]:
    """Train parameters on a store's normalised records and return them (the packaged file's
    format); used to make ``linkage_parameters.json`` from the sample business."""
    from splink import DuckDBAPI

    rules = rules or IdentityRules.for_settings(store.settings)
    with _linkage_db(store, rules) as (con, _), _quiet_splink():
        (n,), = con.execute("SELECT count(*) FROM input_records").fetchall()
        _, params, problems = _train(DuckDBAPI(con).register("input_records"), rules, n)
    if problems:
        from xrm.exceptions import ModelError

        raise ModelError(f"training gave implausible weights: {'; '.join(problems)}")
    return params
