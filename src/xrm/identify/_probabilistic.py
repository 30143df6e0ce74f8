"""Probabilistic links in the identity graph: constrained clustering of scored record pairs.

Runs after the deterministic components are final (glue first: a fuzzy link never overrides a
rule). Pairs at or above ``link_probability`` and pairs a person accepted are joined in order
(accepted first, then by match weight, highest first) through a union-find over components
that refuses a join when it would break

1. an override from an unmerge, or a pair a person rejected in the review queue,
2. a cannot-link rule between any record of one side and any of the other (first names that
   differ, birth dates that differ, genders that differ: the salutation, else the first name's
   gender as the data's salutations give it): households are not merged. A conflict is outvoted when
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

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from xrm.identify._components import Override
from xrm.identify._conflicts import RecordKey, conflict, vouches
from xrm.identify._email_names import LEVEL_TEXT, candidates_sql, pick_email_names, undated_namesakes_sql
from xrm.identify._rules import RECORD_TYPE, IdentityRules

__all__ = ["LINK_KIND", "link_reason", "merge_probabilistic", "write_probabilistic"]

LINK_KIND = "probabilistic"
# The compiled clustering (``_cluster_kernels``) where no limit, override or rejected pair is in
# play; False runs the Python loop always (tests pin both to the same decisions).
COMPILED = True
# Scored pairs whose key pairs the kernel asks for ahead when it stops for answers.
_LOOKAHEAD = 50_000
# A salutation's gender ('Frau', 'Herr', 'f', 'm', ...), else NULL.
_SALUTATION_SQL = (
    "CASE WHEN lower(trim(s.gender)) IN ('f', 'w', 'frau', 'female', 'weiblich', 'mrs', 'ms', 'miss', "
    "'madame', 'mme') THEN 'f' WHEN lower(trim(s.gender)) IN ('m', 'herr', 'male', 'maennlich', "
    "'männlich', 'mr', 'monsieur') THEN 'm' END"
)
# Records with a salutation for a first name before its gender counts (a name's share below).
_GENDER_MIN_RECORDS = 5


def link_reason(weight: float, probability: float, weights: dict[str, float]) -> str:
    """'probabilistic: match weight 21.4 (p 1.0000): first_name +6.1, ...' for logs and explain."""
    parts = ", ".join(f"{k} {v:+.1f}" for k, v in weights.items() if v is not None)
    return f"{LINK_KIND}: match weight {weight:.1f} (p {probability:.4f}): {parts}"


class _Clusters:
    """Union-find over component labels with what the refusal checks need per root."""

    def __init__(self, counts: dict[int, dict[int, int]], tags: dict[int, set[tuple[int, int]]],
                 records: dict[int, list[int]], limits: dict[int, tuple[str, int]],
                 kinds: dict[int, dict[int, int]]) -> None:
        self.parent: dict[int, int] = {}
        self.counts, self.tags, self.records, self.limits = counts, tags, records, limits
        # root -> {record key id: its first record node}, in the order of ``records``: records
        # with the same key (first name, birth date, account) give the same cannot-link answers,
        # so the checks run over distinct keys (a person's records often share them).
        self.kinds = kinds
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
        into = self.kinds.setdefault(big, {})
        for key, node in self.kinds.pop(small, {}).items():
            into.setdefault(key, node)
        self.rejected.setdefault(big, set()).update(self.rejected.pop(small, set()))


class _KeyRules:
    """:func:`conflict` and :func:`vouches` by record key id, cached in plain dicts (an int key
    hashes faster than a tuple of four strings; the clustering asks millions of times at 1M)."""

    def __init__(self, keys: list[RecordKey], name_threshold: float, birth_edits: int) -> None:
        self.keys, self.threshold, self.edits = keys, name_threshold, birth_edits
        self.n = max(len(keys), 1)
        self._conflict: dict[int, str | None] = {}
        self._vouches: dict[int, bool] = {}

    def conflict(self, a: int, b: int) -> str | None:
        i = a * self.n + b
        try:
            return self._conflict[i]
        except KeyError:
            c = self._conflict[i] = conflict(self.keys[a], self.keys[b], self.threshold, self.edits)
            return c

    def vouches(self, a: int, b: int) -> bool:
        i = a * self.n + b
        try:
            return self._vouches[i]
        except KeyError:
            v = self._vouches[i] = vouches(self.keys[a], self.keys[b], self.threshold, self.edits)
            return v


def _cannot_link(side_a: dict[int, int], side_b: dict[int, int], rules: _KeyRules,
                 rid: dict[int, str]) -> str | None:
    """The first cannot-link between the two sides that no record vouches against, or None.

    Sides are ``{record key id: first record node}``. Conflict (x, y) is outvoted when another
    record of x's side vouches for y, or another of y's for x
    (:func:`~xrm.identify._conflicts.vouches`): that side already holds the odd record (glued
    by an identifier, or joined on stronger evidence), so its difference is an entry error
    there. A record with the same key as x never vouches against x's conflict (the rules that
    make the conflict deny the vouching), so distinct keys give the same answer as all records.
    """
    for ka, x in side_a.items():
        for kb, y in side_b.items():
            c = rules.conflict(ka, kb)
            if not c:
                continue
            if not (any(k2 != ka and rules.vouches(k2, kb) for k2 in side_a)
                    or any(k2 != kb and rules.vouches(ka, k2) for k2 in side_b)):
                return f"refused: cannot-link, {c} ({rid[x]} / {rid[y]})"
    return None


def _email_name_reason(a: str, b: str, level: int, user_part: str, year: str) -> str:
    """'email-name: the e-mail of newsletter:7 ('detlef.schneider64') spells the first and last
    name of webshop:3 and begins with its birth year 1964; no other profile matches'."""
    return (f"email-name: the e-mail of {a} ({user_part!r}) spells the {LEVEL_TEXT[level]} of {b} "
            f"and its digits begin with the birth year {year}; no other profile matches")


def _drop_undated_namesakes(cur: Any, picks: list[tuple[int, int, int, str, str]], root: np.ndarray,
                            labels: np.ndarray) -> list[tuple[int, int, int, str, str]]:
    """The picks whose full name no undated namesake profile also holds (see
    :func:`~xrm.identify._email_names.undated_namesakes_sql`); profiles as they stand now
    (``root``: each label's root)."""
    import pyarrow as pa

    cur.register("email_name_roots_arrow", pa.table({
        "node": pa.array(np.arange(len(labels)), pa.int32()), "root": pa.array(root[labels])}))
    cur.register("email_name_picks_arrow", pa.table({
        "na": pa.array([p[0] for p in picks], pa.int32()),
        "root_b": pa.array([int(root[labels[p[1]]]) for p in picks], pa.int64())}))
    cur.execute("CREATE OR REPLACE TEMP TABLE email_name_roots AS SELECT * FROM email_name_roots_arrow")
    cur.execute("CREATE OR REPLACE TEMP TABLE email_name_picks AS SELECT * FROM email_name_picks_arrow")
    cur.unregister("email_name_roots_arrow")
    cur.unregister("email_name_picks_arrow")
    dropped = {int(r[0]) for r in _rows(cur, undated_namesakes_sql(RECORD_TYPE))}
    cur.execute("DROP TABLE IF EXISTS email_name_roots")
    cur.execute("DROP TABLE IF EXISTS email_name_picks")
    return [p for p in picks if p[0] not in dropped]


def _gender_table(cur: Any, share: float) -> None:
    """Temp table ``prob_gender(record_id, gender)``: the salutation's gender, else the first
    name's where the data's own records with a salutation give it (at least ``share`` of at least
    ``_GENDER_MIN_RECORDS``: 'petra' and 'peter', 'stefanie' and 'stefan' of a web shop without
    salutations). Learned from the data like term frequencies: no packaged list of names."""
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE prob_gender AS
        WITH said AS (
            SELECT r.record_id, coalesce(r.first_name_canon, r.first_name_key) AS name, {_SALUTATION_SQL} AS g
            FROM normalized_records r LEFT JOIN records s ON s.record_id = r.record_id
        ), names AS (
            SELECT name, CASE WHEN avg((g = 'f')::DOUBLE) >= {share} THEN 'f'
                              WHEN avg((g = 'm')::DOUBLE) >= {share} THEN 'm' END AS g
            FROM said WHERE g IS NOT NULL AND name IS NOT NULL
            GROUP BY name HAVING count(*) >= {_GENDER_MIN_RECORDS}
        )
        SELECT said.record_id, coalesce(said.g, names.g) AS gender FROM said LEFT JOIN names USING (name)
        """
    )


def _rows(cur: Any, sql: str) -> list[tuple[Any, ...]]:
    return cur.execute(sql).fetchall()


# What became of each scored pair (codes of the Python pass, turned into text in SQL).
_LINKED, _REFUSED, _DECIDED, _SAME, _REVIEW, _HOUSEHOLD = range(6)
# The reason text of a probabilistic link, built in SQL (as :func:`link_reason` does in Python):
# formatting and JSON-parsing 1.1M pairs' weights in Python was a fifth of the clustering's time.
_TEXT_SQL = (
    f"'{LINK_KIND}: match weight ' || printf('%.1f', p.match_weight) || ' (p ' || "
    "printf('%.4f', p.match_probability) || '): ' || array_to_string(list_transform(list_filter("
    "json_keys(p.weights), lambda k: (p.weights ->> k) IS NOT NULL), "
    "lambda k: k || ' ' || printf('%+.1f', CAST(p.weights ->> k AS DOUBLE))), ', ')"
)


def _tally(counts: dict[str, int], outcome: np.ndarray) -> None:
    """The summary's counts of scored pairs by outcome (both clustering paths)."""
    counts["probabilistic_links"] = int((outcome == _LINKED).sum())
    counts["probabilistic_refused"] = int((outcome == _REFUSED).sum())
    counts["review_pending"] = int((outcome == _REVIEW).sum())


def _email_picks(picks: list[tuple[int, int, int, str, str]], linked: Iterable[bool], rid: Any,
                 counts: dict[str, int], accepted_links: list[Any]) -> None:
    """Count each e-mail-name pick as linked or refused and keep a linked one's link with its
    reason; ``linked`` is consumed in pick order (the Python path joins as it goes)."""
    for (na, nb, level, user_part, year), ok in zip(picks, linked, strict=True):
        if ok:
            counts["email_name_links"] += 1
            accepted_links.append((na, nb, f"linkage:{rid[na]}|{rid[nb]}", _email_name_reason(
                rid[na], rid[nb], level, user_part, year)))
        else:
            counts["email_name_refused"] += 1


def merge_probabilistic(
    cur: Any,
    rules: IdentityRules,
    labels: np.ndarray,
    types: np.ndarray,
    limits: dict[int, tuple[str, int]],
    overrides: Sequence[Override],
    now: Any,
) -> tuple[np.ndarray, int, dict[str, int]]:
    """Join components by probabilistic links; returns new labels, the number of graph links
    and counts. The links are left in the temp table ``prob_links(a, b, status, occ, ts,
    reason)``.

    Needs the temp table ``nodes``; reads ``linkage_pairs`` and ``review_queue``; their new
    statuses wait in temp tables for :func:`write_probabilistic` (the clustering runs before the
    run's transaction, which keeps every temp table to its COMMIT). Only node numbers and
    probabilities cross into Python; record ids, weights and reason texts stay in SQL.
    """
    lk = rules.linkage
    _gender_table(cur, lk.gender_conflict_share)
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE prob_pairs AS
        SELECT (row_number() OVER (ORDER BY p.match_weight DESC, p.record_a, p.record_b) - 1)::BIGINT AS i,
               p.record_a, p.record_b, na.node AS na, nb.node AS nb, p.match_weight, p.match_probability,
               p.weights, q.status AS decision
        FROM linkage_pairs p
        JOIN nodes na ON na.id_type = '{RECORD_TYPE}' AND na.id_value = p.record_a
        JOIN nodes nb ON nb.id_type = '{RECORD_TYPE}' AND nb.id_value = p.record_b
        LEFT JOIN review_queue q ON q.record_a = p.record_a AND q.record_b = p.record_b
             AND q.status IN ('accepted', 'rejected')
        """
    )
    cur.execute("CREATE OR REPLACE TEMP TABLE prob_links (a INTEGER, b INTEGER, status VARCHAR, "
                "occ VARCHAR, ts TIMESTAMP, reason VARCHAR)")
    pp = cur.execute(
        "SELECT na, nb, match_probability AS prob, decision IS NOT NULL AS decided FROM prob_pairs ORDER BY i"
    ).fetchnumpy()
    pair_na = np.asarray(pp["na"], dtype=np.int64)
    pair_nb = np.asarray(pp["nb"], dtype=np.int64)
    prob = np.asarray(pp["prob"], dtype=np.float64)
    decided_flag = np.asarray(pp["decided"], dtype=bool)
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
    email_pairs: list[tuple[int, int, int, str, str]] = []
    if lk.email_names:
        cur.execute(candidates_sql(RECORD_TYPE))
        email_pairs = _rows(
            cur, "SELECT na, nb, level, user_part, birth_year FROM email_name_pairs ORDER BY na, nb")
        cur.execute("DROP TABLE IF EXISTS email_name_pairs")
    counts = {"probabilistic_links": 0, "probabilistic_refused": 0, "review_pending": 0, "accepted": 0,
              "email_name_links": 0, "email_name_refused": 0}
    if not len(pair_na) and not decided and not email_pairs:
        for table in ("prob_gender", "prob_pairs"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        _stage_review(cur, from_outcome=False)
        return labels, 0, counts

    rejected_any = any(d[4] == "rejected" for d in decided)
    if COMPILED and not (lk.respect_limits and limits) and not overrides and not rejected_any:
        # No limit, override or rejected pair (a first run, the usual case at scale): the
        # compiled loop; the Python one below checks those too.
        k = int(labels.max()) + 1 if len(labels) else 0
        codes, links, root = _merge_compiled(cur, lk, labels, k, pair_na, pair_nb, prob, decided_flag,
                                             decided, email_pairs, counts)
        n_links = _write_outcomes(cur, codes, "prob_why", links, now)
        cur.execute("DROP TABLE IF EXISTS prob_why")
        return root[labels], n_links, counts

    # Per-label facts for the components that candidate pairs touch.
    involved = np.unique(labels[np.concatenate([pair_na, pair_nb, np.array(
        [d[2] for d in decided] + [d[3] for d in decided] + [e[0] for e in email_pairs]
        + [e[1] for e in email_pairs], dtype=np.int64)])])
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
               r.account_id, g.gender, r.last_name_key IS NOT NULL
        FROM nodes n JOIN normalized_records r ON r.record_id = n.id_value
        LEFT JOIN prob_gender g ON g.record_id = r.record_id
        WHERE n.id_type = '{RECORD_TYPE}' ORDER BY n.node
        """,
    )
    cur.execute("DROP TABLE IF EXISTS prob_gender")
    key_id: dict[RecordKey, int] = {}
    kinds: dict[int, dict[int, int]] = {}
    records: dict[int, list[int]] = {}
    label_of: dict[int, int] = {}
    rid: dict[int, str] = {}
    named: set[int] = set()  # record nodes with a surname
    for node, record_id, fk, fc, bd, acc, gender, has_surname in rec_rows:
        lab = int(labels[node])
        if in_involved[lab]:
            if has_surname:
                named.add(node)
            kid = key_id.setdefault((fk, fc, bd, acc, gender), len(key_id))
            rid[node] = record_id
            records.setdefault(lab, []).append(node)
            kinds.setdefault(lab, {}).setdefault(kid, node)
            label_of[node] = lab
    del rec_rows
    uf = _Clusters(lim_counts, tags, records, limits if lk.respect_limits else {}, kinds)
    key_rules = _KeyRules(list(key_id), lk.first_name_conflict_below, lk.birth_date_conflict_edits)
    del key_id
    reasons = {o.override_id: o.reason for o in overrides}
    for _, _, na, nb, status, _, _ in decided:
        if status == "rejected":
            uf.rejected.setdefault(int(labels[na]), set()).add(int(nb))
            uf.rejected.setdefault(int(labels[nb]), set()).add(int(na))
    # No limit, override or rejected pair anywhere (a first run): nothing for refusal() to check.
    plain = not uf.limits and not tags and not uf.rejected

    def join(ra_node: int, rb_node: int, check_conflicts: bool, dry_run: bool = False) -> str | None:
        ra, rb = uf.find(int(labels[ra_node])), uf.find(int(labels[rb_node]))
        if ra == rb:
            return None
        why = None if plain else uf.refusal(ra, rb, reasons, label_of)
        if why is None and check_conflicts:
            side_a, side_b = uf.kinds.get(ra, {}), uf.kinds.get(rb, {})
            if len(side_a) == 1 and len(side_b) == 1:  # most joins: one key a side, no vouching
                (ka, x), = side_a.items()
                (kb, y), = side_b.items()
                c = key_rules.conflict(ka, kb)
                why = f"refused: cannot-link, {c} ({rid[x]} / {rid[y]})" if c else None
            else:
                why = _cannot_link(side_a, side_b, key_rules, rid)
        if why is None and not dry_run:
            uf.union(ra, rb)
        return why

    # 1. accepted by a person (no cannot-link check: the person saw the records)
    accepted_links: list[tuple[int, int, str, str]] = []
    for a, b, na, nb, status, by, why_text in sorted(decided):
        if status != "accepted":
            continue
        if join(na, nb, check_conflicts=False) is None:
            counts["accepted"] += 1
            text = f"{LINK_KIND}: accepted in review by {by or 'someone'}: {why_text or 'no reason given'}"
            accepted_links.append((int(na), int(nb), f"linkage:{a}|{b}", text))
    # 2. scored pairs above the link threshold, strongest first (prob_pairs is in that order);
    # 3. the grey zone: review unless already one profile or a household (not worth a review)
    outcome = np.full(len(pair_na), _DECIDED, dtype=np.int8)
    refused_why: dict[int, str] = {}
    strong = (prob >= lk.link_probability) & ~decided_flag
    for i in np.nonzero(strong)[0].tolist():
        why = join(int(pair_na[i]), int(pair_nb[i]), check_conflicts=True)
        if why is None:
            outcome[i] = _LINKED
        else:
            outcome[i], refused_why[i] = _REFUSED, why
    for i in np.nonzero(~strong & ~decided_flag)[0].tolist():
        na, nb = int(pair_na[i]), int(pair_nb[i])
        if uf.find(int(labels[na])) == uf.find(int(labels[nb])):
            outcome[i] = _SAME
        elif why := join(na, nb, check_conflicts=True, dry_run=True):
            outcome[i], refused_why[i] = _HOUSEHOLD, why
        else:
            outcome[i] = _REVIEW
    # 2b. e-mail records without a surname, to the one profile their user part names (with the
    # birth year): after the scored pairs, so only records that no evidence placed are left
    picks = pick_email_names(email_pairs, lambda n: uf.find(int(labels[n])),
                             lambda root: any(r in named for r in uf.records.get(root, ())))
    if picks and not lk.email_names_undated_namesakes:
        picks = _drop_undated_namesakes(cur, picks, _roots(uf, k), labels)
    _email_picks(picks, (join(p[0], p[1], check_conflicts=True) is None for p in picks), rid, counts,
                 accepted_links)
    _tally(counts, outcome)
    import pyarrow as pa

    cur.register("why_arrow", pa.table({
        "i": pa.array(np.fromiter(refused_why, dtype=np.int64, count=len(refused_why))),
        "why": pa.array(list(refused_why.values()), pa.string())}))
    n_links = _write_outcomes(cur, outcome, "why_arrow", accepted_links, now)
    cur.unregister("why_arrow")

    return _roots(uf, k)[labels], n_links, counts


def _roots(uf: _Clusters, k: int) -> np.ndarray:
    root = np.arange(k, dtype=np.int64)
    for lab in list(uf.parent):
        root[lab] = uf.find(lab)
    return root


def _merge_compiled(
    cur: Any, lk: Any, labels: np.ndarray, k: int, pair_na: np.ndarray, pair_nb: np.ndarray,
    prob: np.ndarray, decided_flag: np.ndarray, decided: list[tuple[Any, ...]],
    email_pairs: list[tuple[int, int, int, str, str]], counts: dict[str, int],
) -> tuple[np.ndarray, list[tuple[int, int, str, str]], np.ndarray]:
    """The clustering of :func:`merge_probabilistic` without limits, overrides and rejected
    pairs, in compiled code (:mod:`xrm.identify._cluster_kernels`): the same joins in the same
    order, the same refusals and reasons. Returns outcome codes, the accepted and e-mail-name
    links, and each label's root; the refusal reasons are left in the temp table
    ``prob_why(i, why)``, written in SQL (as Python strings they were 0.2 KB a customer)."""
    import pyarrow as pa

    from xrm.identify import _cluster_kernels as ck

    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE prob_keys AS
        SELECT n.node, r.last_name_key IS NOT NULL AS named,
               (dense_rank() OVER (ORDER BY r.first_name_key, r.first_name_canon, r.birth_date,
                                   r.account_id, g.gender) - 1)::BIGINT AS key,
               r.first_name_key AS fk, r.first_name_canon AS fc,
               strftime(r.birth_date, '%Y-%m-%d') AS bd, r.account_id AS acc, g.gender
        FROM nodes n JOIN normalized_records r ON r.record_id = n.id_value
        LEFT JOIN prob_gender g ON g.record_id = r.record_id
        WHERE n.id_type = '{RECORD_TYPE}'
        """
    )
    cur.execute("DROP TABLE IF EXISTS prob_gender")
    rec = cur.execute("SELECT node, named, key FROM prob_keys ORDER BY node").fetchnumpy()
    kt = cur.sql("SELECT any_value(fk) AS fk, any_value(fc) AS fc, any_value(bd) AS bd, "
                 "any_value(acc) AS acc, any_value(gender) AS gender "
                 "FROM prob_keys GROUP BY key ORDER BY key").to_arrow_table()
    cur.execute("DROP TABLE IF EXISTS prob_keys")
    # Python lists: the kernel stops for answers tens of thousands of times, and an Arrow take
    # per stop made the clustering six times slower at 300k customers.
    fks, fcs, bds, accs, gens = (kt.column(c).to_pylist() for c in ("fk", "fc", "bd", "acc", "gender"))
    del kt
    nk = max(len(fks), 1)
    rnode = np.asarray(rec["node"], dtype=np.int64)
    rlab = labels[rnode].astype(np.int64)
    rkey = np.asarray(rec["key"], dtype=np.int64)
    nrec = np.bincount(rlab, minlength=k).astype(np.int64)
    nnamed = np.bincount(rlab, weights=np.asarray(rec["named"], dtype=bool), minlength=k).astype(np.int64)
    del rec
    # Each label's distinct keys with their first record, in node order (as the dicts kept them).
    _, first = np.unique(rlab * nk + rkey, return_index=True)
    first.sort()
    first = first[np.argsort(rlab[first], kind="stable")]
    elab, ekey, enode = rlab[first], rkey[first], rnode[first]
    del rnode, rlab, rkey, first
    enext = np.arange(1, len(elab) + 1, dtype=np.int64)
    if len(elab):
        enext[:-1][elab[1:] != elab[:-1]] = -1
        enext[-1] = -1
    head = np.full(k, -1, dtype=np.int64)
    tail = np.full(k, -1, dtype=np.int64)
    head[elab[::-1]] = np.arange(len(elab) - 1, -1, -1)  # the first entry of each label wins
    tail[elab] = np.arange(len(elab))  # the last one
    parent = np.arange(k, dtype=np.int64)
    table = ck.new_table(4 * len(pair_na))
    req = np.empty((2, 1 << 16), dtype=np.int64)
    state = np.zeros(4, dtype=np.int64)
    # Each key pair is asked once (the table keeps it): the rules without their lru caches.
    conflict_of = getattr(conflict, "__wrapped__", conflict)
    vouches_of = getattr(vouches, "__wrapped__", vouches)
    texts: dict[str, int] = {}
    thr, edits = lk.first_name_conflict_below, lk.birth_date_conflict_edits

    def key(i: int) -> RecordKey:
        return (fks[i], fcs[i], bds[i], accs[i], gens[i])

    def key_pairs(codes: np.ndarray) -> list[tuple[RecordKey, RecordKey]]:
        return [(key(a), key(b)) for a, b in zip((codes // nk).tolist(), (codes % nk).tolist(), strict=True)]

    def run(mode: int, la: np.ndarray, lb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal table
        code = np.zeros(len(la), dtype=np.int8)
        why = np.full((len(la), 3), -1, dtype=np.int64)
        i = 0
        state[3] = 0
        while True:
            state[:2] = 0
            i = ck.run_pairs(mode, la, lb, i, _LOOKAHEAD, nk, code, why, parent, nrec, nnamed, head, tail,
                             enext, ekey, enode, *table, req, state)
            nc, nv = int(state[0]), int(state[1])
            if nc:
                codes = req[0, :nc].copy()
                answers = [conflict_of(a, b, thr, edits) for a, b in key_pairs(codes)]
                ck.fill(table[0], table[1], codes, np.array(
                    [texts.setdefault(c, len(texts)) if c else -1 for c in answers], dtype=np.int32))
            if nv:
                codes = req[1, :nv].copy()
                ck.fill(table[0], table[2], codes, np.array(
                    [vouches_of(a, b, thr, edits) for a, b in key_pairs(codes)], dtype=np.int8))
            if i >= len(la):
                return code, why
            if not (nc or nv):
                table = ck.grow(table)

    def pair_labels(na: np.ndarray, nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return labels[na].astype(np.int64), labels[nb].astype(np.int64)

    # 1. accepted by a person (no cannot-link check: the person saw the records)
    accepted = sorted(d for d in decided if d[4] == "accepted")
    accepted_links: list[tuple[int, int, str, str]] = []
    if accepted:
        run(ck.JOIN, *pair_labels(np.array([d[2] for d in accepted], dtype=np.int64),
                                  np.array([d[3] for d in accepted], dtype=np.int64)))
        for a, b, na, nb, _, by, why_text in accepted:
            counts["accepted"] += 1
            text = f"{LINK_KIND}: accepted in review by {by or 'someone'}: {why_text or 'no reason given'}"
            accepted_links.append((int(na), int(nb), f"linkage:{a}|{b}", text))
    # 2. scored pairs above the link threshold, strongest first; 3. the grey zone
    outcome = np.full(len(pair_na), _DECIDED, dtype=np.int8)
    whys = np.full((len(pair_na), 3), -1, dtype=np.int64)
    strong = (prob >= lk.link_probability) & ~decided_flag
    grey = ~strong & ~decided_flag
    for mode, idx in ((ck.CHECKED, np.nonzero(strong)[0]), (ck.DRY_RUN, np.nonzero(grey)[0])):
        if len(idx):
            outcome[idx], whys[idx] = run(mode, *pair_labels(pair_na[idx], pair_nb[idx]))
    # 2b. e-mail records without a surname, to the one profile their user part names
    root = ck.roots(parent)
    picks = pick_email_names(email_pairs, lambda n: int(root[labels[n]]), lambda r: bool(nnamed[r]))
    if picks and not lk.email_names_undated_namesakes:
        picks = _drop_undated_namesakes(cur, picks, root, labels)
    pick_code = run(ck.CHECKED, *pair_labels(np.array([p[0] for p in picks], dtype=np.int64),
                                             np.array([p[1] for p in picks], dtype=np.int64)))[0]
    refused = np.nonzero(np.isin(outcome, (_REFUSED, _HOUSEHOLD)))[0]
    cur.register("prob_why_arrow", pa.table({
        "i": pa.array(refused), "c": pa.array(whys[refused, 0]), "x": pa.array(whys[refused, 1], pa.int32()),
        "y": pa.array(whys[refused, 2], pa.int32())}))
    del whys
    cur.register("prob_texts_arrow", pa.table({"c": pa.array(np.arange(len(texts), dtype=np.int64)),
                                               "text": pa.array(list(texts), pa.string())}))
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE prob_why AS
        SELECT w.i, 'refused: cannot-link, ' || t.text || ' (' || nx.id_value || ' / ' || ny.id_value || ')'
               AS why
        FROM prob_why_arrow w JOIN prob_texts_arrow t USING (c)
        JOIN nodes nx ON nx.node = w.x JOIN nodes ny ON ny.node = w.y
        """
    )
    cur.unregister("prob_why_arrow")
    cur.unregister("prob_texts_arrow")
    pick_nodes = np.array([p[0] for p in picks] + [p[1] for p in picks], dtype=np.int64)
    cur.register("prob_need_arrow", pa.table({"node": pa.array(np.unique(pick_nodes), pa.int32())}))
    rid = dict(_rows(cur, "SELECT n.node, n.id_value FROM nodes n JOIN prob_need_arrow USING (node)"))
    cur.unregister("prob_need_arrow")
    _email_picks(picks, (c == _LINKED for c in pick_code.tolist()), rid, counts, accepted_links)
    _tally(counts, outcome)
    return outcome, accepted_links, ck.roots(parent)


def _write_outcomes(cur: Any, code: np.ndarray, why: str, accepted: list[tuple[int, int, str, str]],
                    now: Any) -> int:
    """Links into ``prob_links``, statuses and the grey zone staged for
    :func:`write_probabilistic`, all from ``prob_pairs`` and each pair's outcome code; returns the
    number of links. ``why``: a relation of the refused pairs' reasons, ``(i, why)``."""
    import pyarrow as pa

    cur.register("outcome_arrow", pa.table({"i": pa.array(np.arange(len(code), dtype=np.int64)),
                                            "code": pa.array(code)}))
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE prob_outcome AS
        SELECT p.*, o.code, w.why,
               CASE WHEN o.code IN ({_LINKED}, {_REFUSED}) THEN {_TEXT_SQL} END AS text
        FROM prob_pairs p JOIN outcome_arrow o USING (i) LEFT JOIN {why} w USING (i)
        """
    )
    cur.unregister("outcome_arrow")
    # What the run's transaction writes to linkage_pairs (write_probabilistic).
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE prob_status AS
        SELECT record_a, record_b,
            CASE code WHEN {_LINKED} THEN 'linked' WHEN {_REFUSED} THEN 'refused'
                 WHEN {_HOUSEHOLD} THEN 'refused' WHEN {_DECIDED} THEN 'decided'
                 WHEN {_SAME} THEN 'same' ELSE 'review' END AS status,
            CASE code WHEN {_LINKED} THEN text WHEN {_DECIDED} THEN decision || ' in review'
                 WHEN {_SAME} THEN 'already one profile'
                 WHEN {_REVIEW} THEN 'grey zone: in the review queue' ELSE why END AS reason
        FROM prob_outcome
        """
    )
    cur.register("accepted_arrow", pa.table({
        "a": pa.array([x[0] for x in accepted], pa.int32()),
        "b": pa.array([x[1] for x in accepted], pa.int32()),
        "occ": pa.array([x[2] for x in accepted], pa.string()),
        "reason": pa.array([x[3] for x in accepted], pa.string()),
    }))
    cur.execute("INSERT INTO prob_links SELECT a, b, 'linked', occ, ?, reason FROM accepted_arrow", [now])
    cur.unregister("accepted_arrow")
    cur.execute(
        f"""
        INSERT INTO prob_links
        SELECT na, nb, CASE code WHEN {_LINKED} THEN 'linked' ELSE 'dropped' END,
               'linkage:' || record_a || '|' || record_b, ?,
               CASE code WHEN {_LINKED} THEN text ELSE why || ' (' || text || ')' END
        FROM prob_outcome WHERE code IN ({_LINKED}, {_REFUSED})
        """,
        [now],
    )
    _stage_review(cur)
    (n,), = cur.execute("SELECT count(*) FROM prob_links").fetchall()
    cur.execute("DROP TABLE IF EXISTS prob_outcome")
    cur.execute("DROP TABLE IF EXISTS prob_pairs")
    return int(n)


def _stage_review(cur: Any, from_outcome: bool = True) -> None:
    """``review_now``: this run's grey zone (``prob_outcome``'s review code; none without it),
    and ``prob_status`` (empty without ``prob_outcome``), for :func:`write_probabilistic`."""
    source = (
        "(SELECT record_a, record_b, match_weight, match_probability, CAST(weights AS VARCHAR) AS weights "
        f"FROM prob_outcome WHERE code = {_REVIEW})" if from_outcome else
        "(SELECT NULL::VARCHAR AS record_a, NULL::VARCHAR AS record_b, NULL::DOUBLE AS match_weight, "
        "NULL::DOUBLE AS match_probability, NULL::VARCHAR AS weights WHERE false)"
    )
    cur.execute(f"CREATE OR REPLACE TEMP TABLE review_now AS SELECT * FROM {source}")
    if not from_outcome:
        cur.execute("CREATE OR REPLACE TEMP TABLE prob_status (record_a VARCHAR, record_b VARCHAR, "
                    "status VARCHAR, reason VARCHAR)")


def write_probabilistic(cur: Any, now: Any) -> None:
    """Write what :func:`merge_probabilistic` decided (inside the run's transaction; the
    clustering runs before it): each scored pair's status and reason into ``linkage_pairs``;
    pending items become this run's grey zone, decided items are kept as they are."""
    cur.execute(
        "UPDATE linkage_pairs p SET status = o.status, reason = o.reason "
        "FROM prob_status o WHERE p.record_a = o.record_a AND p.record_b = o.record_b"
    )
    cur.execute("DROP TABLE IF EXISTS prob_status")
    cur.execute(
        "DELETE FROM review_queue q WHERE status = 'pending' AND NOT EXISTS (SELECT 1 FROM review_now r "
        "WHERE r.record_a = q.record_a AND r.record_b = q.record_b)"
    )
    cur.execute(
        """
        INSERT INTO review_queue (record_a, record_b, match_weight, match_probability, weights, status,
                                  queued_at)
        SELECT record_a, record_b, match_weight, match_probability, weights, 'pending', ? FROM review_now
        ON CONFLICT (record_a, record_b) DO UPDATE SET match_weight = excluded.match_weight,
            match_probability = excluded.match_probability, weights = excluded.weights
        """,
        [now],
    )
    cur.execute("DROP TABLE IF EXISTS review_now")
