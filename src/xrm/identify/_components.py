"""Profiles as connected components of the identity graph, with limits and overrides enforced.

Two passes. The fast pass takes the connected components of all links at once with
``scipy.sparse.csgraph.connected_components`` (union of every occurrence's identifiers). A
component that keeps every limit and override is final: no partial merge of it can break a
limit that the whole does not break. Only components that break a rule are solved again by the
rule pass, :func:`solve_with_rules`, which replays their occurrences in time order through a
union-find and refuses, Segment-Unify style, each link that would break a limit or an override;
the lower-priority identifier of the occurrence is the one left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Link", "Override", "connected_labels", "solve_with_rules"]


@dataclass(frozen=True)
class Override:
    """Keep the nodes of ``side_a`` and ``side_b`` in different profiles."""

    override_id: int
    side_a: frozenset[int]
    side_b: frozenset[int]
    reason: str


@dataclass
class Link:
    a: int
    b: int
    status: str  # linked | dropped
    occ: str
    ts: Any
    reason: str


def connected_labels(n_nodes: int, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    """Component label of every node (0..k-1) for the undirected edges ``a[i] - b[i]``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix(
        (np.ones(len(a), dtype=np.int8), (a.astype(np.int64), b.astype(np.int64))),
        shape=(n_nodes, n_nodes),
    ).tocsr()
    k, labels = connected_components(graph, directed=False)
    return int(k), labels


@dataclass
class _Root:
    counts: dict[int, int] = field(default_factory=dict)  # limited type code -> values held
    tags: set[tuple[int, int]] = field(default_factory=set)  # (override id, side 0/1)


def solve_with_rules(
    occurrences: Sequence[tuple[str, Any, Sequence[int]]],
    node_type: dict[int, int],
    limits: dict[int, tuple[str, int]],
    overrides: Sequence[Override],
) -> tuple[dict[int, int], list[Link]]:
    """Replay ``(occ, ts, nodes sorted by priority)`` in the given order; returns node -> root
    and every link made or refused with its reason.

    ``node_type`` maps a node to its type code; ``limits`` maps a limited type code to
    ``(type name, limit)``.
    """
    parent: dict[int, int] = {}
    roots: dict[int, _Root] = {}
    tag_of: dict[int, list[tuple[int, int]]] = {}
    reasons = {o.override_id: o.reason for o in overrides}
    for o in overrides:
        for side, members in ((0, o.side_a), (1, o.side_b)):
            for n in members:
                tag_of.setdefault(n, []).append((o.override_id, side))

    def find(x: int) -> int:
        if x not in parent:
            parent[x] = x
            root = _Root()
            t = node_type.get(x)
            if t in limits:
                root.counts[t] = 1
            root.tags.update(tag_of.get(x, ()))
            roots[x] = root
            return x
        r = x
        while parent[r] != r:
            r = parent[r]
        while parent[x] != r:  # path compression
            parent[x], x = r, parent[x]
        return r

    def refusal(ra: int, rb: int) -> str | None:
        a, b = roots[ra], roots[rb]
        for t, (name, limit) in limits.items():
            ca, cb = a.counts.get(t, 0), b.counts.get(t, 0)
            if ca + cb > limit:
                return (
                    f"refused: {name} limit {limit} per profile would be broken "
                    f"({ca} + {cb} values)"
                )
        for oid, side in a.tags:
            if (oid, 1 - side) in b.tags:
                return f"refused: override #{oid} keeps these apart ({reasons[oid]})"
        return None

    links: list[Link] = []
    for occ, ts, nodes in occurrences:
        anchor = nodes[0]
        find(anchor)
        for n in nodes[1:]:
            ra, rn = find(anchor), find(n)
            if ra == rn:
                links.append(Link(anchor, n, "linked", occ, ts, "seen together"))
                continue
            why = refusal(ra, rn)
            if why:
                links.append(Link(anchor, n, "dropped", occ, ts, why))
                continue
            big, small = (ra, rn) if len(roots[ra].tags) + sum(roots[ra].counts.values()) >= len(
                roots[rn].tags
            ) + sum(roots[rn].counts.values()) else (rn, ra)
            parent[small] = big
            sb, ss = roots[big], roots.pop(small)
            for t, c in ss.counts.items():
                sb.counts[t] = sb.counts.get(t, 0) + c
            sb.tags |= ss.tags
            links.append(Link(anchor, n, "linked", occ, ts, "seen together"))
    return {n: find(n) for n in list(parent)}, links
