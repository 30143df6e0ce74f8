"""Network value per party and Return on Network by relationship type and community.

A party's network value = own value + value attributed to it through relationships.  Each
relationship credits one party (the referrer, the author replied to or mentioned) with
``attribution[type] x own value`` of its counterpart, split evenly when the counterpart credits
several parties through that type (a referred customer has one referrer: the full value).
Return on Network (Gummesson 2004, *Return on relationships*, J. Business & Industrial Marketing
19(2)) = value generated through relationships / cost of keeping them.

    >>> from xrm.network import return_on_network
    >>> return_on_network(store)["total"]["return"]  # doctest: +SKIP
    3.4
"""

from __future__ import annotations

from typing import Any

from xrm.exceptions import InputError
from xrm.network._derive import party_map_cte
from xrm.network._economics import RelationshipEconomics
from xrm.network._types import REL_TYPES, SYMMETRIC_TYPES, credit_flows_to_dst
from xrm.store import Store

__all__ = ["attributed_values_sql", "own_values_sql", "return_on_network"]


def own_values_sql(store: Store, mode: str, value_table: tuple[str, str, str] | None = None) -> str:
    """SQL of (party_id, value): a value table's column, or total spend of ``Order Completed``."""
    if value_table is not None:
        table, id_col, value_col = value_table
        if table not in store.tables():
            raise InputError(
                f"value table {table!r} is not in the store (tables: {', '.join(store.tables())})"
            )
        cols = {
            r[0]
            for r in store.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
            ).fetchall()
        }
        for c in (id_col, value_col):
            if c not in cols:
                raise InputError(
                    f"value table {table!r} has no column {c!r} (columns: {', '.join(sorted(cols))})"
                )
        return (
            f'SELECT CAST("{id_col}" AS VARCHAR) AS party_id, sum("{value_col}")::DOUBLE AS value '
            f'FROM "{table}" GROUP BY 1'
        )
    return f"""
    WITH {party_map_cte(mode)}
    SELECT coalesce(up.party_id, e.user_id) AS party_id, sum(coalesce(e.revenue, 0))::DOUBLE AS value
    FROM events e LEFT JOIN up ON up.user_id = e.user_id
    WHERE e.event = 'Order Completed' AND e.user_id IS NOT NULL GROUP BY 1
    """


def _econ_values(econ: RelationshipEconomics) -> str:
    rows = ", ".join(
        f"('{t}', {float(econ.cost.get(t, 0.0))!r}, {float(econ.attribution.get(t, 0.0))!r}, "
        f"{'true' if credit_flows_to_dst(t) else 'false'}, {'true' if t in SYMMETRIC_TYPES else 'false'})"
        for t in REL_TYPES
    )
    return f"econ(rel_type, cost, attribution, to_dst, sym) AS (VALUES {rows})"


def attributed_values_sql(own_sql: str, econ: RelationshipEconomics) -> str:
    """SQL of (credited, beneficiary, rel_type, through, cost_share): one row per credit direction."""
    return f"""
    WITH own AS ({own_sql}), {_econ_values(econ)},
    dirs AS (
        SELECT CASE WHEN x.to_dst THEN r.dst ELSE r.src END AS credited,
               CASE WHEN x.to_dst THEN r.src ELSE r.dst END AS beneficiary,
               r.rel_type, CASE WHEN x.sym THEN 0.5 ELSE 1.0 END::DOUBLE AS share, x.cost, x.attribution
        FROM relationships r JOIN econ x USING (rel_type)
        UNION ALL
        SELECT r.src, r.dst, r.rel_type, 0.5, x.cost, x.attribution
        FROM relationships r JOIN econ x USING (rel_type) WHERE x.sym),
    fan AS (SELECT beneficiary, rel_type, count(*) AS k FROM dirs GROUP BY 1, 2)
    SELECT d.credited, d.beneficiary, d.rel_type,
           d.attribution * coalesce(o.value, 0) / f.k AS through, (d.share * d.cost)::DOUBLE AS cost_share
    FROM dirs d JOIN fan f USING (beneficiary, rel_type) LEFT JOIN own o ON o.party_id = d.beneficiary
    """


def _ratio(value: float, cost: float) -> float | None:
    return round(value / cost, 4) if cost > 0 else None


def return_on_network(
    store: Store,
    *,
    economics: RelationshipEconomics | None = None,
    top_communities: int = 20,
) -> dict[str, Any]:
    """Value through relationships against their cost, by type and by community (needs an analysis)."""
    econ = economics or RelationshipEconomics.load()
    runs = store.sql("SELECT run_id, summary FROM network_runs ORDER BY started_at DESC LIMIT 1").fetchall()
    if not runs:
        raise InputError("no network analysis in the store yet; run `xrm network analyse` first")
    own = "SELECT party_id, own_value AS value FROM network_traits WHERE own_value IS NOT NULL"
    cur = store.con.cursor()
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _net_attr AS WITH a AS ({attributed_values_sql(own, econ)}) "
            "SELECT a.*, t.community FROM a LEFT JOIN network_traits t ON t.party_id = a.credited"
        )
        by_type = cur.execute(
            "SELECT rel_type, count(*), sum(through) AS value, sum(cost_share) FROM _net_attr "
            "GROUP BY rel_type ORDER BY value DESC, rel_type"
        ).fetchall()
        counts = dict(cur.execute("SELECT rel_type, count(*) FROM relationships GROUP BY 1").fetchall())
        by_comm = cur.execute(f"""
            SELECT community, count(DISTINCT credited) AS parties, sum(through) AS value,
                   sum(cost_share) AS cost
            FROM _net_attr WHERE community IS NOT NULL GROUP BY 1 ORDER BY value DESC, community
            LIMIT {int(top_communities)}
        """).fetchall()
        total = cur.execute(
            "SELECT coalesce(sum(through), 0), coalesce(sum(cost_share), 0) FROM _net_attr"
        ).fetchall()[0]
        cur.execute("DROP TABLE IF EXISTS _net_attr")
    finally:
        cur.close()
    types = [
        {
            "rel_type": t,
            "relationships": int(counts.get(t, 0)),
            "value": round(float(v or 0), 2),
            "cost": round(float(c or 0), 2),
            "net": round(float((v or 0) - (c or 0)), 2),
            "return": _ratio(float(v or 0), float(c or 0)),
        }
        for t, _n, v, c in by_type
    ]
    communities = [
        {
            "community": int(cm),
            "parties": int(p),
            "value": round(float(v or 0), 2),
            "cost": round(float(c or 0), 2),
            "net": round(float((v or 0) - (c or 0)), 2),
            "return": _ratio(float(v or 0), float(c or 0)),
        }
        for cm, p, v, c in by_comm
    ]
    value, cost = float(total[0]), float(total[1])
    return {
        "run_id": runs[0][0],
        "currency": store.settings.currency,
        "total": {
            "value": round(value, 2),
            "cost": round(cost, 2),
            "net": round(value - cost, 2),
            "return": _ratio(value, cost),
        },
        "by_type": types,
        "by_community": communities,
        "economics": {"cost": econ.cost, "attribution": econ.attribution},
    }
