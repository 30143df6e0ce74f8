"""Why is this one person? Explain a profile; look one up by any identifier; split a wrong merge.

    >>> print(explain_profile(store, 17).to_text())  # doctest: +SKIP
    profile 17 (active): 3 records, 5 identifiers
      user_id U1
        - account_id A1: seen together in record:web:1 at 2023-01-01 ...
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from xrm.exceptions import InputError
from xrm.identify._identifiers import normalize_identifier
from xrm.identify._rules import RECORD_TYPE, IdentityRules

__all__ = ["LinkStep", "ProfileExplanation", "explain_profile", "lookup_profiles", "unmerge_profile"]


@dataclass(frozen=True)
class LinkStep:
    """One link of the chain: ``to`` joined the profile through ``via`` (depth from the root)."""

    via_type: str
    via_value: str
    to_type: str
    to_value: str
    occurrence: str
    ts: str
    rule: str
    depth: int


@dataclass
class ProfileExplanation:
    profile_id: int
    status: str
    merged_into: int | None
    root: tuple[str, str] | None
    chain: list[LinkStep] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [
            f"profile {self.profile_id} ({self.status}): {len(self.records)} records, "
            f"{len(self.chain) + (1 if self.root else 0)} identifiers"
        ]
        if self.root:
            lines.append(f"  {self.root[0]} {self.root[1]}  (most trusted identifier)")
        for s in self.chain:
            lines.append(
                f"  {'  ' * s.depth}- {s.to_type} {s.to_value}: with {s.via_type} {s.via_value} "
                f"in {s.occurrence} at {s.ts}; {s.rule}"
            )
        for d in self.dropped:
            lines.append(
                f"  not joined: {d['type_b']} {d['value_b']} (with {d['type_a']} {d['value_a']} "
                f"in {d['occurrence']}): {d['reason']}"
            )
        for e in self.evidence:
            shared = f", also on profiles {e['shared_with']}" if e["shared_with"] else ""
            lines.append(f"  evidence {e['id_type']} {e['id_value']} (not glue{shared})")
        for h in self.history:
            lines.append(f"  {h['logged_at']} {h['action']}: {h['reason']}")
        return "\n".join(lines)


def _rule_text(rules: IdentityRules, id_type: str) -> str:
    if id_type == RECORD_TYPE:
        return "the record holds this identifier"
    r = rules.rule(id_type)
    limit = f"limit {r.limit}" if r.limit else "no limit"
    return f"{id_type} glues on its own (priority {r.priority}, {limit} per profile)"


def _active(store: Any, profile_id: int) -> tuple[int, str, int | None]:
    rows = store.sql(
        "SELECT profile_id, status, merged_into FROM profiles WHERE profile_id = ?", [profile_id]
    ).fetchall()
    if not rows:
        raise InputError(
            f"profile {profile_id} does not exist; find a profile by an identifier with "
            f"lookup_profiles(store, 'email', 'anna@example.de') or `xrm identify lookup`"
        )
    return rows[0][0], rows[0][1], rows[0][2]


def explain_profile(store: Any, profile_id: int, rules: IdentityRules | None = None) -> ProfileExplanation:
    """The chain of links that make a profile one person, with the rule behind each link."""
    rules = rules or IdentityRules.for_settings(store.settings)
    pid, status, merged_into = _active(store, profile_id)
    history = [
        dict(zip(("logged_at", "action", "profile_id", "other_profile_id", "reason"), r, strict=True))
        for r in store.sql(
            "SELECT strftime(logged_at, '%Y-%m-%d %H:%M:%S'), action, profile_id, other_profile_id, "
            "reason FROM merge_log WHERE profile_id = ? OR other_profile_id = ? ORDER BY log_id",
            [pid, pid],
        ).fetchall()
    ]
    if status != "active":
        return ProfileExplanation(pid, status, merged_into, None, history=history)
    idents = store.sql(
        "SELECT id_type, id_value FROM identifiers WHERE profile_id = ?", [pid]
    ).fetchall()
    prio = {t: rules.rule(t).priority for t, _ in idents}
    mine = set(idents)
    # The links from the profile's identifiers, looked up by value (identity_links_value_a) and
    # kept when the type matches too: a join on type and value pushes two filters into the scan,
    # and DuckDB then reads the whole table instead of using the index.
    links = [r for r in _by_value(store, """
        WITH l AS MATERIALIZED (
            SELECT * FROM identity_links WHERE value_a IN (SELECT unnest(CAST(? AS VARCHAR[])))
        )
        SELECT type_a, value_a, type_b, value_b, status, occurrence,
               strftime(ts, '%Y-%m-%d %H:%M:%S'), reason
        FROM l ORDER BY ts, occurrence, type_b, value_b
        """, sorted({v for _, v in idents})) if (r[0], r[1]) in mine]
    adj: dict[tuple[str, str], list[tuple[tuple[str, str], str, str, str]]] = {}
    dropped = []
    for ta, va, tb, vb, st, occ, ts, reason in links:
        a, b = (ta, va), (tb, vb)
        if st == "linked" and b in mine:
            adj.setdefault(a, []).append((b, occ, ts, reason))
            adj.setdefault(b, []).append((a, occ, ts, reason))
        elif st == "dropped":
            dropped.append({"type_a": ta, "value_a": va, "type_b": tb, "value_b": vb,
                            "occurrence": occ, "ts": ts, "reason": reason})
    root = min(mine, key=lambda p: (prio[p[0]], p[0], p[1])) if mine else None
    chain: list[LinkStep] = []
    if root:
        depth = {root: 0}
        queue = deque([root])
        while queue:
            node = queue.popleft()
            for nxt, occ, ts, reason in adj.get(node, []):
                if nxt in depth:
                    continue
                depth[nxt] = depth[node] + 1
                # A probabilistic link carries its own reason: match weight and weight per field.
                rule = reason if occ.startswith("linkage:") else _rule_text(
                    rules, nxt[0] if nxt[0] != RECORD_TYPE else node[0])
                chain.append(LinkStep(node[0], node[1], nxt[0], nxt[1], occ, ts, rule, depth[node]))
                queue.append(nxt)
    records = [
        dict(zip(("record_id", "source", "first_name", "last_name", "email", "phone"), r, strict=True))
        for r in store.sql(
            """
            SELECT r.record_id, n.source, n.first_name, n.last_name, n.email, n.phone
            FROM profile_records r LEFT JOIN normalized_records n USING (record_id)
            WHERE r.profile_id = ? ORDER BY r.record_id
            """,
            [pid],
        ).fetchall()
    ]
    own = store.sql(
        "SELECT id_type, id_value FROM profile_evidence WHERE profile_id = ? ORDER BY 1, 2", [pid]
    ).fetchall()
    # Who else holds each piece of evidence: one look-up by value (profile_evidence_id_value);
    # a correlated subquery on type and value became a join that read the whole table.
    others: dict[tuple[str, str], list[int]] = {}
    wanted = set(own)
    for t, v, other in _by_value(
        store,
        "WITH o AS MATERIALIZED (SELECT id_type, id_value, profile_id FROM profile_evidence "
        "WHERE id_value IN (SELECT unnest(CAST(? AS VARCHAR[])))) SELECT * FROM o ORDER BY profile_id",
        sorted({v for _, v in own}),
    ):
        if (t, v) in wanted and other != pid:
            others.setdefault((t, v), []).append(other)
    evidence = [{"id_type": t, "id_value": v, "shared_with": others.get((t, v), [])} for t, v in own]
    return ProfileExplanation(pid, status, merged_into, root, chain, dropped, records, evidence, history)


# Enough for any one profile's identifiers: DuckDB pushes an IN list of up to this many values into
# an indexed scan as a look-up (dynamic_or_filter_threshold, 50 by default), else it reads the table.
_IN_FILTER_MAX = 100_000


def _by_value(store: Any, sql: str, values: list[str]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (one ``?``: a list of values) on a cursor that keeps a long IN list a look-up."""
    if not values:
        return []
    cur = store.con.cursor()
    try:
        cur.execute(f"SET SESSION dynamic_or_filter_threshold = {_IN_FILTER_MAX}")
        rows: list[tuple[Any, ...]] = cur.execute(sql, [values]).fetchall()
        return rows
    finally:
        cur.close()


def lookup_profiles(
    store: Any, id_type: str, value: str, rules: IdentityRules | None = None
) -> list[int]:
    """Active profiles holding an identifier (evidence such as an e-mail may give several)."""
    rules = rules or IdentityRules.for_settings(store.settings)
    if id_type == RECORD_TYPE:
        rows = store.sql("SELECT profile_id FROM profile_records WHERE record_id = ?", [value]).fetchall()
        return [r[0] for r in rows]
    if id_type not in rules.types:  # a caller's typo, not a configuration error
        raise InputError(
            f"id_type {id_type!r} is not an identifier type; use one of: "
            f"{', '.join(sorted([*rules.types, RECORD_TYPE]))}"
        )
    norm, reason = normalize_identifier(rules, id_type, value)
    if norm is None:
        raise InputError(f"cannot look up {id_type} {value!r}: {reason or 'empty value'}")
    table = "identifiers" if rules.rule(id_type).glue else "profile_evidence"
    # By value alone (the id_value index) and the type checked here: a filter on both columns, or
    # the composite primary key, makes DuckDB read the whole table.
    rows = store.sql(f"SELECT id_type, profile_id FROM {table} WHERE id_value = ?", [norm]).fetchall()
    return sorted({pid for t, pid in rows if t == id_type})


def unmerge_profile(
    store: Any,
    profile_id: int,
    part: Sequence[tuple[str, str]],
    reason: str,
    *,
    decided_by: str | None = None,
    rules: IdentityRules | None = None,
) -> dict[str, Any]:
    """Split ``part`` (glue identifiers or ``('record', record_id)``) out of a profile.

    The rest keeps ``profile_id``; the part gets a new id. The decision is stored as an override
    that every later run obeys, and the graph is re-resolved at once.
    """
    from xrm.identify._resolve import _now, resolve_graph

    rules = rules or IdentityRules.for_settings(store.settings)
    if not reason or not reason.strip():
        raise InputError("unmerge needs a reason (who asked and why); it is kept in merge_log")
    pid, status, merged_into = _active(store, profile_id)
    if status != "active":
        raise InputError(
            f"profile {pid} is {status}" + (f" into {merged_into}" if merged_into else "")
            + "; unmerge the active profile instead"
        )
    held = {
        (t, v) for t, v in store.sql(
            "SELECT id_type, id_value FROM identifiers WHERE profile_id = ?", [pid]
        ).fetchall()
    }
    wanted: list[tuple[str, str]] = []
    problems = []
    for id_type, value in part:
        norm = value if id_type == RECORD_TYPE else normalize_identifier(rules, id_type, value)[0]
        if norm is None or (id_type, norm) not in held:
            problems.append(f"{id_type} {value!r}")
        else:
            wanted.append((id_type, norm))
    if problems:
        shown = ", ".join(f"{t} {v}" for t, v in sorted(held))
        raise InputError(
            f"profile {pid} does not hold {', '.join(problems)}; it holds: {shown}"
        )
    rest = sorted(held - set(wanted))
    if not wanted or not rest:
        raise InputError(
            f"unmerge needs part of profile {pid}: name some but not all of its identifiers"
        )
    now = _now()
    with store.transaction() as cur:
        (new_id,), = cur.execute("SELECT coalesce(max(profile_id), 0) + 1 FROM profiles").fetchall()
        (oid,), = cur.execute("SELECT coalesce(max(override_id), 0) + 1 FROM identity_overrides").fetchall()
        cur.execute(
            "INSERT INTO profiles (profile_id, status, created_run, created_at, updated_at) "
            "VALUES (?, 'active', NULL, ?, ?)",
            [new_id, now, now],
        )
        for id_type, value in wanted:
            cur.execute(
                "UPDATE identifiers SET profile_id = ? WHERE id_type = ? AND id_value = ?",
                [new_id, id_type, value],
            )
        cur.execute(
            "INSERT INTO identity_overrides VALUES (?, 'separate', ?, ?, ?, ?, ?, true)",
            [oid, json.dumps(sorted(wanted)), json.dumps(rest), reason, decided_by, now],
        )
        cur.execute(
            "INSERT INTO merge_log (run_id, logged_at, action, profile_id, other_profile_id, reason, "
            "details) VALUES (NULL, ?, 'unmerge', ?, ?, ?, ?)",
            [now, new_id, pid, f"unmerged: {reason}",
             json.dumps({"override_id": oid, "moved": sorted(wanted), "by": decided_by})],
        )
    summary = resolve_graph(store, rules, kind="unmerge")
    return {"profile_id": pid, "new_profile_id": int(new_id), "override_id": int(oid), "run": summary}
