"""One network analysis: graph from the store -> metrics and values -> ``network_traits``.

>>> from xrm.network import analyse_network
>>> analyse_network(store)["parties"]  # doctest: +SKIP
20412
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from xrm.network._derive import identity_mode
from xrm.network._economics import RelationshipEconomics
from xrm.network._graph import load_graph
from xrm.network._load import insert_arrow
from xrm.network._metrics import network_metrics
from xrm.network._value import attributed_values_sql, own_values_sql
from xrm.store import Store

__all__ = ["analyse_network"]

_METRIC_COLS = (
    "degree_in",
    "degree_out",
    "pagerank",
    "eigenvector",
    "coreness",
    "community",
    "betweenness",
    "reach_1",
    "reach_2",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def analyse_network(
    store: Store,
    *,
    types: Sequence[str] | None = None,
    identity: str = "auto",
    value_table: tuple[str, str, str] | None = None,
    economics: RelationshipEconomics | None = None,
    on_step: Callable[[str, float], None] | None = None,
    **metric_options: Any,
) -> dict[str, Any]:
    """Compute every party's metrics and network value; replaces ``network_traits``; a summary.

    ``value_table`` = (table, id column, value column) names each party's own value (e.g. a
    lifetime-value table); without it own value is the total spend of ``Order Completed`` events.
    ``metric_options`` go to :func:`network_metrics` (reach_steps is 1 or 2 here).
    """
    econ = economics or RelationshipEconomics.load()
    mode = identity_mode(store, identity)
    run_id = f"net-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    store.sql("INSERT INTO network_runs (run_id, started_at) VALUES (?, ?)", [run_id, _now()])
    seconds: dict[str, float] = {}

    def step(name: str, start: float) -> None:
        seconds[name] = round(time.perf_counter() - start, 3)
        if on_step:
            on_step(name, seconds[name])

    t = time.perf_counter()
    pg = load_graph(store, types)
    step("graph", t)
    t = time.perf_counter()
    metric_options.setdefault("reach_steps", 2)
    metric_options["reach_steps"] = max(1, min(2, int(metric_options["reach_steps"])))
    m = network_metrics(pg, **metric_options)
    step("metrics", t)
    t = time.perf_counter()
    cols = ("party_id", *_METRIC_COLS, "run_id")
    rows = list(
        zip(pg.names, *(m.get(c, [None] * pg.size) for c in _METRIC_COLS), [run_id] * pg.size, strict=True)
    )
    with store.transaction() as tx:
        tx.execute("DELETE FROM network_traits")
    if rows:
        insert_arrow(
            store, "network_traits", cols, [tuple(_plain(v) for v in r) for r in rows], replace=False
        )
    own = own_values_sql(store, mode, value_table)
    with store.transaction() as tx:
        # Parties with no relationship still have an own value (reach 0, no community).
        tx.execute(
            f"""
            INSERT INTO network_traits (party_id, degree_in, degree_out, reach_1, reach_2, run_id)
            SELECT p.party_id, 0, 0, 0, 0, ?
            FROM (SELECT party_id FROM parties UNION SELECT party_id FROM ({own})) p
            WHERE p.party_id NOT IN (SELECT party_id FROM network_traits)
        """,
            [run_id],
        )
        tx.execute(f"""
            UPDATE network_traits SET own_value = coalesce(o.value, 0)
            FROM (SELECT t.party_id, o.value FROM network_traits t LEFT JOIN ({own}) o USING (party_id)) o
            WHERE o.party_id = network_traits.party_id
        """)
        tx.execute(f"""
            UPDATE network_traits SET referred_value = coalesce(a.referred, 0),
                                      influenced_value = coalesce(a.influenced, 0)
            FROM (SELECT t.party_id,
                         sum(CASE WHEN x.rel_type = 'referred' THEN x.through END) AS referred,
                         sum(CASE WHEN x.rel_type <> 'referred' THEN x.through END) AS influenced
                  FROM network_traits t
                  LEFT JOIN ({attributed_values_sql(own, econ)}) x ON x.credited = t.party_id
                  GROUP BY t.party_id) a
            WHERE a.party_id = network_traits.party_id
        """)
        tx.execute("UPDATE network_traits SET network_value = own_value + referred_value + influenced_value")
    step("values", t)
    summary = _summary(store, pg.size, pg.undirected.ecount(), mode, seconds)
    store.sql(
        "UPDATE network_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
        [_now(), json.dumps(summary), run_id],
    )
    return {"run_id": run_id, **summary}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _summary(store: Store, vertices: int, ties: int, mode: str, seconds: dict[str, float]) -> dict[str, Any]:
    by_type = dict(store.sql("SELECT rel_type, count(*) FROM relationships GROUP BY 1 ORDER BY 1").fetchall())
    row = store.sql("""
        SELECT count(*), count(DISTINCT community), coalesce(sum(own_value), 0),
               coalesce(sum(referred_value + influenced_value), 0) FROM network_traits
    """).fetchall()[0]
    top = store.sql("""
        SELECT party_id, round(pagerank, 6), community FROM network_traits
        WHERE pagerank IS NOT NULL ORDER BY pagerank DESC, party_id LIMIT 5
    """).fetchall()
    return {
        "identity": mode,
        "parties": int(row[0]),
        "connected_parties": vertices,
        "ties": ties,
        "relationships": {k: int(v) for k, v in by_type.items()},
        "communities": int(row[1]),
        "own_value": round(float(row[2]), 2),
        "value_through_network": round(float(row[3]), 2),
        "top_pagerank": [{"party_id": p, "pagerank": float(r), "community": c} for p, r, c in top],
        "seconds": seconds,
    }
