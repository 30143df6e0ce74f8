"""Probabilistic record linkage with Splink 5 over ``normalized_records`` -> ``linkage_pairs``.

Splink runs on its own in-memory DuckDB connection with a memory limit (it creates many
intermediate tables; the store file stays clean and its transactions untouched). Records come
in and scored pairs go back as Arrow. Which pairs become links is decided later, in the graph
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
    weights_look_right,
)
from xrm.identify._rules import IdentityRules

__all__ = ["link_records", "train_linkage_parameters"]

def _arrow(relation: Any) -> Any:
    """A pyarrow Table from a DuckDB relation."""
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    return table.read_all() if hasattr(table, "read_all") else table


def _records(store: Any) -> Any:
    cur = store.con.cursor()
    try:
        query = f"SELECT {', '.join(INPUT_COLUMNS)} FROM normalized_records ORDER BY record_id"
        return _arrow(cur.sql(query))
    finally:
        cur.close()


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


def _connection(store: Any, rules: IdentityRules) -> Any:
    import duckdb

    s = store.settings
    config: dict[str, Any] = {"memory_limit": rules.linkage.memory_limit or s.memory_limit}
    if s.threads:
        config["threads"] = s.threads
    config["temp_directory"] = str(s.temp_directory or store.path.with_name(store.path.name + ".tmp"))
    con = duckdb.connect(":memory:", config=config)
    if getattr(store, "encryption_key", None):  # its spill files hold names and addresses: encrypt them too
        from xrm.store._crypto import enable_writing

        enable_writing(con, unsafe=s.store_encryption_unsafe_crypto)
        con.execute("SET temp_file_encryption = true")
    return con


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
    # u from at most a tenth of all pairs: beyond that small data pays for nothing (FEBRL3's
    # 12.5M pairs took 2 minutes at u_max_pairs 1e7 on a loaded 2-core machine).
    u_pairs = min(lk.u_max_pairs, max(1e5, 0.1 * n * (n - 1) / 2))
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=lk.seed)
    from splink.internals.exceptions import EMTrainingException

    for rule in training_rules():
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, max_pairs=lk.em_max_pairs
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
    records = _records(store)
    n = records.num_rows
    con = _connection(store, rules)
    try:
        df = DuckDBAPI(con).register(records)
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
        pairs = _arrow(
            linker.inference.predict(
                threshold_match_probability=lk.review_probability, warning_mode="never"
            ).as_duckdbpyrelation()
        )
        prior_used = linker.misc.save_model_to_json()["probability_two_random_records_match"]
    finally:
        con.close()
    t_predict = time.perf_counter() - start - t_train
    weights = ", ".join(f"'{c}': round(mw_{c}, 3)" for c in params["comparisons"])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with store.transaction() as cur:
        (model_id,), = cur.execute("SELECT coalesce(max(model_id), 0) + 1 FROM linkage_models").fetchall()
        cur.register("pairs_arrow", pairs)
        cur.execute("DELETE FROM linkage_pairs")
        cur.execute(
            f"""
            INSERT INTO linkage_pairs
            SELECT least(unique_id_l, unique_id_r), greatest(unique_id_l, unique_id_r),
                   match_weight, match_probability, to_json({{{weights}}}), 'scored', NULL, {model_id}
            FROM pairs_arrow WHERE unique_id_l <> unique_id_r
            """
        )
        cur.unregister("pairs_arrow")
        summary = {
            "records": n,
            "pairs": int(pairs.num_rows),
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
    records = _records(store)
    con = _connection(store, rules)
    try:
        with _quiet_splink():
            _, params, problems = _train(DuckDBAPI(con).register(records), rules, records.num_rows)
    finally:
        con.close()
    if problems:
        from xrm.exceptions import ModelError

        raise ModelError(f"training gave implausible weights: {'; '.join(problems)}")
    return params
