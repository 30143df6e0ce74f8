"""The batch pipeline: the capability steps in method order (identify, differentiate, ...).

Each step is a function of the open store returning a small summary dict.  A step whose
capability is not built yet raises :class:`~xrm.exceptions.NotYetImplemented`; the pipeline
records it as ``not yet built`` and goes on, so ``make demo`` runs as far as xrm is built.

    >>> from xrm.pipeline import run_pipeline
    >>> results = run_pipeline(store)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xrm.exceptions import NotYetImplemented
from xrm.store import Store

__all__ = ["STEPS", "StepResult", "run_pipeline"]


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
