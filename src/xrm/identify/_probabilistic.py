"""Probabilistic links in the identity graph: constrained clustering of scored record pairs.

Runs after the deterministic components are final (glue first: a fuzzy link never overrides a
rule). Pairs at or above ``link_probability`` and pairs a person accepted are joined in order
(accepted first, then by match weight, highest first) through a union-find over components
that refuses a join when it would break

1. an override from an unmerge, or a pair a person rejected in the review queue,
2. a cannot-link rule between any record of one side and any of the other (first names that
   differ, birth dates that differ): households are not merged. A conflict is outvoted when
   another record of either side vouches for the odd one (same account up to a typo, or the
   same birth date and first name): that side took it in through glue or earlier evidence
   (FEBRL's replaced birth dates),
3. with ``linkage.respect_limits``, a limit per identifier type (off by default: one person
   holds a web-shop user id and a loyalty-card user id, one per source system).

Grey-zone pairs whose records end in different profiles go to the review queue. Every
decision is written back to ``linkage_pairs`` with its reason, and joins become links of the
graph (``identity_links``) carrying their match weight and per-field weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from xrm.identify._components import Override
from xrm.identify._conflicts import RecordKey, conflict, vouches
from xrm.identify._rules import RECORD_TYPE, IdentityRules

__all__ = ["LINK_KIND", "link_reason", "merge_probabilistic"]

LINK_KIND = "probabilistic"


def link_reason(weight: float, probability: float, weights: dict[str, float]) -> str:
    """'probabilistic: match weight 21.4 (p 1.0000): first_name +6.1, ...' for logs and explain."""
    parts = ", ".join(f"{k} {v:+.1f}" for k, v in weights.items() if v is not None)
    return f"{LINK_KIND}: match weight {weight:.1f} (p {probability:.4f}): {parts}"


class _Clusters:
    """Union-find over component labels with what the refusal checks need per root."""

    def __init__(self, counts: dict[int, dict[int, int]], tags: dict[int, set[tuple[int, int]]],
                 records: dict[int, list[int]], limits: dict[int, tuple[str, int]]) -> None:
        self.parent: dict[int, int] = {}
        self.counts, self.tags, self.records, self.limits = counts, tags, records, limits
        self.rejected: dict[int, set[int]] = {}  # root -> record nodes it must not join

    def find(self, x: int) -> int:
        r = x
        while self.parent.get(r, r) != r:
            r = self.parent[r]
        while self.parent.get(x, x) != r:
            self.parent[x], x = r, self.parent[x]
        return r

    def refusal(self, ra: int, rb: int, reasons: dict[int, str], label_of: dict[int, int]) -> str | None:
        ca, cb = self.counts.get(ra, {}), self.counts.get(rb, {})
        for t, (name, limit) in self.limits.items():
            if ca.get(t, 0) + cb.get(t, 0) > limit:
                return f"refused: {name} limit {limit} per profile would be broken"
        ta, tb = self.tags.get(ra, set()), self.tags.get(rb, set())
        for oid, side in ta:
            if (oid, 1 - side) in tb:
                return f"refused: override #{oid} keeps these apart ({reasons[oid]})"
        na, nb = len(self.rejected.get(ra, ())), len(self.rejected.get(rb, ()))
        small, other = (ra, rb) if na <= nb else (rb, ra)
        for rec in self.rejected.get(small, ()):
            if self.find(label_of[rec]) == other:
                return "refused: a person rejected a pair of these records in the review queue"
        return None

    def union(self, ra: int, rb: int) -> None:
        big, small = (ra, rb) if len(self.records.get(ra, ())) >= len(self.records.get(rb, ())) else (rb, ra)
        self.parent[small] = big
        for t, c in self.counts.pop(small, {}).items():
            self.counts.setdefault(big, {})[t] = self.counts.get(big, {}).get(t, 0) + c
        self.tags.setdefault(big, set()).update(self.tags.pop(small, set()))
        self.records.setdefault(big, []).extend(self.records.pop(small, []))
        self.rejected.setdefault(big, set()).update(self.rejected.pop(small, set()))


def _cannot_link(side_a: list[int], side_b: list[int], keys: dict[int, RecordKey], rid: dict[int, str],
                 name_threshold: float, birth_edits: int) -> str | None:
    """The first cannot-link between the two sides that no record vouches against, or None.

    Conflict (x, y) is outvoted when another record of x's side vouches for y, or another of
    y's for x (:func:`~xrm.identify._conflicts.vouches`): that side already holds the odd
    record (glued by an identifier, or joined on stronger evidence), so its difference is an
    entry error there.
    """
    for x in side_a:
        for y in side_b:
            c = conflict(keys[x], keys[y], name_threshold, birth_edits)
            if not c:
                continue
            if not (any(x2 != x and vouches(keys[x2], keys[y], name_threshold, birth_edits) for x2 in side_a)
                    or any(y2 != y and vouches(keys[x], keys[y2], name_threshold, birth_edits)
                           for y2 in side_b)):
                return f"refused: cannot-link, {c} ({rid[x]} / {rid[y]})"
    return None


def _rows(cur: Any, sql: str) -> list[tuple[Any, ...]]:
    return cur.execute(sql).fetchall()


def merge_probabilistic(
    cur: Any,
    rules: IdentityRules,
    labels: np.ndarray,
    types: np.ndarray,
    limits: dict[int, tuple[str, int]],
    overrides: Sequence[Override],
    now: Any,
) -> tuple[np.ndarray, list[tuple[int, int, str, str, Any, str]], dict[str, int]]:
    """Join components by probabilistic links; returns new labels, graph links and counts.

    Needs the temp table ``nodes``; reads ``linkage_pairs`` and ``review_queue`` and writes
    their statuses.
    """
    lk = rules.linkage
    pairs = _rows(
        cur,
        f"""
        SELECT p.record_a, p.record_b, na.node, nb.node, p.match_weight, p.match_probability,
               CAST(p.weights AS VARCHAR), q.status
        FROM linkage_pairs p
        JOIN nodes na ON na.id_type = '{RECORD_TYPE}' AND na.id_value = p.record_a
        JOIN nodes nb ON nb.id_type = '{RECORD_TYPE}' AND nb.id_value = p.record_b
        LEFT JOIN review_queue q ON q.record_a = p.record_a AND q.record_b = p.record_b
             AND q.status IN ('accepted', 'rejected')
        """,
    )
    decided = _rows(
        cur,
        f"""
        SELECT q.record_a, q.record_b, na.node, nb.node, q.status, q.decided_by, q.reason
        FROM review_queue q
        JOIN nodes na ON na.id_type = '{RECORD_TYPE}' AND na.id_value = q.record_a
        JOIN nodes nb ON nb.id_type = '{RECORD_TYPE}' AND nb.id_value = q.record_b
        WHERE q.status IN ('accepted', 'rejected')
        """,
    )
    counts = {"probabilistic_links": 0, "probabilistic_refused": 0, "review_pending": 0, "accepted": 0}
    if not pairs and not decided:
        _write_review(cur, [], now)
        return labels, [], counts

    # Per-label facts for the components that candidate pairs touch.
    involved = np.unique(labels[np.array([p[2] for p in pairs] + [p[3] for p in pairs]
                                         + [d[2] for d in decided] + [d[3] for d in decided],
                                         dtype=np.int64)])
    k = int(labels.max()) + 1 if len(labels) else 0
    in_involved = np.zeros(k, dtype=bool)
    in_involved[involved] = True
    lim_counts: dict[int, dict[int, int]] = {}
    for code in limits if lk.respect_limits else ():
        per = np.bincount(labels[types == code], minlength=k)
        for lab in np.nonzero(per * in_involved)[0].tolist():
            lim_counts.setdefault(lab, {})[code] = int(per[lab])
    tags: dict[int, set[tuple[int, int]]] = {}
    for o in overrides:
        for side, members in ((0, o.side_a), (1, o.side_b)):
            for n in members:
                tags.setdefault(int(labels[n]), set()).add((o.override_id, side))
    rec_rows = _rows(
        cur,
        f"""
        SELECT n.node, n.id_value, r.first_name_key, r.first_name_canon, strftime(r.birth_date, '%Y-%m-%d'),
               r.account_id
        FROM nodes n JOIN normalized_records r ON r.record_id = n.id_value
        WHERE n.id_type = '{RECORD_TYPE}'
        """,
    )
    keys: dict[int, RecordKey] = {}
    records: dict[int, list[int]] = {}
    label_of: dict[int, int] = {}
    rid: dict[int, str] = {}
    for node, record_id, fk, fc, bd, acc in rec_rows:
        lab = int(labels[node])
        if in_involved[lab]:
            keys[node] = (fk, fc, bd, acc)
            rid[node] = record_id
            records.setdefault(lab, []).append(node)
            label_of[node] = lab
    uf = _Clusters(lim_counts, tags, records, limits if lk.respect_limits else {})
    reasons = {o.override_id: o.reason for o in overrides}
    for _, _, na, nb, status, _, _ in decided:
        if status == "rejected":
            uf.rejected.setdefault(int(labels[na]), set()).add(int(nb))
            uf.rejected.setdefault(int(labels[nb]), set()).add(int(na))

    status_rows: list[tuple[str, str, str, str | None]] = []
    links: list[tuple[int, int, str, str, Any, str]] = []

    def join(ra_node: int, rb_node: int, check_conflicts: bool, dry_run: bool = False) -> str | None:
        ra, rb = uf.find(int(labels[ra_node])), uf.find(int(labels[rb_node]))
        if ra == rb:
            return None
        why = uf.refusal(ra, rb, reasons, label_of)
        if why is None and check_conflicts:
            why = _cannot_link(uf.records.get(ra, []), uf.records.get(rb, []), keys, rid,
                               lk.first_name_conflict_below, lk.birth_date_conflict_edits)
        if why is None and not dry_run:
            uf.union(ra, rb)
        return why

    # 1. accepted by a person (no cannot-link check: the person saw the records)
    for a, b, na, nb, status, by, why_text in sorted(decided):
        if status != "accepted":
            continue
        why = join(na, nb, check_conflicts=False)
        if why is None:
            counts["accepted"] += 1
            text = f"{LINK_KIND}: accepted in review by {by or 'someone'}: {why_text or 'no reason given'}"
            links.append((int(na), int(nb), "linked", f"linkage:{a}|{b}", now, text))
    # 2. scored pairs above the link threshold, strongest first
    strong = sorted((p for p in pairs if p[5] >= lk.link_probability and p[7] is None),
                    key=lambda p: (-p[4], p[0], p[1]))
    for a, b, na, nb, w, prob, weights, _ in strong:
        why = join(na, nb, check_conflicts=True)
        text = link_reason(w, prob, json.loads(weights))
        if why is None:
            counts["probabilistic_links"] += 1
            status_rows.append((a, b, "linked", text))
            links.append((int(na), int(nb), "linked", f"linkage:{a}|{b}", now, text))
        else:
            counts["probabilistic_refused"] += 1
            status_rows.append((a, b, "refused", why))
            links.append((int(na), int(nb), "dropped", f"linkage:{a}|{b}", now, f"{why} ({text})"))
    # 3. the grey zone: review unless already one profile
    review: list[tuple[str, str, float, float, str]] = []
    for a, b, na, nb, w, prob, weights, decision in pairs:
        if decision is not None:
            status_rows.append((a, b, "decided", f"{decision} in review"))
        elif prob < lk.link_probability:
            if uf.find(int(labels[na])) == uf.find(int(labels[nb])):
                status_rows.append((a, b, "same", "already one profile"))
            elif why := join(na, nb, check_conflicts=True, dry_run=True):
                status_rows.append((a, b, "refused", why))  # a household, not worth a review
            else:
                status_rows.append((a, b, "review", "grey zone: in the review queue"))
                review.append((a, b, w, prob, weights))
    counts["review_pending"] = len(review)
    _write_status(cur, status_rows)
    _write_review(cur, review, now)

    root = np.arange(k, dtype=np.int64)
    for lab in list(uf.parent):
        root[lab] = uf.find(lab)
    return root[labels], links, counts


def _write_status(cur: Any, rows: list[tuple[str, str, str, str | None]]) -> None:
    import pyarrow as pa

    if not rows:
        return
    cur.register("status_arrow", pa.table({
        "record_a": [r[0] for r in rows], "record_b": [r[1] for r in rows],
        "status": [r[2] for r in rows], "reason": pa.array([r[3] for r in rows], pa.string()),
    }))
    cur.execute(
        "UPDATE linkage_pairs p SET status = s.status, reason = s.reason FROM status_arrow s "
        "WHERE p.record_a = s.record_a AND p.record_b = s.record_b"
    )
    cur.unregister("status_arrow")


def _write_review(cur: Any, rows: list[tuple[str, str, float, float, str]], now: Any) -> None:
    """Pending items become this run's grey zone; decided items are kept as they are."""
    import pyarrow as pa

    cur.register("review_arrow", pa.table({
        "record_a": pa.array([r[0] for r in rows], pa.string()),
        "record_b": pa.array([r[1] for r in rows], pa.string()),
        "match_weight": pa.array([r[2] for r in rows], pa.float64()),
        "match_probability": pa.array([r[3] for r in rows], pa.float64()),
        "weights": pa.array([r[4] for r in rows], pa.string()),
    }))
    cur.execute(
        "DELETE FROM review_queue q WHERE status = 'pending' AND NOT EXISTS (SELECT 1 FROM review_arrow r "
        "WHERE r.record_a = q.record_a AND r.record_b = q.record_b)"
    )
    cur.execute(
        """
        INSERT INTO review_queue (record_a, record_b, match_weight, match_probability, weights, status,
                                  queued_at)
        SELECT record_a, record_b, match_weight, match_probability, weights, 'pending', ? FROM review_arrow
        ON CONFLICT (record_a, record_b) DO UPDATE SET match_weight = excluded.match_weight,
            match_probability = excluded.match_probability, weights = excluded.weights
        """,
        [now],
    )
    cur.unregister("review_arrow")
