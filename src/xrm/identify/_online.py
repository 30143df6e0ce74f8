"""Online resolution: one event to its profile in the same request (single-row lookups).

The same rules as the batch: the event's highest-priority identifier anchors it; each further
identifier joins the profile, or merges its profile in, only if no limit or override is broken.
The next batch run reconciles everything and keeps these ids.

    >>> resolve_event(store, {"userId": "u1", "anonymousId": "a9", "type": "identify"})  # doctest: +SKIP
    17
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from xrm.exceptions import InputError
from xrm.identify._identifiers import normalize_identifier
from xrm.identify._rules import IdentityRules

__all__ = ["event_identifiers", "resolve_event"]

ONLINE_RUN = 0  # run_id of links and log rows written by the online path


def _get(event: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if event.get(n) not in (None, ""):
            return event[n]
    return None


def event_identifiers(
    event: Mapping[str, Any], rules: IdentityRules, known_user_ids: set[str] | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(glue identifiers by priority, evidence identifiers) of one Segment-spec event."""
    raw: list[tuple[str, Any]] = [
        ("user_id", _get(event, "userId", "user_id")),
        ("anonymous_id", _get(event, "anonymousId", "anonymous_id")),
    ]
    if _get(event, "type") == "alias":
        prev = _get(event, "previousId", "previous_id")
        is_user = prev is not None and known_user_ids is not None and str(prev) in known_user_ids
        raw.append(("user_id" if is_user else "anonymous_id", prev))
    traits = dict(_get(event, "context") or {}).get("traits") or {}
    traits = {**traits, **(_get(event, "traits") or {})}
    for trait, id_type in rules.event_trait_identifiers.items():
        raw.append((id_type, traits.get(trait)))
    glue: list[tuple[str, str]] = []
    evidence: list[tuple[str, str]] = []
    for id_type, value in raw:
        norm, _ = normalize_identifier(rules, id_type, value)
        if norm is None:
            continue
        (glue if rules.rule(id_type).glue else evidence).append((id_type, norm))
    glue = sorted(set(glue), key=lambda p: (rules.rule(p[0]).priority, p[0], p[1]))
    return glue, sorted(set(evidence))


def resolve_event(store: Any, event: Mapping[str, Any], rules: IdentityRules | None = None) -> int:
    """Resolve one event to a profile id now, creating or merging profiles as the rules allow."""
    rules = rules or IdentityRules.for_settings(store.settings)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    mid = _get(event, "messageId", "message_id")
    with store.transaction() as cur:
        prev = _get(event, "previousId", "previous_id")
        known = set()
        if prev is not None:
            known = {
                r[0] for r in cur.execute(
                    "SELECT id_value FROM identifiers WHERE id_type = 'user_id' AND id_value = ?",
                    [str(prev)],
                ).fetchall()
            }
        glue, evidence = event_identifiers(event, rules, known)
        if not glue:
            raise InputError(
                f"event {mid or '(no messageId)'}: no usable identifier (userId and anonymousId "
                f"are missing, empty or blocked); send at least one of them"
            )
        owner = {
            (t, v): pid
            for t, v, pid in cur.execute(
                "SELECT id_type, id_value, profile_id FROM identifiers WHERE "
                + " OR ".join("(id_type = ? AND id_value = ?)" for _ in glue),
                [x for pair in glue for x in pair],
            ).fetchall()
        }
        state = _State(cur, rules, now, mid)
        anchor = glue[0]
        state.start(anchor, owner.get(anchor))
        for ident in glue[1:]:
            state.add(anchor, ident, owner.get(ident))
        pid = state.finish()
        if mid is not None:
            cur.execute(
                "INSERT OR REPLACE INTO event_profiles VALUES (?, ?)", [str(mid), pid]
            )
        for id_type, value in evidence:
            cur.execute(
                "INSERT INTO profile_evidence VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE "
                "SET n_seen = n_seen + 1",
                [pid, id_type, value],
            )
    return pid


class _State:
    """The profile the event is being resolved to, with its identifier counts per type."""

    def __init__(self, cur: Any, rules: IdentityRules, now: dt.datetime, mid: Any) -> None:
        self.cur, self.rules, self.now = cur, rules, now
        self.occ = f"event:{mid}" if mid is not None else "event:(online)"
        self.pid: int | None = None
        self.counts: dict[str, int] = {}
        self.new: list[tuple[str, str]] = []
        self.seen: list[tuple[str, str]] = []

    def _counts(self, pid: int) -> dict[str, int]:
        return dict(
            self.cur.execute(
                "SELECT id_type, count(*) FROM identifiers WHERE profile_id = ? GROUP BY id_type",
                [pid],
            ).fetchall()
        )

    def _refusal(self, other: dict[str, int]) -> str | None:
        for t, n in other.items():
            limit = self.rules.rule(t).limit
            if limit and self.counts.get(t, 0) + n > limit:
                return (
                    f"refused: {t} limit {limit} per profile would be broken "
                    f"({self.counts.get(t, 0)} + {n} values)"
                )
        return None

    def _override(self, other_pid: int) -> str | None:
        if self.pid is None:
            return None
        rows = self.cur.execute(
            """
            WITH o AS (SELECT override_id, reason, side_a, side_b FROM identity_overrides WHERE active),
            s AS (SELECT override_id, reason, 0 AS side, unnest(CAST(side_a AS VARCHAR[][])) AS p FROM o
                  UNION ALL
                  SELECT override_id, reason, 1, unnest(CAST(side_b AS VARCHAR[][])) FROM o)
            SELECT DISTINCT s.override_id, s.reason, s.side, i.profile_id FROM s
            JOIN identifiers i ON i.id_type = s.p[1] AND i.id_value = s.p[2]
            WHERE i.profile_id IN (?, ?)
            """,
            [self.pid, other_pid],
        ).fetchall()
        sides = {(oid, side, pid) for oid, _, side, pid in rows}
        for oid, reason, side, pid in rows:
            if pid == self.pid and (oid, 1 - side, other_pid) in sides:
                return f"refused: override #{oid} keeps these apart ({reason})"
        return None

    def _link(self, a: tuple[str, str], b: tuple[str, str], status: str, reason: str) -> None:
        self.cur.execute(
            "INSERT INTO identity_links VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [a[0], a[1], b[0], b[1], status, self.occ, self.now, reason, ONLINE_RUN],
        )

    def start(self, anchor: tuple[str, str], pid: int | None) -> None:
        if pid is None:
            self.new.append(anchor)
            self.counts = {anchor[0]: 1}
        else:
            self.pid, self.counts = pid, self._counts(pid)
            self.seen.append(anchor)

    def add(self, anchor: tuple[str, str], ident: tuple[str, str], pid: int | None) -> None:
        if pid is None:
            why = self._refusal({ident[0]: 1})
            if not why:
                self.new.append(ident)
                self.counts[ident[0]] = self.counts.get(ident[0], 0) + 1
        elif pid == self.pid:
            why = None
            self.seen.append(ident)
        else:
            other = self._counts(pid)
            why = self._refusal(other) or self._override(pid)
            if not why:
                self._merge(pid, other, anchor, ident)
                self.seen.append(ident)
        self._link(anchor, ident, "dropped" if why else "linked", why or "seen together")

    def _merge(self, pid: int, other: dict[str, int], a: tuple[str, str], b: tuple[str, str]) -> None:
        for t, n in other.items():
            self.counts[t] = self.counts.get(t, 0) + n
        if self.pid is None:  # the anchor was new: it joins the known profile
            self.pid = pid
            return
        size = {
            p: n for p, n in self.cur.execute(
                "SELECT profile_id, n_identifiers FROM profiles WHERE profile_id IN (?, ?)",
                [self.pid, pid],
            ).fetchall()
        }
        survivor, absorbed = sorted(
            (self.pid, pid), key=lambda p: (-size.get(p, 0), p)
        )
        cur = self.cur
        for table in ("identifiers", "profile_records", "event_profiles"):
            cur.execute(f"UPDATE {table} SET profile_id = ? WHERE profile_id = ?", [survivor, absorbed])
        cur.execute(
            "INSERT INTO profile_evidence SELECT ?, id_type, id_value, n_seen FROM profile_evidence "
            "WHERE profile_id = ? ON CONFLICT DO UPDATE SET n_seen = n_seen + excluded.n_seen",
            [survivor, absorbed],
        )
        cur.execute("DELETE FROM profile_evidence WHERE profile_id = ?", [absorbed])
        cur.execute(
            "UPDATE profiles SET status = 'merged', merged_into = ?, updated_at = ? "
            "WHERE profile_id = ? OR merged_into = ?",
            [survivor, self.now, absorbed, absorbed],
        )
        cur.execute(
            "INSERT INTO merge_log (run_id, logged_at, action, profile_id, other_profile_id, reason, "
            "details) VALUES (?, ?, 'merge', ?, ?, ?, ?)",
            [
                ONLINE_RUN, self.now, survivor, absorbed,
                f"merged online: {a[0]} {a[1]} and {b[0]} {b[1]} seen together in {self.occ}",
                json.dumps({"occurrence": self.occ}),
            ],
        )
        self.pid = survivor

    def finish(self) -> int:
        cur = self.cur
        if self.pid is None:
            (pid,), = cur.execute("SELECT coalesce(max(profile_id), 0) + 1 FROM profiles").fetchall()
            cur.execute(
                "INSERT INTO profiles (profile_id, status, created_run, created_at, updated_at) "
                "VALUES (?, 'active', ?, ?, ?)",
                [pid, ONLINE_RUN, self.now, self.now],
            )
            self.pid = int(pid)
        for id_type, value in self.new:
            cur.execute(
                "INSERT INTO identifiers VALUES (?, ?, ?, ?, ?, 1)",
                [id_type, value, self.pid, self.now, self.now],
            )
        for id_type, value in self.seen:
            cur.execute(
                "UPDATE identifiers SET last_seen = ?, n_seen = n_seen + 1 "
                "WHERE id_type = ? AND id_value = ?",
                [self.now, id_type, value],
            )
        cur.execute(
            "UPDATE profiles SET updated_at = ?, n_identifiers = (SELECT count(*) FROM identifiers "
            "WHERE profile_id = ?) WHERE profile_id = ?",
            [self.now, self.pid, self.pid],
        )
        return self.pid
