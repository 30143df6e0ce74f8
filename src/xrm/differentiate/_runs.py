"""Reading the scoring runs back: tier migration between two runs, and the value report.

    >>> tier_migration(store)["moves"]  # doctest: +SKIP
    [{'from': 'MVC', 'to': 'normal', 'customers': 12}, ...]
"""

from __future__ import annotations

import json
from typing import Any

from xrm.differentiate._tiers import TIERS
from xrm.exceptions import ModelError
from xrm.store import Store

__all__ = ["tier_migration", "value_report"]

_NEW, _GONE = "(new)", "(gone)"


def _runs(store: Store) -> list[str]:
    rows = store.sql("SELECT run_id FROM value_runs ORDER BY scored_at DESC, run_id DESC").fetchall()
    return [str(r[0]) for r in rows]


def tier_migration(store: Store, from_run: str | None = None, to_run: str | None = None) -> dict[str, Any]:
    """How many customers moved from each tier to each tier between two runs (default: the last two).

    Customers first scored in ``to_run`` come from ``(new)``; those no longer scored go to ``(gone)``.
    """
    runs = _runs(store)
    kept = {str(r[0]) for r in store.sql("SELECT DISTINCT run_id FROM customer_value_history").fetchall()}
    if to_run is None or from_run is None:
        if len(runs) < 2:
            raise ModelError(
                f"tier migration needs two scoring runs; the store has {len(runs)}. "
                f"Score again later (xrm value score) to compare"
            )
        to_run = to_run or runs[0]
        from_run = from_run or runs[runs.index(to_run) + 1 if to_run in runs[:-1] else 1]
    missing = [r for r in (from_run, to_run) if r not in kept]
    if missing:
        raise ModelError(
            f"run(s) {', '.join(missing)} have no tier history (kept: the last runs: "
            f"{', '.join(runs[:5]) or 'none'}); pick runs from `xrm value tiers --json`"
        )
    rows = store.sql(
        f"""
        SELECT coalesce(a.tier, '{_NEW}') AS src, coalesce(b.tier, '{_GONE}') AS dst, count(*) AS n
        FROM (SELECT customer_id, tier FROM customer_value_history WHERE run_id = ?) a
        FULL OUTER JOIN (SELECT customer_id, tier FROM customer_value_history WHERE run_id = ?) b
        USING (customer_id)
        GROUP BY 1, 2
        """,
        [from_run, to_run],
    ).fetchall()
    order = {t: i for i, t in enumerate((_NEW, *TIERS, _GONE))}
    found: list[dict[str, Any]] = [{"from": str(s), "to": str(d), "customers": int(c)} for s, d, c in rows]
    moves = sorted(
        found,
        key=lambda m: (order.get(m["from"], 99), order.get(m["to"], 99)),
    )
    stayed = sum(m["customers"] for m in moves if m["from"] == m["to"])
    both = sum(m["customers"] for m in moves if m["from"] != _NEW and m["to"] != _GONE)
    return {
        "from_run": from_run,
        "to_run": to_run,
        "moves": moves,
        "stayed": stayed,
        "moved": both - stayed,
        "stability": stayed / both if both else 1.0,
    }


def value_report(store: Store, *, top: int = 10) -> dict[str, Any]:
    """The latest run's summary, its top customers by CLV, and the needs segments with value shares."""
    runs = store.sql(
        "SELECT run_id, summary FROM value_runs ORDER BY scored_at DESC, run_id DESC LIMIT 1"
    ).fetchall()
    if not runs:
        raise ModelError("no value scoring run yet; run `xrm value score` (or `xrm pipeline`) first")
    summary = json.loads(runs[0][1])
    cols = ["customer_id", "tier", "clv", "p_alive", "expected_purchases", "historic_spend",
            "share_of_wallet"]
    top_rows = store.sql(
        f"SELECT {', '.join(cols)} FROM customer_value ORDER BY clv DESC, customer_id LIMIT ?", [top]
    ).fetchall()
    from xrm.differentiate._needs import segment_report

    return {
        "run": summary,
        "top_customers": [dict(zip(cols, r, strict=True)) for r in top_rows],
        "segments": segment_report(store),
    }
