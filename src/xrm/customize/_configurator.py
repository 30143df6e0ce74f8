"""Mass customization: a product configured from modules under constraints (planned, issue 6 §6).

    >>> configure(store, "u-17", "cereal-mix")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from xrm.exceptions import NotYetImplemented

__all__ = ["configure"]


def configure(store: Any, customer: str, product: str, **constraints: Any) -> Any:
    """Find the configuration of ``product`` that best fits ``customer`` (OR-Tools CP-SAT)."""
    raise NotYetImplemented(
        "the configurator (modules, options and constraints solved with OR-Tools CP-SAT) is not "
        "built yet (issue 6, part 6); offers, recommendations and next-best actions are"
    )
