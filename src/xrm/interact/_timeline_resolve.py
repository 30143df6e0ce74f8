"""Events to their profiles in bulk: Identify's online path for a group of events in one transaction.

``xrm.identify.resolve_event`` resolves one event with a dozen single-row statements; at the event
API's rate (thousands of events a second) that is too slow. The two common cases are done here
with a few set-based statements per group, with the same result and bookkeeping as
``resolve_event`` (tests compare the two):

- *known*: every glue identifier of the event is in the graph, all in one profile: that profile;
- *new*: none of its glue identifiers is in the graph, and none is shared with an event of the
  group that has other identifiers: a new profile holding them.

Every other event (an alias call, a new identifier for a known profile, two profiles seen
together) goes through ``resolve_event`` itself, one by one, after the bulk cases and in the same
transaction, so the result is that of resolving the group's events in some serial order.

``deferred=True`` (the event API's writer): the counters of rows that exist already
(``identifiers.n_seen``/``last_seen``, ``profiles.updated_at``, ``profile_evidence.n_seen``) are
appended to ``identity_activity`` instead of updated in place, and :func:`fold_activity` adds them
in later. An in-place update is a join that scans the table, and its cost grew with the store
(micro-benchmark, 400 identifiers: 47 ms at 40,000 rows, 70 ms at 500,000; the append 2.5 ms).
New rows (profiles, identifiers, evidence) are still written at once.

    >>> resolve_events(cur, settings, [("m1", {"type": "track", "userId": "u1"})])  # doctest: +SKIP
    ResolveSummary(known=0, new=1, one_by_one=0, unresolved=0, order=('m1',))
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xrm.identify import IdentityRules, normalize_identifier, resolve_event

if TYPE_CHECKING:
    import duckdb

__all__ = ["IdentifierCache", "ResolveSummary", "StaleOwners", "fold_activity", "resolve_events"]

ONLINE_RUN = 0  # identify's run_id for what its online path writes
_Ident = tuple[str, str]


@dataclass(frozen=True)
class ResolveSummary:
    known: int
    new: int
    one_by_one: int
    unresolved: int  # no usable identifier (all missing or blocked): left to the batch run
    order: tuple[str, ...] = ()  # message ids in the serial order the result corresponds to


class StaleOwners(RuntimeError):
    """A remembered identifier→profile pair no longer holds (the graph changed behind the cache).

    Raised before the caller's transaction commits; roll it back, call
    :meth:`IdentifierCache.forget_owners` and resolve again.
    """


class IdentifierCache:
    """Normalised identifiers by (type, raw value); the same visitors come back again and again.

    It also remembers which profile holds an identifier (``owners``), so a returning visitor's
    event needs no look-up in ``identifiers``. That is only sound for a cache used by the one
    writer of the identity graph (the event API's writer): it is filled as ``resolve_events``
    reads and writes, emptied whenever an event takes the one-by-one path (which may merge
    profiles), and the caller must call :meth:`forget_owners` when its transaction does not
    commit, or when anything else changes the graph.

    Memory is bounded: each of its maps holds at most ``size`` entries and is emptied when full
    (the same visitors come back, so it refills with those seen since).
    """

    def __init__(self, rules: IdentityRules, size: int = 200_000) -> None:
        if size < 1:
            raise ValueError(f"IdentifierCache size must be at least 1, got {size}")
        self.rules, self.size = rules, size
        self._cache: dict[tuple[str, str], str | None] = {}
        self._plain: dict[tuple[Any, Any], tuple[list[_Ident], list[_Ident]]] = {}
        self._repeated: dict[int, bool] = {}  # id(glue list of _plain) -> two values of one type
        self.owners: dict[_Ident, int] = {}
        # (profile, type, value) rows of profile_evidence known to exist (deferred counters only).
        self.evidence: set[tuple[int, str, str]] = set()

    def sizes(self) -> dict[str, int]:
        """Entries per map (each at most ``size``): for /healthz and the memory probe."""
        return {"normalised": len(self._cache), "visitors": len(self._plain),
                "owners": len(self.owners), "evidence": len(self.evidence)}

    def forget_owners(self) -> None:
        self.owners.clear()
        self.evidence.clear()

    def _remember(self, owners: Mapping[_Ident, int]) -> None:
        if len(self.owners) + len(owners) > self.size:
            self.owners.clear()
        if len(owners) <= self.size:
            self.owners.update(owners)

    def _remember_evidence(self, keys: AbstractSet[tuple[int, str, str]]) -> None:
        if len(self.evidence) + len(keys) > self.size:
            self.evidence.clear()
        if len(keys) <= self.size:
            self.evidence |= keys

    def norm(self, id_type: str, value: Any) -> str | None:
        key = (id_type, str(value))
        try:
            return self._cache[key]
        except KeyError:
            pass
        if len(self._cache) >= self.size:
            self._cache.clear()
        got = self._cache[key] = normalize_identifier(self.rules, id_type, value)[0]
        return got

    def identifiers(self, event: Mapping[str, Any]) -> tuple[list[_Ident], list[_Ident]]:
        """(glue by priority, evidence) as ``identify``'s online path reads them (no alias).

        Events without traits are remembered by (userId, anonymousId): returning visitors cost
        one dictionary look-up. The lists returned are shared: do not change them.
        """
        ctx = event.get("context")
        if "traits" in event or (isinstance(ctx, dict) and "traits" in ctx):
            return self._identifiers(event)
        key = (_get(event, "userId", "user_id"), _get(event, "anonymousId", "anonymous_id"))
        try:
            return self._plain[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable id (an object): not remembered
            return self._identifiers(event)
        if len(self._plain) >= self.size:
            self._plain.clear()
            self._repeated.clear()
        got = self._plain[key] = self._identifiers(event)
        glue = got[0]
        self._repeated[id(glue)] = len({t for t, _ in glue}) < len(glue)
        return got

    def repeated_type(self, glue: list[_Ident]) -> bool:
        """Whether two of these glue identifiers are of one type (remembered for shared lists)."""
        got = self._repeated.get(id(glue))
        if got is None:
            return len({t for t, _ in glue}) < len(glue)
        return got

    def _identifiers(self, event: Mapping[str, Any]) -> tuple[list[_Ident], list[_Ident]]:
        raw: list[tuple[str, Any]] = [
            ("user_id", _get(event, "userId", "user_id")),
            ("anonymous_id", _get(event, "anonymousId", "anonymous_id")),
        ]
        traits = _traits(event)
        for trait, id_type in self.rules.event_trait_identifiers.items():
            raw.append((id_type, traits.get(trait)))
        glue: set[_Ident] = set()
        evidence: set[_Ident] = set()
        for id_type, value in raw:
            if value is None:
                continue
            norm = self.norm(id_type, value)
            if norm is not None:
                (glue if self.rules.rule(id_type).glue else evidence).add((id_type, norm))
        rule = self.rules.rule
        return sorted(glue, key=lambda p: (rule(p[0]).priority, p[0], p[1])), sorted(evidence)


def _get(event: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if event.get(n) not in (None, ""):
            return event[n]
    return None


def _traits(event: Mapping[str, Any]) -> dict[str, Any]:
    ctx = event.get("context")
    inner = ctx.get("traits") if isinstance(ctx, dict) else None
    own = event.get("traits")
    return {**(inner if isinstance(inner, dict) else {}), **(own if isinstance(own, dict) else {})}


class _InTransaction:
    """What ``resolve_event`` needs of a store, inside the caller's open transaction."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, settings: Any) -> None:
        self.cur, self.settings = cur, settings

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        yield self.cur


def resolve_events(
    cur: duckdb.DuckDBPyConnection,
    settings: Any,
    events: Sequence[tuple[str, Mapping[str, Any]]],
    cache: IdentifierCache | None = None,
    *,
    fresh_ids: AbstractSet[str] = frozenset(),
    deferred: bool = False,
) -> ResolveSummary:
    """Resolve (message_id, event) pairs not resolved yet; the caller's transaction holds it all.

    ``fresh_ids``: events the caller has just stored for the first time, so not resolved yet
    (they are not looked up in ``event_profiles``). ``deferred``: counters go to
    ``identity_activity`` (see the module's docstring); the caller runs :func:`fold_activity`.
    """
    import pyarrow as pa

    cache = cache or IdentifierCache(IdentityRules.for_settings(settings))
    rules = cache.rules
    seen_ids: set[str] = set()
    todo: list[tuple[str, Mapping[str, Any]]] = []
    for mid, ev in events:
        if mid not in seen_ids:
            seen_ids.add(mid)
            todo.append((mid, ev))
    if not todo:
        return ResolveSummary(0, 0, 0, 0)
    ask = [m for m, _ in todo if m not in fresh_ids]
    done: set[str] = set()
    if ask:
        cur.register("__xrm_r", pa.table({"message_id": ask}))
        try:
            done = {
                r[0] for r in cur.execute(
                    "SELECT message_id FROM event_profiles WHERE message_id IN "
                    "(SELECT message_id FROM __xrm_r)"
                ).fetchall()
            }
        finally:
            cur.unregister("__xrm_r")
    todo = [(m, e) for m, e in todo if m not in done]
    event_of = dict(todo)
    position = {m: k for k, (m, _) in enumerate(todo)}

    slow: list[tuple[str, Mapping[str, Any]]] = []
    bulk: list[tuple[str, list[_Ident], list[_Ident]]] = []
    unresolved = 0
    for mid, ev in todo:
        if ev.get("type") == "alias":
            slow.append((mid, ev))
            continue
        glue, evidence = cache.identifiers(ev)
        if not glue:
            unresolved += 1
        elif cache.repeated_type(glue):  # two values of one type: limits apply
            slow.append((mid, ev))
        else:
            bulk.append((mid, glue, evidence))

    known: list[tuple[str, list[_Ident], list[_Ident], int]] = []
    rest: list[tuple[str, list[_Ident], list[_Ident]]] = []
    remembered = cache.owners.get
    unknown: list[tuple[str, list[_Ident], list[_Ident]]] = []
    for item in bulk:  # most events: every identifier remembered, all in one profile
        glue = item[1]
        first = remembered(glue[0])
        if first is not None and all(remembered(i) == first for i in glue):
            known.append((item[0], glue, item[2], first))
        else:
            unknown.append(item)
    wanted = {i for _, glue, _ in unknown for i in glue}
    owner = {i: p for i in wanted if (p := remembered(i)) is not None}
    found = _owners(cur, wanted - owner.keys())
    owner |= found
    for mid, glue, evidence in unknown:
        first = owner.get(glue[0])
        if first is not None and all(owner.get(i) == first for i in glue):
            known.append((mid, glue, evidence, first))
        else:
            rest.append((mid, glue, evidence))
    # Identifiers shared by events with different identifier sets are resolved one by one (a
    # known event's identifiers are all owned, so they cannot be shared with a new one's).
    tuples_of: dict[_Ident, set[tuple[_Ident, ...]]] = defaultdict(set)
    for _, glue, _ in rest:
        for i in glue:
            tuples_of[i].add(tuple(glue))
    new: list[tuple[str, list[_Ident], list[_Ident]]] = []
    for mid, glue, evidence in rest:
        if all(i not in owner and len(tuples_of[i]) == 1 for i in glue):
            new.append((mid, glue, evidence))
        else:
            slow.append((mid, event_of[mid]))
    fresh = _write_bulk(cur, known, new, cache if deferred else None)
    cache._remember(found)
    cache._remember(fresh)
    store = _InTransaction(cur, settings)
    slow.sort(key=lambda p: position[p[0]])
    if slow:
        cache.forget_owners()  # the one-by-one path may merge profiles
        if deferred:  # a merge moves counters by profile: first bring them all in
            fold_activity(cur)
    for mid, ev in slow:
        resolve_event(store, {**_clean(ev), "messageId": mid}, rules)
    quick = {m for m, *_ in known} | {m for m, *_ in new}
    order = tuple(m for m, _ in todo if m in quick) + tuple(m for m, _ in slow)
    return ResolveSummary(len(known), len(new), len(slow), unresolved, order)


def _clean(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with any non-object ``context.traits`` left out (resolve_event expects a dict)."""
    ev = dict(event)
    ctx = ev.get("context")
    if isinstance(ctx, dict) and "traits" in ctx and not isinstance(ctx["traits"], dict):
        ev["context"] = {k: v for k, v in ctx.items() if k != "traits"}
    return ev


def _owners(cur: duckdb.DuckDBPyConnection, idents: set[_Ident]) -> dict[_Ident, int]:
    if not idents:
        return {}
    import pyarrow as pa

    items = sorted(idents)
    # Read by DuckDB's replacement scan from this frame: cheaper than register + unregister.
    __xrm_i = pa.table({"id_type": [t for t, _ in items], "id_value": [v for _, v in items]})
    rows = cur.execute(
        "SELECT i.id_type, i.id_value, i.profile_id FROM identifiers i "
        "JOIN __xrm_i q ON q.id_type = i.id_type AND q.id_value = i.id_value"
    ).fetchall()
    return {(t, v): int(p) for t, v, p in rows}


def fold_activity(cur: duckdb.DuckDBPyConnection) -> int:
    """Add the counters appended to ``identity_activity`` to their rows; return the rows folded.

    Runs in the caller's transaction (the writer: its own, every few seconds, at start and at
    stop). Rows whose target is gone (erased, merged away) add nothing: only updates, so nothing
    erased comes back.
    """
    (n,), = cur.execute("SELECT count(*) FROM identity_activity").fetchall()
    if not n:
        return 0
    cur.execute(
        "UPDATE identifiers SET last_seen = greatest(coalesce(identifiers.last_seen, a.ts), a.ts), "
        "n_seen = identifiers.n_seen + a.n FROM (SELECT id_type, id_value, sum(n) AS n, max(ts) AS ts "
        "FROM identity_activity WHERE kind = 'identifier' GROUP BY ALL) a "
        "WHERE identifiers.id_type = a.id_type AND identifiers.id_value = a.id_value"
    )
    cur.execute(
        "UPDATE profile_evidence SET n_seen = profile_evidence.n_seen + a.n FROM (SELECT profile_id, "
        "id_type, id_value, sum(n) AS n FROM identity_activity WHERE kind = 'evidence' GROUP BY ALL) a "
        "WHERE profile_evidence.profile_id = a.profile_id AND profile_evidence.id_type = a.id_type "
        "AND profile_evidence.id_value = a.id_value"
    )
    cur.execute(
        "UPDATE profiles SET updated_at = greatest(profiles.updated_at, a.ts) FROM (SELECT profile_id, "
        "max(ts) AS ts FROM identity_activity WHERE kind = 'profile' GROUP BY ALL) a "
        "WHERE profiles.profile_id = a.profile_id"
    )
    cur.execute("DELETE FROM identity_activity")
    return int(n)


def _write_bulk(
    cur: duckdb.DuckDBPyConnection,
    known: Sequence[tuple[str, list[_Ident], list[_Ident], int]],
    new: Sequence[tuple[str, list[_Ident], list[_Ident]]],
    deferred: IdentifierCache | None = None,
) -> dict[_Ident, int]:
    """What ``resolve_event`` writes for these events, as set-based statements; the new owners.

    ``deferred``: counters of existing rows go to ``identity_activity`` (one append); the cache
    says which evidence rows exist."""
    import pyarrow as pa

    if not known and not new:
        return {}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assigned: list[tuple[str, int, list[_Ident], list[_Ident]]] = [
        (mid, pid, glue, ev) for mid, glue, ev, pid in known
    ]
    new_pid: dict[tuple[_Ident, ...], int] = {}
    if new:
        (base,), = cur.execute("SELECT coalesce(max(profile_id), 0) FROM profiles").fetchall()
        for mid, glue, ev in new:
            key = tuple(glue)
            if key not in new_pid:
                new_pid[key] = int(base) + len(new_pid) + 1
            assigned.append((mid, new_pid[key], glue, ev))
    seen: dict[_Ident, int] = {}
    holder: dict[_Ident, int] = {}  # the profile each identifier was given
    evidence: dict[tuple[int, str, str], int] = {}
    links: list[tuple[str, str, str, str, str]] = []
    count = seen.get
    for mid, pid, glue, ev in assigned:
        for i in glue:
            seen[i] = count(i, 0) + 1
            holder[i] = pid
        for t, v in ev:
            k = (pid, t, v)
            evidence[k] = evidence.get(k, 0) + 1
        if len(glue) > 1:
            head = glue[0]
            links += [(head[0], head[1], t, v, f"event:{mid}") for t, v in glue[1:]]
    fresh = {i: pid for key, pid in new_pid.items() for i in key}

    def put(
        name: str, columns: dict[str, list[Any]], sql: str, params: list[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        # The input is read by DuckDB's replacement scan of this frame's local ``__xrm_in``
        # (cheaper than register + unregister: a group commit runs several of these).
        __xrm_in = pa.table(columns)
        sql = re.sub(rf"\b{name}\b", "__xrm_in", sql)
        return (cur.execute(sql, params) if params else cur.execute(sql)).fetchall()

    if new_pid:
        put(
            "__xrm_p",
            {"profile_id": list(new_pid.values()), "n": [len(k) for k in new_pid]},
            "INSERT INTO profiles (profile_id, status, created_run, created_at, updated_at, "
            "n_identifiers) SELECT profile_id, 'active', ?, ?, ?, n FROM __xrm_p",
            [ONLINE_RUN, now, now],
        )
        # A new identifier is inserted with n_seen 1 by its first event; later ones add to it.
        put(
            "__xrm_ni",
            {
                "id_type": [t for t, _ in fresh],
                "id_value": [v for _, v in fresh],
                "profile_id": list(fresh.values()),
                "n": [seen[i] for i in fresh],
            },
            "INSERT INTO identifiers SELECT id_type, id_value, profile_id, ?, ?, n FROM __xrm_ni",
            [now, now],
        )
    old = [i for i in seen if i not in fresh]
    activity: list[tuple[str, int, str | None, str | None, int]] = []
    if old and deferred is not None:
        owner = holder
        # The same check as the update below, by a look-up: every remembered owner still holds.
        # (A semi-join on the one column: a join on all three costs several times more.)
        rows = put(
            "__xrm_si", {"id_value": list({v for _, v in old})},
            "SELECT id_type, id_value, profile_id FROM identifiers "
            "WHERE id_value IN (SELECT id_value FROM __xrm_si)",
        )
        now_held = {(t, v): p for t, v, p in rows}
        held = sum(1 for i in old if now_held.get(i) == owner[i])
        if held != len(old):
            raise StaleOwners(
                f"{len(old) - int(held)} of {len(old)} identifiers are no longer held by the "
                "profile remembered for them; resolve the group again after forget_owners()"
            )
        activity += [("identifier", owner[i], i[0], i[1], seen[i]) for i in old]
        made = set(new_pid.values())
        activity += [("profile", p, None, None, 1)
                     for p in sorted({pid for _, pid, _, _ in assigned if pid not in made})]
    elif old:
        owner = holder
        # Only rows still held by the profile the event was given count: a remembered owner that
        # something else has changed since (an erasure in the console) is caught here.
        (updated,), = put(
            "__xrm_si",
            {"id_type": [t for t, _ in old], "id_value": [v for _, v in old],
             "profile_id": [owner[i] for i in old], "n": [seen[i] for i in old]},
            "UPDATE identifiers SET last_seen = ?, n_seen = identifiers.n_seen + s.n FROM __xrm_si s "
            "WHERE identifiers.id_type = s.id_type AND identifiers.id_value = s.id_value "
            "AND identifiers.profile_id = s.profile_id",
            [now],
        )
        if int(updated) != len(old):
            raise StaleOwners(
                f"{len(old) - int(updated)} of {len(old)} identifiers are no longer held by the "
                "profile remembered for them; resolve the group again after forget_owners()"
            )
        made = set(new_pid.values())
        touched = sorted({pid for _, pid, _, _ in assigned if pid not in made})
        put(
            "__xrm_tp", {"profile_id": touched},
            "UPDATE profiles SET updated_at = ? WHERE profile_id IN (SELECT profile_id FROM __xrm_tp)",
            [now],
        )
    if links:
        put(
            "__xrm_l",
            {
                "ta": [x[0] for x in links], "va": [x[1] for x in links],
                "tb": [x[2] for x in links], "vb": [x[3] for x in links],
                "occ": [x[4] for x in links],
            },
            "INSERT INTO identity_links SELECT ta, va, tb, vb, 'linked', occ, ?, 'seen together', ? "
            "FROM __xrm_l",
            [now, ONLINE_RUN],
        )
    put(
        "__xrm_ep",
        {"message_id": [a[0] for a in assigned], "profile_id": [a[1] for a in assigned]},
        # Events resolved already were left out above: a plain INSERT (no key look-up first).
        "INSERT INTO event_profiles SELECT message_id, profile_id FROM __xrm_ep",
    )
    if evidence and deferred is not None:
        known_rows = deferred.evidence
        activity += [("evidence", k[0], k[1], k[2], n) for k, n in evidence.items() if k in known_rows]
        evidence = {k: n for k, n in evidence.items() if k not in known_rows}
        deferred._remember_evidence(evidence.keys())  # inserted below; known from now on
    if activity:
        put(
            "__xrm_ac",
            {"kind": [a[0] for a in activity], "profile_id": [a[1] for a in activity],
             "id_type": [a[2] for a in activity], "id_value": [a[3] for a in activity],
             "n": [a[4] for a in activity]},
            "INSERT INTO identity_activity SELECT kind, profile_id, id_type, id_value, n, ? FROM __xrm_ac",
            [now],
        )
    if evidence:
        keys = list(evidence)
        put(
            "__xrm_ev",
            {
                "profile_id": [k[0] for k in keys], "id_type": [k[1] for k in keys],
                "id_value": [k[2] for k in keys], "n": [evidence[k] for k in keys],
            },
            "INSERT INTO profile_evidence SELECT profile_id, id_type, id_value, n FROM __xrm_ev "
            "ON CONFLICT DO UPDATE SET n_seen = n_seen + excluded.n_seen",
        )
    return fresh
