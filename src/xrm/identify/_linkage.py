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
    PARAMETERS_FORMAT,
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


def _training_table(con: Any, rules: IdentityRules, n: int) -> tuple[str, int]:
    """The records to train on: all of them, or above ``linkage.train_max_records`` a uniform
    sample of about that many (by a seeded hash of the record id, so runs repeat).

    Uniform sampling keeps what training estimates: u depends on value frequencies, λ is the
    share of matching pairs (a pair is in the sample when both records are, matching or not, so
    the share is unchanged), and EM sees the same mix of matches and non-matches per block, only
    fewer pairs. Only the expected partners per record scale with n (see :func:`_train`).
    """
    cap = rules.linkage.train_max_records
    if n <= cap:
        return "input_records", n
    per_million = max(1, round(cap * 1_000_000 / n))
    con.execute(
        "CREATE OR REPLACE TABLE train_records AS SELECT * FROM input_records "
        f"WHERE hash(unique_id || '#{int(rules.linkage.seed)}') % 1000000 < {per_million}"
    )
    (m,), = con.execute("SELECT count(*) FROM train_records").fetchall()
    return "train_records", int(m)


def _train(
    df: Any, rules: IdentityRules, n: int, n_all: int | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Train λ, u and m on ``df`` (``n`` records, a sample of ``n_all``); returns the parameters
    and their problems."""
    from splink import Linker, block_on

    lk = rules.linkage
    n_all = n_all or n
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
        except ValueError as exc:  # EM drove an m to 0 on too few pairs (Splink 5 refuses it)
            if "below the minimum" not in str(exc):
                raise
            continue
    model = linker.misc.save_model_to_json()
    model["probability_two_random_records_match"] = prior
    params = bound_weights(correct_u_for_matches(parameters_from_splink(model)))
    lam = params["probability_two_random_records_match"]
    params["pairs_per_record"] = lam * (n_all - 1) / 2  # λ is the same in a uniform sample
    params["trained_records"] = n
    return params, weights_look_right(params)


# Fields whose fill rate is the data's shape for reusing a model (with the record count).
_SHAPE_FIELDS = ("first_name_key", "last_name_key", "birth_date", "email", "phone", "street_key",
                 "postcode", "account_id")
_REUSE_RECORDS, _REUSE_FILL = 0.10, 0.02


def _shape(con: Any) -> dict[str, float]:
    """Record count and each field's fill rate: what a trained model depends on."""
    cols = ", ".join(f"count({c}) / greatest(count(*), 1)" for c in _SHAPE_FIELDS)
    row = con.execute(f"SELECT count(*), {cols} FROM input_records").fetchall()[0]
    fills = {c: round(float(v), 4) for c, v in zip(_SHAPE_FIELDS, row[1:], strict=True)}
    return {"records": int(row[0]), **fills}


def _stored_model(store: Any, shape: dict[str, float]) -> tuple[int, dict[str, Any]] | None:
    """The last trained model if it was trained on data of this shape (else None)."""
    rows = store.sql(
        "SELECT model_id, CAST(parameters AS VARCHAR), CAST(summary AS VARCHAR) FROM linkage_models "
        "WHERE source = 'trained' ORDER BY model_id DESC LIMIT 1"
    ).fetchall()
    if not rows:
        return None
    model_id, params_text, summary_text = rows[0]
    old = (json.loads(summary_text) if summary_text else {}).get("shape")
    params = json.loads(params_text)
    if not old or params.get("format") != PARAMETERS_FORMAT:
        return None
    if abs(shape["records"] - old["records"]) > _REUSE_RECORDS * max(old["records"], 1):
        return None
    if any(abs(shape[c] - old.get(c, -1.0)) > _REUSE_FILL for c in _SHAPE_FIELDS):
        return None
    return int(model_id), params


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
        params: dict[str, Any] | None = None
        shape = _shape(con)
        if train if train is not None else n >= lk.min_train_records:
            stored = _stored_model(store, shape) if lk.reuse_model and train is None else None
            if stored is not None:
                source = f"reused (model {stored[0]}, same shape)"
                params = stored[1]
            else:
                table, n_train = _training_table(con, rules, n)
                t_df = df if table == "input_records" else DuckDBAPI(con).register(table)
                params, problems = _train(t_df, rules, n_train, n)
                source = "trained"
                if problems:  # implausible weights: the packaged ones are safer than a broken model
                    params = None
        if params is None:
            params = packaged_parameters()
            source = "packaged (trained weights implausible)" if problems else "packaged"
        # The decision's prior: expected partners per record over min(n, prior_max_records)
        # others, growing again as n / prior_records_ratio in very large files (calibrated on the
        # sample at 100k and 1M records; docs/identify.md, "At scale").
        n_prior = min(n, max(lk.prior_max_records, round(n / lk.prior_records_ratio)))
        prior = prior_from_pairs_per_record(params["pairs_per_record"], n_prior)
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
                "shape": shape,
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
        table, n_train = _training_table(con, rules, n)
        params, problems = _train(DuckDBAPI(con).register(table), rules, n_train, n)
    if problems:
        from xrm.exceptions import ModelError

        raise ModelError(f"training gave implausible weights: {'; '.join(problems)}")
    return params
