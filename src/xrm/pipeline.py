"""The batch pipeline: the capability steps in method order (identify, differentiate, ...).

Each step is a function of the open store returning a small summary dict.  A step whose
capability is not built yet raises :class:`~xrm.exceptions.NotYetImplemented`; the pipeline
records it as ``not yet built`` and goes on, so ``make demo`` runs as far as xrm is built.

    >>> from xrm.pipeline import run_pipeline
    >>> results = run_pipeline(store)  # doctest: +SKIP

:func:`run_batch` runs the batch steps on the engine the settings name, DuckDB or Apache Spark
(:data:`ENGINE_STEPS`; docs/spark.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xrm.config import Settings
from xrm.exceptions import InputError, NotYetImplemented
from xrm.store import BatchEngine, Store, batch_engine

__all__ = ["ENGINE_STEPS", "STEPS", "StepResult", "run_batch", "run_on_engine", "run_pipeline"]


# After the identities step every capability sees a customer as one resolved profile.
_BY_PROFILE: dict[str, Any] = {"events_table": "customer_events", "customer_key": "profile_id"}


def _suppressions(store: Store) -> dict[str, Any]:
    # Erased people must not come back through a later load: erase them again first.
    from xrm.interact import apply_suppressions

    return apply_suppressions(store)


def _identities(store: Store) -> dict[str, Any]:
    from xrm.identify import resolve_identities

    return resolve_identities(store)


def _value_summaries(store: Store) -> dict[str, Any]:
    from xrm.differentiate import build_purchase_summaries

    return build_purchase_summaries(store, **_BY_PROFILE)


def _value(store: Store) -> dict[str, Any]:
    from xrm.differentiate import build_value

    return build_value(store, **_BY_PROFILE)


def _recommendations(store: Store) -> dict[str, Any]:
    from xrm.customize import build_recommendations

    return build_recommendations(store, **_BY_PROFILE)


def _network(store: Store) -> dict[str, Any]:
    from xrm.network import build_network

    return build_network(store)


STEPS: tuple[tuple[str, Callable[[Store], dict[str, Any]]], ...] = (
    ("suppressions", _suppressions),
    ("identities", _identities),
    ("purchase summaries", _value_summaries),
    ("value and needs", _value),
    ("recommendations", _recommendations),
    ("network", _network),
)


@dataclass
class StepResult:
    step: str
    status: str  # done | not yet built | failed
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    message: str = ""


def run_pipeline(
    store: Store,
    *,
    steps: tuple[str, ...] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Run the steps (all, or those named) in order; a failing step stops the run and raises."""
    results = []
    for name, func in STEPS:
        if steps and name not in steps:
            continue
        start = time.perf_counter()
        try:
            summary = func(store)
            result = StepResult(name, "done", time.perf_counter() - start, summary)
        except NotYetImplemented as exc:
            result = StepResult(name, "not yet built", time.perf_counter() - start, message=str(exc))
        results.append(result)
        if on_step:
            on_step(result)
    return results


# -- the batch pipeline on any engine (DuckDB or Spark) ------------------------------------------
#
# The same step functions run on every engine: relational work is Ibis over ``engine.table()``,
# model fitting runs in NumPy on collected per-customer arrays, and a step whose work is still
# DuckDB SQL asks ``engine.store_for(step)``, which raises NotYetImplemented on Spark.  Each step
# writes its outputs with ``engine.write`` (Parquet under the ``batch_output`` setting).

# After the identity graph every later step sees a customer as one profile (its component).
_BY_COMPONENT: dict[str, Any] = {"events_table": "event_profiles", "customer_key": "profile_id"}


def _e_suppressions(engine: BatchEngine, **options: Any) -> dict[str, Any]:
    # The run's copies of the inputs lose the suppressed people (the input files stay as they are).
    from xrm.interact._suppression_ibis import suppressed_inputs

    changed, summary = suppressed_inputs(engine.table_or_none, cache=engine.cache, release=engine.release,
                                         **options)
    for name, expr in changed.items():
        engine.register(name, expr)
    return summary


def _e_identities(engine: BatchEngine) -> dict[str, Any]:
    # Rules, records, Splink linkage, golden records and stable ids: DuckDB SQL on the store.
    from xrm.identify import resolve_identities

    return resolve_identities(engine.store_for("identities"))


def _e_identity_graph(engine: BatchEngine) -> dict[str, Any]:
    from xrm.identify._components_ibis import (
        event_profiles,
        identity_components,
        identity_edges,
        identity_nodes,
    )

    events = engine.table("events")
    labels, rounds = identity_components(engine, identity_edges(events), identity_nodes(events))
    engine.register("event_profiles", event_profiles(events, labels))
    engine.write("identity_components", labels)
    sizes = labels.group_by("label").aggregate(n=labels.count())
    row = engine.collect(sizes.aggregate(profiles=sizes.count(), nodes=sizes.n.sum(), largest=sizes.n.max()))
    return {"rounds": rounds, **{str(k): int(v) for k, v in row.iloc[0].items()}}


def _e_summaries(engine: BatchEngine) -> dict[str, Any]:
    from xrm.differentiate._on_engine import summaries_on

    expr, dates = summaries_on(engine, **_BY_COMPONENT)
    if expr is None:
        return {"customers": 0, **dates}
    engine.register("purchase_summaries", expr)
    engine.write("purchase_summaries", engine.table("purchase_summaries"))
    t = engine.table("purchase_summaries")
    row = engine.collect(t.aggregate(customers=t.count(), orders=t.n_orders.sum(), spend=t.total_spend.sum()))
    return {"customers": int(row.customers[0]), "orders": int(row.orders[0]), "spend": float(row.spend[0]),
            **dates}


def _e_value(engine: BatchEngine) -> dict[str, Any]:
    from xrm.differentiate._on_engine import needs_on, value_on_summary

    profiles, needs = needs_on(engine, **_BY_COMPONENT)
    engine.write("customer_needs", profiles)
    scores, value = value_on_summary(engine.collect(engine.table("purchase_summaries")))
    engine.write("customer_value", scores)
    return {"needs": needs, "value": value}


def _e_recommendations(engine: BatchEngine) -> dict[str, Any]:
    from xrm.customize._build import rank_recommendations
    from xrm.customize._on_engine import purchase_lines, user_item_matrix

    lines = purchase_lines(
        engine.table(_BY_COMPONENT["events_table"]), engine.table("order_lines"),
        customer_key=_BY_COMPONENT["customer_key"],
    )
    engine.write("user_items", user_item_matrix(lines))
    frame = engine.collect(lines).sort_values(["customer", "ts", "basket", "item"], kind="stable")
    if frame.empty:
        return {"customers": 0, "products": 0, "recommendations": 0}
    recs, cycles, summary = rank_recommendations(frame.reset_index(drop=True))
    engine.write("recommendations", recs)
    engine.write("purchase_cycles", cycles)
    return {**summary, "recommendations": len(recs), "purchase_cycles": len(cycles)}


def _e_relationships(engine: BatchEngine, **options: Any) -> dict[str, Any]:
    # Referrals, households, co-purchases and conversations derived in the engine; the file-loaded
    # relationships of the inputs are kept.  The network step reads the result.
    from xrm.network._derive_ibis import derived_relationships

    rels, info = derived_relationships(engine.table_or_none, **options)
    rels = engine.register("relationships", rels)
    engine.write("relationships", rels)
    counts = engine.collect(rels.group_by(["origin", "rel_type"]).aggregate(n=rels.count()))
    derived = {str(t): int(n) for o, t, n in zip(counts.origin, counts.rel_type, counts.n, strict=True)
               if o == "derived"}
    return {**info, "derived": dict(sorted(derived.items())), "relationships": int(counts.n.sum())}


def _e_network(engine: BatchEngine, **pagerank: Any) -> dict[str, Any]:
    from xrm.network._rank_ibis import party_degrees, party_edges, party_nodes, party_pagerank

    rel = engine.table("relationships")
    nodes, edges = engine.cache(party_nodes(rel)), engine.cache(party_edges(rel))
    ranks, info = party_pagerank(engine, nodes, edges, **pagerank)
    deg = party_degrees(nodes, edges)
    out = deg.join(ranks, "party_id")
    engine.write("network_metrics", out.select("party_id", "degree_in", "degree_out", "pagerank"))
    return info


ENGINE_STEPS: tuple[tuple[str, Callable[..., dict[str, Any]]], ...] = (
    ("suppressions", _e_suppressions),
    ("identities", _e_identities),
    ("identity graph", _e_identity_graph),
    ("purchase summaries", _e_summaries),
    ("value and needs", _e_value),
    ("recommendations", _e_recommendations),
    ("relationships", _e_relationships),
    ("network", _e_network),
)


def run_on_engine(
    engine: BatchEngine,
    *,
    steps: tuple[str, ...] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> list[StepResult]:
    """Run the engine steps (all, or those named) in order on ``engine`` (see :func:`run_batch`).

    A step the engine cannot run yet is recorded as ``not yet built`` with its reason.  ``params``
    passes keywords to a step: ``{"network": {"max_rounds": 20, "tol": 0}}`` (PageRank rounds).
    """
    known = {name for name, _ in ENGINE_STEPS}
    unknown = [s for s in steps or () if s not in known]
    if unknown:
        raise InputError(f"pipeline steps {unknown} are not known; the steps are: {', '.join(known)}")
    results = []
    try:
        for name, func in ENGINE_STEPS:
            if steps and name not in steps:
                continue
            start = time.perf_counter()
            try:
                result = StepResult(name, "done", 0.0, func(engine, **(params or {}).get(name, {})))
            except NotYetImplemented as exc:
                result = StepResult(name, "not yet built", 0.0, message=str(exc))
            result.seconds = time.perf_counter() - start
            results.append(result)
            if on_step:
                on_step(result)
    finally:
        engine.close()  # free the run's cached tables (temp tables; cached DataFrames on Spark)
    return results


def run_batch(
    settings: Settings,
    *,
    store: Store | None = None,
    session: Any = None,
    steps: tuple[str, ...] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> list[StepResult]:
    """The batch pipeline on the engine the settings name (``engine = 'spark'`` with
    ``spark_master``, or a SparkSession handed in; else the DuckDB ``store``).

        >>> run_batch(Settings(engine="spark", batch_source="s3a://b/xrm"), session=spark)  # doctest: +SKIP
    """
    engine = batch_engine(settings, store=store, session=session)
    return run_on_engine(engine, steps=steps, on_step=on_step, params=params)
