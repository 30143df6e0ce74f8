"""The event identity graph and its connected components as Ibis expressions (DuckDB and Spark alike).

The batch resolver (``_resolve``) takes components in SciPy on one machine.  On an engine that is
a cluster the graph cannot be collected, so here the components are found in the engine by
iterative min-label propagation (the "hash-to-min" family: Rastogi et al. 2013, "Finding connected
components in map-reduce in logarithmic rounds", ICDE, §3): every node starts with its own key as
label, then repeatedly takes the smallest label among itself and its neighbours, and jumps to its
label's label.  It stops when no label changes; each round is two joins and an aggregate, and the
number of rounds grows with the logarithm of the graph's diameter, not with its size.

    >>> labels, rounds = identity_components(engine, identity_edges(engine.table("events")))  # doctest: +SKIP

Only the deterministic event graph is built here (user ids, anonymous ids, alias calls); the rules
of the full resolver (identifier limits, overrides, records, linkage, golden records) still run on
DuckDB only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis

from xrm.exceptions import InputError

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["event_profiles", "identity_components", "identity_edges", "identity_nodes"]

_USER, _ANON = "user_id:", "anonymous_id:"


def _node(prefix: str, col: ir.StringValue) -> ir.StringValue:
    return ibis.literal(prefix) + col.cast("string")


def identity_nodes(events: ir.Table) -> ir.Table:
    """Every identifier seen in the events, one row each: ``node`` (``type:value``)."""
    users = events.filter(events.user_id.notnull()).select(node=_node(_USER, events.user_id))
    anons = events.filter(events.anonymous_id.notnull()).select(node=_node(_ANON, events.anonymous_id))
    return users.union(anons).distinct()


def identity_edges(events: ir.Table) -> ir.Table:
    """Undirected identifier links ``(a, b)``, each once with ``a < b``.

    An event links its user id and anonymous id; an ``alias`` call links its previous id to its
    user id (the previous id is a user id when it is seen as one anywhere, else an anonymous id).
    """
    both = events.filter(events.user_id.notnull() & events.anonymous_id.notnull())
    pairs = both.select(a=_node(_USER, both.user_id), b=_node(_ANON, both.anonymous_id))
    if "previous_id" in events.columns:
        seen = events.filter(events.user_id.notnull())
        known_users = seen.select(uid=seen.user_id.cast("string")).distinct()
        al = events.filter(
            (events.type == "alias") & events.previous_id.notnull() & events.user_id.notnull()
        ).select(user_id=events.user_id.cast("string"), prev=events.previous_id.cast("string"))
        al = al.left_join(known_users, al.prev == known_users.uid)
        prev = ibis.ifelse(al.uid.notnull(), _node(_USER, al.prev), _node(_ANON, al.prev))
        pairs = pairs.union(al.select(a=_node(_USER, al.user_id), b=prev))
    pairs = pairs.filter(pairs.a != pairs.b)
    return pairs.select(
        a=ibis.least(pairs.a, pairs.b), b=ibis.greatest(pairs.a, pairs.b)
    ).distinct()


def identity_components(
    engine: Any, edges: ir.Table, nodes: ir.Table | None = None, *, max_rounds: int = 64
) -> tuple[ir.Table, int]:
    """Component label of every node: ``(node, label)`` where ``label`` is the smallest node key of
    its component.  Returns the (cached) table and the number of rounds it took.

    ``engine`` is a :class:`~xrm.store.BatchEngine` (it caches each round); ``nodes`` adds nodes
    without edges.
    """
    both = edges.select(src=edges.a, dst=edges.b).union(edges.select(src=edges.b, dst=edges.a))
    both = engine.cache(both)
    seeds = both.select(node=both.src)
    if nodes is not None:
        seeds = seeds.union(nodes.select("node"))
    seeds = seeds.distinct()
    labels = engine.cache(seeds.mutate(label=seeds.node))
    for rounds in range(1, max_rounds + 1):
        # Smallest label among the node and its neighbours ...
        seen = both.join(labels, both.src == labels.node).select(node=both.dst, label=labels.label)
        seen = seen.union(labels.select("node", "label"))
        step = seen.group_by("node").aggregate(label=seen.label.min())
        # ... then jump to the label's own label (halves the remaining distance each round).
        hop = step.view()
        step = step.left_join(hop, step.label == hop.node).select(
            node=step.node, label=ibis.least(step.label, hop.label.fill_null(step.label))
        )
        new = engine.cache(step)
        changed = new.join(labels, "node").filter(lambda t: t.label != t.label_right).count()
        if int(changed.to_pyarrow().as_py()) == 0:
            engine.release(labels, both)
            return new, rounds
        engine.release(labels)
        labels = new
    raise InputError(
        f"identity components did not settle in {max_rounds} rounds; the identity graph is unusually "
        f"deep (a chain of aliases?). Raise max_rounds or check the alias calls"
    )


def event_profiles(events: ir.Table, labels: ir.Table) -> ir.Table:
    """The events with ``profile_id``: the component label of the event's identifiers."""
    key = ibis.coalesce(_node(_USER, events.user_id), _node(_ANON, events.anonymous_id))
    keyed = events.mutate(_node=key)
    joined = keyed.left_join(labels, keyed._node == labels.node)
    return joined.select(*events.columns, profile_id=joined.label)
