"""POST /v1/decide: the next best offers for a customer named by any identifier, in a context.

    >>> httpx.post(url + "/v1/decide", json={"userId": "u-17", "context": {"channel": "email"}, "limit": 3})
    ... # doctest: +SKIP

The customer is found through the identity graph (userId, anonymousId, email, phone or
profileId); one not found, or without purchases, gets the new-customer path (popularity), not
an error. Offers come from the server's :class:`~xrm.customize.Decider` (offers, policy and
features in memory). The identity graph, consent, suppression and contact counts are held in
memory too, exact for every write committed before the decision (:class:`Gate`: a write stamp
checked per decision, the store read again only when it moved), so a decision seldom queries.
Each decision is audited (``api_audit``, action ``profile.decide``) in the same transaction as
its decision-log row. The answer carries a ``decisionId``: a response is a track event
``Offer Clicked`` / ``Offer Purchased`` / ``Offer Ignored`` with ``properties.decision_id`` and
``properties.offer_id`` sent to the event API, and it updates the policy before that call's 200.

The route below documents the endpoint (OpenAPI); the server answers it through
:mod:`xrm.api._decide_asgi`, before FastAPI's routing, with the same :func:`answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import inf
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from xrm.api._audit import MAX_PURPOSE, AuditBuffer
from xrm.api._auth import Principal
from xrm.api._errors import ApiError
from xrm.api._recent import Recent
from xrm.api._writer import EventWriter
from xrm.exceptions import InputError

if TYPE_CHECKING:
    import duckdb

    from xrm.customize import Decider, Offer
    from xrm.store import Store

__all__ = ["DecideRequest", "answer", "router", "start", "stop"]

log = logging.getLogger("xrm.api")

router = APIRouter(prefix="/v1", tags=["decisions"])

# Request field -> identity-graph id_type.
ID_FIELDS = {"userId": "user_id", "anonymousId": "anonymous_id", "email": "email", "phone": "phone"}
MAX_LIMIT = 20
# Decisions and their audit rows are logged in groups at most this long after. Each flush is a
# commit, which moves the write stamp: the decisions in the SETTLE_S after it each wait for a
# catalogue read (1.2 to 1.8 ms of CPU each, back to back), so a flush every second put a tenth of
# the requests at 500/s behind a read. The flusher's own commit cannot be told apart from another
# path's that wrote just after it (a write stamp is a file's size and times), so it is not excused:
# it is made seldom, and early only when another commit has moved the stamp anyway (that window is
# open already) or FLUSH_ROWS are waiting.
FLUSH_EVERY_S = 5.0
FLUSH_ROWS = 5_000
CHORES_EVERY_S = 1.0  # the flusher's look: refresh the decider, flush when due
CONTACTS_EVERY_S = 5.0  # sent/bounced updates to messages: read again at most this stale
# A commit writes the log before it is visible to readers (its fsync lies between): a read that
# began this soon after the stamp first moved may have missed it, so it is not trusted alone.
SETTLE_S = 0.1
# Entries per map of the decide path's identity cache (user ids, identifiers, evidence, profiles'
# user ids and status, strangers): about 190 bytes an entry (measured: 1.1 KB a person with a user
# id, an anonymous id and an e-mail), so at most about 230 MB with all six maps full; the least
# recently used are dropped first. A store with fewer identifiers is held whole (no query on a miss).
# The server's is the setting api_decide_cache (this default).
MAX_IDENTITIES = 200_000
# Tables whose changes a decision must see; the catalogue's estimated_size grows with every
# committed insert (deletes leave it, but an erasure also adds a suppression).
_WATCHED = ("consents", "suppressions", "messages", "merge_log", "identifiers", "profile_evidence")
_SIZES = (
    "SELECT table_name, estimated_size FROM duckdb_tables() WHERE database_name = current_database() "
    "AND schema_name = 'main' "
    f"AND table_name IN {_WATCHED!r}"
)
# Marketing messages that count against the caps (as interact's contact_counts), newest week.
_CONTACTS = (
    "SELECT customer, channel, coalesce(sent_at, not_before) FROM messages WHERE purpose <> 'service' "
    "AND status IN ('queued', 'sending', 'sent', 'retry') AND coalesce(sent_at, not_before) > ?"
)
# As _auth.purpose_of, but declared on the endpoint: a sync dependency would cost a thread hop.
_WHY = "Why the data is read (kept in the audit log)."
_EPOCH = datetime(1970, 1, 1)
_DAY, _WEEK = timedelta(days=1), timedelta(days=7)


class DecideContext(BaseModel):
    """Where the offer will be shown: the channel decides consent and contact policy."""

    model_config = ConfigDict(extra="allow")
    channel: Annotated[str, Field(min_length=1, max_length=64,
                                  description="email, sms, push, phone, post, web, app ...")]
    placement: Annotated[str | None, Field(max_length=128, description="e.g. 'home-banner'")] = None


class DecideRequest(BaseModel):
    """Any one identifier of the customer (several are tried in this order), a context, a limit."""

    model_config = ConfigDict(extra="forbid")
    userId: str | None = None
    anonymousId: str | None = None
    email: str | None = None
    phone: str | None = None
    profileId: Annotated[int | None, Field(ge=1)] = None
    context: DecideContext
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="How many offers at most.")] = 3

    @model_validator(mode="after")
    def _one_identifier(self) -> DecideRequest:
        given = [f for f in (*ID_FIELDS, "profileId") if getattr(self, f) not in (None, "")]
        if not given:
            raise ValueError(
                "no identifier: give one of userId, anonymousId, email, phone or profileId"
            )
        return self


@dataclass(frozen=True)
class Who:
    """The customer as the decision sees them: the cache key and every key consent is kept under."""

    customer: str  # the decider's key (profile id or user id), or the identifier for a stranger
    known: bool  # has purchases or recommendations in the cache
    profile_id: int | None
    user_ids: tuple[str, ...]  # consent, contact counts and suppression are kept per user id
    matched: str  # which identifier found them


# -- start-up, shut-down and the event hook ------------------------------------------------------


class _State:
    """The server's decider (made on first use), its flusher, the gate and the loop's cursor.

    Threads: decisions run on the event loop (memory only: a thread hop would cost more than the
    decision); the one ``xrm-decide`` thread builds the decider, writes the decision log with its
    audit rows (:meth:`_flush_due`), reads the gate's state again after its own commit and once
    more :data:`SETTLE_S` later (so a decision seldom finds the write stamp moved, and the first one
    after the settle window does not pay the settling read) and refreshes the decider's stamps. When a
    decision does find the stamp moved, the store is read on the ``xrm-gate`` thread (:meth:`fresh`),
    never on the loop: a read there (1 ms quiet, 10 ms and more under load, longer while the flusher
    commits) held up every request behind it, and the reads after each commit were the open
    loop's tail. Each thread has its own DuckDB cursor.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.decider: Decider | None = None
        self.lock = asyncio.Lock()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="xrm-decide")
        self.flusher: asyncio.Task[None] | None = None
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._bg_cur: duckdb.DuckDBPyConnection | None = None
        # The gate's reads for decisions that found the stamp moved: one at a time, shared.
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="xrm-gate")
        self._reader_cur: duckdb.DuckDBPyConnection | None = None
        self._read: asyncio.Future[None] | None = None
        self._reads_begun = self._reads_done = 0
        self.rules: Any = None
        self.ids = Identities(store.settings.api_decide_cache)
        self.gate = Gate(store, self.ids)
        self.audit = AuditBuffer()
        self._flushed_at = time.monotonic()
        # The event writer (None in tests without one): a decision waits for events of its person
        # that were landed during a checkpoint and are not in the store yet.
        self.writer: EventWriter | None = None

    @property
    def cur(self) -> duckdb.DuckDBPyConnection:
        if self._cur is None:
            self._cur = _cursor(self.store)
        return self._cur

    def _background(self) -> duckdb.DuckDBPyConnection:
        if self._bg_cur is None:
            self._bg_cur = _cursor(self.store)
        return self._bg_cur

    async def fresh(self) -> None:
        """Make the gate exact for every write committed before this call, without the loop
        touching the store: usually a ``stat`` (:meth:`Gate.current`); when the stamp moved, a read
        on the ``xrm-gate`` thread that *began* after this call. Decisions that arrive together share
        one read (in the :data:`SETTLE_S` after a commit every decision needs one: at 500 requests/s
        that is a read per 2 ms, which one per request on the loop could not keep up with)."""
        if self.gate.current():
            return
        need = self._reads_begun + 1  # one under way may have begun before this call's writes
        while self._reads_done < need:
            if self._read is None or self._read.done():
                self._read = asyncio.ensure_future(self._read_once())
            await asyncio.shield(self._read)

    async def _read_once(self) -> None:
        self._reads_begun += 1
        begun = self._reads_begun
        await asyncio.get_running_loop().run_in_executor(self.reader, self._read_gate)
        self._reads_done = max(self._reads_done, begun)

    def _read_gate(self) -> None:
        with self.store.gate.shared(urgent=True):  # a decision waits for it: never behind a release's wait
            if self._reader_cur is None:
                self._reader_cur = _cursor(self.store)
            self.gate.fresh(self._reader_cur)

    async def get(self) -> Decider:
        if self.decider is None:
            async with self.lock:
                if self.decider is None:
                    from xrm.customize import Decider

                    def make() -> Decider:
                        with self.store.gate.shared(urgent=True):
                            _warm_log_writer(self.store)
                            decider = Decider(self.store, check_every=None)  # refreshed by the flusher
                            decider.warm()  # compiled kernels loaded before the first request
                        decider.riders.append(self.audit)  # audit rows in the log's transaction
                        _freeze_loaded()
                        return decider

                    loop = asyncio.get_running_loop()
                    self.decider = await loop.run_in_executor(self.executor, make)
                    self.flusher = asyncio.create_task(self._flush_loop(), name="xrm-decision-log")
        return self.decider

    def _flush_due(self, now: float) -> bool:
        """Write the log now? At most :data:`FLUSH_EVERY_S` after the last write, or
        :data:`FLUSH_ROWS` decisions; sooner while another commit has moved the write stamp (the
        decisions after it read the store anyway: this flush adds no settle window of its own)."""
        decider = self.decider
        pending = 0 if decider is None else max(decider.pending, self.audit.pending)
        if not pending:
            return False
        if now - self._flushed_at >= FLUSH_EVERY_S or pending >= FLUSH_ROWS:
            return True
        return self.ids.loaded and not self.gate.current()

    def _chores(self) -> bool:
        """On the flusher's thread: write the log when due, re-read what the commit moved, refresh.
        True: the gate is not settled yet (the loop reads again once :data:`SETTLE_S` has passed).
        Holds the store's gate (urgent: a release of index memory waits, :mod:`xrm.store._gate`)."""
        with self.store.gate.shared(urgent=True):
            return self._chores_held()

    def _chores_held(self) -> bool:
        decider = self.decider
        if decider is None:
            return False
        now = time.monotonic()
        if self._flush_due(now):
            try:
                decider.flush()
                self._flushed_at = now
            except Exception as exc:  # tried again at the next look
                self.store.note_fault(exc)  # (a lost store stops the server)
                log.exception("writing the decision log failed; kept for the next flush")
        if self.ids.loaded:
            self.gate.fresh(self._background())
        if decider.due():
            decider.refresh()
        return self.ids.loaded and not self.gate.current()

    def _settle(self) -> None:
        if self.ids.loaded:
            with self.store.gate.shared(urgent=True):
                self.gate.fresh(self._background())

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHORES_EVERY_S)
            try:
                if await loop.run_in_executor(self.executor, self._chores):
                    # The read that ends the settle window, here rather than on a decision's wait.
                    await asyncio.sleep(SETTLE_S)
                    await loop.run_in_executor(self.executor, self._settle)
            except Exception as exc:
                self.store.note_fault(exc)
                log.exception("decide: background refresh failed; the next decision reads the store")

    async def close(self) -> None:
        if self.flusher is not None:
            self.flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.flusher
        if self.decider is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(self.executor, self._final_flush)
        self.executor.shutdown(wait=True)
        self.reader.shutdown(wait=True)
        for cur in (self._cur, self._bg_cur, self._reader_cur):
            if cur is not None:
                cur.close()

    def _final_flush(self) -> None:
        assert self.decider is not None
        with self.store.gate.shared(urgent=True):
            self.decider.flush()

    def on_events(self, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """After an event-API commit (writer thread): import consent changes, apply responses."""
        from xrm.customize import RESPONSE_EVENTS, record_response

        consent = False
        responses = []
        # User ids new to the graph: where they went (merges are seen by the gate's merge_log stamp).
        held = self.ids.pid_of
        users = sorted(u for u in {str(e["userId"]) for _, e in events if e.get("userId")} if u not in held)
        if users and self.ids.loaded:
            with contextlib.closing(self.store.con.cursor()) as cur:
                self.ids.reread(cur, user_ids=users)
        for message_id, e in events:
            if e.get("type") != "track":
                continue
            name = e.get("event")
            if name == "Consent Updated":
                consent = True
            elif name in RESPONSE_EVENTS:
                responses.append((message_id, name, e))
        if consent:
            from xrm.interact import sync_consents

            with self.store.transaction() as tx:
                sync_consents(tx)
        for message_id, name, e in responses:
            raw = e.get("properties")
            props: dict[str, Any] = raw if isinstance(raw, dict) else {}
            decision_id, offer_id = props.get("decision_id"), props.get("offer_id")
            if not decision_id or not offer_id:
                continue
            at = _parse_time(e.get("timestamp"))
            try:
                if self.decider is not None:
                    self.decider.apply_response(str(decision_id), str(offer_id), RESPONSE_EVENTS[name],
                                                response_id=message_id, at=at)
                else:
                    record_response(self.store, str(decision_id), str(offer_id), RESPONSE_EVENTS[name],
                                    response_id=message_id, at=at)
            except Exception as exc:  # the event is stored; apply_response_events can retry it
                log.warning("response event %s not applied: %s", message_id, exc)


def _warm_log_writer(store: Store) -> None:
    """Run the decision log's write path once on a tiny table, while the first decision waits for
    the decider anyway: the first flush paid for importing pyarrow and, at its first conversion,
    pandas (0.2 s to over 1 s of CPU, holding the GIL), a stall of the loop in the middle of
    serving with 500 requests/s arriving."""
    import pyarrow as pa

    warm = pa.table({"id": ["w"], "at": [datetime.now(UTC).replace(tzinfo=None)], "x": [[0.0]], "n": [1]})
    cur = store.con.cursor()
    try:
        cur.register("__xrm_warm", warm)
        cur.execute("SELECT count(*) FROM __xrm_warm").fetchall()
        cur.unregister("__xrm_warm")
    finally:
        cur.close()


def _freeze_loaded() -> None:
    """Keep what the decide path just loaded for good (the decider's customers, the identity graph:
    tens of thousands of objects) out of the garbage collector's scans, where the server froze its
    start-up objects (:func:`xrm.api._server.run_server`). Otherwise the next collections of the
    older generations walk them all, each a pause of several milliseconds on the loop while
    requests arrive every 2 ms. Objects swapped out later are still freed by their reference counts."""
    import gc

    if gc.get_freeze_count():
        gc.freeze()


def _cursor(store: Store) -> duckdb.DuckDBPyConnection:
    cur = store.con.cursor()
    cur.execute("SET SESSION TimeZone = 'UTC'")
    return cur


def _parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


async def start(app: FastAPI, store: Store) -> None:
    """Make the decide state; the event writer calls it after each commit (responses, consent)."""
    state = _State(store)
    app.state.decide = state
    writer = getattr(app.state, "writer", None)
    hooks = getattr(writer, "on_commit", None)
    if hooks is not None:
        hooks.append(state.on_events)
    if isinstance(writer, EventWriter):
        state.writer = writer


async def stop(app: FastAPI) -> None:
    state: _State | None = getattr(app.state, "decide", None)
    if state is not None:
        await state.close()


# -- the identity graph, in memory --------------------------------------------------------------


class Identities:
    """User ids per profile and where merged profiles point, held in memory for the decide path.

    Kept current without a query per decision: after each event-API commit the writer's thread
    reads where user ids new to the map went; a merge or unmerge from any path shows as a new
    ``merge_log`` row, which the gate's per-decision stamp sees, and the profiles it names are read
    again (where held).

    Bounded (issue 10: no memory growth with every new person): each map is a :class:`Recent` of
    at most ``limit`` entries, the least recently used dropped first. While nothing was ever
    dropped (a store with fewer people than ``limit``) memory holds the whole graph, and an
    identifier not in it is a stranger while ``identifiers`` and ``profile_evidence`` have had no
    row added since loading (the gate's stamp says); otherwise it is looked up in the store and
    remembered, and so is a stranger, for as long as those two tables take no row.
    """

    def __init__(self, limit: int = MAX_IDENTITIES) -> None:
        self.limit = limit
        self.pid_of: Recent[str, int] = Recent(limit)  # user id -> profile
        self.glue: Recent[tuple[str, str], int] = Recent(limit)  # (id_type, normalised value) -> profile
        self.evidence: Recent[tuple[str, str], tuple[int, ...]] = Recent(limit)  # e-mail, phone -> profiles
        self.users: Recent[int, tuple[str, ...]] = Recent(limit)  # profile -> its user ids
        self.status: Recent[int, tuple[str, int | None]] = Recent(limit)  # profile -> status, merged into
        # Identifiers nobody held when looked up, and the identifier tables' sizes then.
        self.strangers: Recent[tuple[str, str], tuple[int, int] | None] = Recent(limit)
        self.log_id = -1
        self.loaded = False
        self.lock = threading.Lock()
        self.loaded_sizes: tuple[int, int] | None = None  # identifier tables' sizes, read before load
        self.sizes: tuple[int, int] | None = None  # and now (the gate's last look)

    @property
    def complete(self) -> bool:
        """Memory holds every identifier and profile there is (nothing was dropped or left out)."""
        return not (self.pid_of.dropped or self.glue.dropped or self.evidence.dropped
                    or self.users.dropped or self.status.dropped)

    def load(self, cur: duckdb.DuckDBPyConnection, sizes: tuple[int, int] | None = None) -> None:
        """Read the graph (up to ``limit`` entries a map); ``sizes``: the identifier tables' sizes
        read before this call."""
        n = self.limit + 1  # one more than fits: then the map knows it is not the whole graph
        users: dict[int, list[str]] = {}
        rows = cur.execute(
            "SELECT id_type, id_value, profile_id FROM identifiers ORDER BY id_type, id_value LIMIT ?", [n]
        ).fetchall()
        glue: Recent[tuple[str, str], int] = Recent(self.limit, (((t, v), pid) for t, v, pid in rows))
        pid_of: Recent[str, int] = Recent(self.limit, ((v, pid) for t, v, pid in rows if t == "user_id"))
        for id_type, value, pid in rows:
            if id_type == "user_id":
                users.setdefault(pid, []).append(value)
        del rows
        evidence: Recent[tuple[str, str], tuple[int, ...]] = Recent(self.limit, (
            ((t, v), tuple(p)) for t, v, p in cur.execute(
                "SELECT id_type, id_value, list(DISTINCT profile_id ORDER BY profile_id) "
                "FROM profile_evidence GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?", [n]).fetchall()))
        status: Recent[int, tuple[str, int | None]] = Recent(self.limit, (
            (r[0], (r[1], r[2])) for r in cur.execute(
                "SELECT profile_id, status, merged_into FROM profiles ORDER BY profile_id LIMIT ?", [n]
            ).fetchall()))
        (log_id,), = cur.execute("SELECT coalesce(max(log_id), -1) FROM merge_log").fetchall()
        members: Recent[int, tuple[str, ...]] = Recent(self.limit)
        if glue.dropped:  # the scan was cut: a profile's list of user ids may be too, so none is
            members.dropped += 1  # kept (consent is read under each): each is read when first asked for
        else:
            for pid, u in users.items():
                members.put(pid, tuple(u))
        with self.lock:
            self.pid_of, self.status, self.log_id = pid_of, status, int(log_id)
            self.glue, self.evidence, self.users = glue, evidence, members
            self.strangers = Recent(self.limit)
            self.loaded_sizes = sizes
            self.loaded = True
        _freeze_loaded()

    def reread(self, cur: duckdb.DuckDBPyConnection, user_ids: Sequence[str] = (),
               profiles: Sequence[int] = ()) -> None:
        """Read again where these user ids belong, and these profiles' status and user ids."""
        rows = cur.execute(
            "SELECT id_value, profile_id FROM identifiers WHERE id_type = 'user_id' AND (id_value IN "
            "(SELECT unnest(?)) OR profile_id IN (SELECT unnest(?)))", [list(user_ids), list(profiles)],
        ).fetchall()
        pids = set(profiles) | {pid for _, pid in rows}
        for u in (*user_ids, *(u for u, _ in rows)):
            held = self.pid_of.get(u)
            if held is not None:
                pids.add(held)
        status = cur.execute(
            "SELECT profile_id, status, merged_into FROM profiles WHERE profile_id IN (SELECT unnest(?))",
            [sorted(pids)],
        ).fetchall()
        members = cur.execute(
            "SELECT profile_id, list(id_value ORDER BY id_value) FROM identifiers WHERE id_type = 'user_id' "
            "AND profile_id IN (SELECT unnest(?)) GROUP BY 1", [sorted(pids)],
        ).fetchall()
        with self.lock:
            for pid, st, into in status:
                self.status.put(pid, (st, into))
            got = {pid: tuple(ids) for pid, ids in members}
            for pid in pids:
                self.users.put(pid, got.get(pid, ()))
                for u in got.get(pid, ()):
                    self.pid_of.put(u, pid)
            for u, pid in rows:
                self.pid_of.put(u, pid)
                self.glue.put(("user_id", u), pid)

    def merged_since(self, cur: duckdb.DuckDBPyConnection, log_id: int) -> None:
        """Merges, splits and unmerges logged after the last one seen: read those profiles again."""
        if log_id == self.log_id:
            return
        rows = cur.execute(
            "SELECT profile_id, other_profile_id FROM merge_log WHERE log_id > ?", [self.log_id]
        ).fetchall()
        self.reread(cur, profiles=sorted({p for r in rows for p in r if p is not None}))
        self.log_id = log_id

    def active(
        self, pid: int, cur: duckdb.DuckDBPyConnection | None = None
    ) -> tuple[int | None, tuple[str, ...]]:
        """The active profile a profile id names now (a merged one points on) and its user ids;
        with ``cur``, a profile not held (dropped, or new) is read from the store."""
        for _ in range(32):
            st = self.status.hit(pid)
            users = self.users.hit(pid)
            if (st is None or users is None) and cur is not None and not self.complete:
                self.reread(cur, profiles=[pid])
                st, users = self.status.get(pid), self.users.get(pid)
            if st is None:
                return None, ()
            if st[0] == "active":
                return pid, users or ()
            if st[0] != "merged" or st[1] is None:
                return None, ()
            pid = int(st[1])
        return None, ()

    def lookup(self, state: _State, id_type: str, value: str) -> list[int]:
        """Profiles holding an identifier: from memory, else (new since loading) from the store."""
        from xrm.identify import lookup_profiles, normalize_identifier

        rules = state.rules
        norm, reason = normalize_identifier(rules, id_type, value)
        if norm is None:
            raise InputError(f"cannot look up {id_type} {value!r}: {reason or 'empty value'}")
        glue = rules.rule(id_type).glue
        key = (id_type, norm)
        hit = self.glue.hit(key) if glue else self.evidence.hit(key)
        if hit is not None:
            return [hit] if isinstance(hit, int) else list(hit)
        if self.sizes is not None and self.sizes == self.loaded_sizes and self.complete:
            return []  # memory holds every identifier there is
        if key in self.strangers and self.strangers.hit(key) == self.sizes and self.sizes is not None:
            return []  # nobody held it when last looked up, and no identifier was added since
        sizes = self.sizes
        found = lookup_profiles(state.store, id_type, value, rules)
        if found:
            missing = [p for p in found if p not in self.status or p not in self.users]
            if missing:
                self.reread(state.cur, profiles=missing)
            if glue:
                self.glue.put(key, found[0])
            else:
                self.evidence.put(key, tuple(found))
        else:
            self.strangers.put(key, sizes)
        return found


# -- finding the customer ------------------------------------------------------------------------


def _find(state: _State, decider: Decider, body: DecideRequest) -> Who:
    store, ids, cur = state.store, state.ids, state.cur
    if not ids.loaded:
        ids.load(cur)
    if state.rules is None:
        from xrm.identify import IdentityRules

        state.rules = IdentityRules.for_settings(store.settings)
    by_profile = decider.customer_key == "profile_id"
    pid: int | None = None
    matched = ""
    user_ids: tuple[str, ...] = ()
    if body.profileId is not None:
        pid, user_ids = ids.active(body.profileId, cur)
        matched = "profileId" if pid is not None else ""
    if pid is None:
        for field, id_type in ID_FIELDS.items():
            value = getattr(body, field)
            if value in (None, ""):
                continue
            if field == "userId":
                held = ids.pid_of.hit(value)
                if not by_profile and decider.knows(value):
                    if held is None and not ids.complete:  # dropped from memory: the store knows
                        with contextlib.suppress(InputError):
                            held = next(iter(ids.lookup(state, id_type, value)), None)
                    return Who(value, True, held, (value,), field)
                if held is not None:
                    pid, user_ids = ids.active(held, cur)
                    if pid is not None:
                        matched = field
                        break
                    continue
            try:
                found = ids.lookup(state, id_type, value)
            except InputError as exc:
                raise ApiError(400, "invalid_request", f"{field}: {exc}") from None
            for candidate in found:  # evidence (a shared e-mail) may name several: the first active
                pid, user_ids = ids.active(candidate, cur)
                if pid is not None:
                    matched = field
                    break
            if pid is not None:
                break
    if body.userId and body.userId not in user_ids:
        user_ids = (*user_ids, body.userId)
    if by_profile and pid is not None:
        return Who(str(pid), decider.knows(str(pid)), pid, user_ids, matched)
    for u in user_ids:
        if decider.knows(u):
            return Who(u, True, pid, user_ids, matched or "userId")
    stranger = (str(pid) if by_profile and pid is not None else None) or body.userId or next(
        f"{ID_FIELDS.get(f, f)}:{getattr(body, f)}" for f in (*ID_FIELDS, "profileId")
        if getattr(body, f) not in (None, "")
    )
    return Who(stranger, False, pid, user_ids, matched or "none")


# -- consent, suppression and contact policy, per decision ----------------------------------------


def _file_stamp(path: Path | str) -> tuple[Any, ...] | None:
    """The store's files as they are now: every committed write appends to the write-ahead log (and a
    checkpoint rewrites the database file and empties the log) before the commit returns, so while
    this stamp is unchanged nothing has been committed. None: no file to watch (read the store)."""
    out: list[Any] = []
    db = os.fspath(path)
    for f in (db, db + ".wal"):  # plain strings: pathlib's parsing cost more than the two stats
        try:
            st = os.stat(f)
        except FileNotFoundError:
            if f is db:
                return None
            out.append(None)
        except OSError:
            return None
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


class Gate:
    """Consent, suppression and contact caps for one decision, exact at the moment of deciding.

    Consent entries, suppressed hashes, recent marketing messages and the identity graph are held
    in memory. The write stamp is the store's files (:func:`_file_stamp`: a ``stat`` of the
    database and its write-ahead log, microseconds): a decision that finds it where the last read
    left it knows nothing was committed since, by any path (the event API, the console, a
    campaign, an erasure), and reads nothing. When it moved, the catalogue says which watched tables
    grew (one small query); new consent entries are read (appended: ``seq`` grows), a changed
    table read again. The stamp is taken *before* that read, so a write committed during the read
    moves it again. A commit's log is written before the commit is visible (an fsync apart: seen
    in about 4 % of stamp changes under a tight write loop), so a read that began less than
    :data:`SETTLE_S` after the stamp first moved is not trusted alone: decisions in that window
    read again themselves (DuckDB writes a commit's log outside its transaction lock, so a read
    may begin in between). The decision log's own commits move the stamp too, and are not
    excused: another path's commit may have written its log just after, before the flusher's
    ``stat``. So they are made seldom (:data:`FLUSH_EVERY_S`) and, where possible, inside a
    window another commit opened; the flusher reads after each, and again :data:`SETTLE_S` later.

    Not seen at once: an UPDATE of a message's status or send time (no row added) is read within
    :data:`CONTACTS_EVERY_S`; until then the count is the one from when the row was added.
    """

    def __init__(self, store: Store, ids: Identities) -> None:
        self.store = store
        self.ids = ids
        self.lock = threading.Lock()  # one read at a time (the loop or the flusher's thread)
        self._known: tuple[Any, ...] | None = None  # file stamp the memory is exact for
        self._settled = False  # the read for _known began SETTLE_S after that stamp first showed
        self._seen: tuple[Any, ...] | None = None  # the newest stamp seen, and since when
        self._seen_at = 0.0
        self._stamp: tuple[Any, ...] | None = None
        self._consents: dict[str, list[tuple[Any, ...]]] = {}
        self._max_seq = -1
        self._n_consents = 0
        self._suppression: tuple[str | None, frozenset[str]] = (None, frozenset())  # salt, hashes
        self._contacts: dict[str, list[tuple[str, datetime]]] = {}
        self._contacts_at = -inf

    def current(self) -> bool:
        """Memory is exact for every write committed before this call (a ``stat``, no query)."""
        stamp = _file_stamp(self.store.path)
        return stamp is not None and stamp == self._known and self._settled

    def fresh(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Make memory exact for every write committed before this call (usually: a ``stat``)."""
        path = self.store.path
        stamp = _file_stamp(path)
        if stamp is not None and stamp == self._known and self._settled:
            return
        with self.lock:
            stamp, began = _file_stamp(path), time.monotonic()
            if stamp != self._seen:
                self._seen, self._seen_at = stamp, began
            if stamp is not None and stamp == self._known and self._settled:
                return  # the other thread read it meanwhile
            self._sync(cur)
            self._known, self._settled = stamp, began - self._seen_at >= SETTLE_S

    def _sync(self, cur: duckdb.DuckDBPyConnection) -> None:
        # Rows ever appended per table, from the catalogue: no table is read while nothing changed.
        sizes = dict(cur.execute(_SIZES).fetchall())
        stamp = tuple(sizes.get(t, 0) for t in _WATCHED)
        self.ids.sizes = (stamp[4], stamp[5])
        if not self.ids.loaded:
            self.ids.load(cur, (stamp[4], stamp[5]))
        messages_due = stamp[2] and time.monotonic() - self._contacts_at > CONTACTS_EVERY_S
        if stamp == self._stamp and not messages_due:
            return
        if self._stamp is None or stamp[3] != self._stamp[3]:
            (log_id,), = cur.execute("SELECT coalesce(max(log_id), -1) FROM merge_log").fetchall()
            self.ids.merged_since(cur, int(log_id))
        if self._stamp is None or stamp[2] != self._stamp[2] or messages_due:
            self._read_contacts(cur, stamp[2])
        (n_consents, max_seq), = cur.execute(
            "SELECT count(*), coalesce(max(seq), -1) FROM consents").fetchall()
        n_supp = stamp[1]
        erased = self._stamp is None or n_supp != self._stamp[1]
        if erased:
            from xrm.interact._suppression import salt

            hashes = frozenset(r[0] for r in cur.execute("SELECT hash FROM suppressions").fetchall())
            self._suppression = (salt(cur) if n_supp else None, hashes)  # one assignment: never mixed
        # An erasure deletes consent rows as it adds a suppression: read them all again.
        full = erased or n_consents < self._n_consents
        rows = cur.execute(
            "SELECT customer, channel, purpose, status, given_at, expires_at, seq FROM consents "
            "WHERE seq > ? ORDER BY seq", [-1 if full else self._max_seq],
        ).fetchall()
        if not full and self._n_consents + len(rows) != n_consents:  # rows went and came: read all
            full = True
            rows = cur.execute(
                "SELECT customer, channel, purpose, status, given_at, expires_at, seq FROM consents "
                "ORDER BY seq").fetchall()
        # A full read is built aside and swapped in; new entries are appended (a decision reading
        # meanwhile sees the old entries or more, never fewer).
        consents: dict[str, list[tuple[Any, ...]]] = {} if full else self._consents
        for r in rows:
            consents.setdefault(r[0], []).append(r[1:])
        self._consents = consents
        self._n_consents, self._max_seq = n_consents, max_seq
        self._stamp = stamp

    def _read_contacts(self, cur: duckdb.DuckDBPyConnection, n_messages: int) -> None:
        """Marketing messages of the last week per customer (queued ones in the future too)."""
        contacts: dict[str, list[tuple[str, datetime]]] = {}
        if n_messages:
            since = datetime.now(UTC).replace(tzinfo=None) - _WEEK
            for customer, channel, at in cur.execute(_CONTACTS, [since]).fetchall():
                contacts.setdefault(customer, []).append((channel, at))
        self._contacts = contacts
        self._contacts_at = time.monotonic()

    def contact_counts(self, keys: Sequence[str], channel: str, at: datetime) -> tuple[list[int], list[int]]:
        """[24 hours, 7 days] on ``channel`` and on all channels, summed over ``keys`` (as
        interact's ``contact_counts``: a message counts at its send time, or planned time)."""
        used, total = [0, 0], [0, 0]
        day, week = at - _DAY, at - _WEEK
        contacts = self._contacts
        for k in keys:
            for ch, when in contacts.get(k, ()):
                if when is None or when <= week:
                    continue
                recent = when > day
                total[0] += recent
                total[1] += 1
                if ch == channel:
                    used[0] += recent
                    used[1] += 1
        return used, total

    def consented(self, keys: Sequence[str], channel: str, purpose: str, at: datetime) -> bool:
        """Valid consent across ``keys`` (user ids): the newest entry given at or before ``at``
        wins, on a tie the most restrictive (as :func:`xrm.interact` ``valid_customers``)."""
        best: tuple[Any, ...] | None = None
        best_key: tuple[Any, ...] | None = None
        for k in keys:
            for ch, pu, status, given, expires, seq in self._consents.get(k, ()):
                if ch != channel or pu != purpose or given > at:
                    continue
                # ORDER BY given_at DESC, (status = 'granted') ASC, expires_at ASC NULLS LAST, seq DESC
                soon = (_EPOCH - expires).total_seconds() if expires else -inf
                key = (given, status != "granted", soon, seq)
                if best_key is None or key > best_key:
                    best, best_key = (status, expires), key
        return best is not None and best[0] == "granted" and (best[1] is None or best[1] > at)

    def refusal(self, cur: duckdb.DuckDBPyConnection, who: Who, channel: str, now: datetime, *,
                check: bool = True) -> Any:
        """Why an offer may not be made to ``who`` on ``channel`` now (None: it may). ``check=False``:
        the caller has just made memory fresh (:meth:`fresh`) for this decision."""
        from xrm.interact import CHANNELS, Caps, ContactPolicy

        if channel not in CHANNELS:
            return None  # web and app placements: shown to whoever is there, no message is sent
        if check:
            self.fresh(cur)
        if who.profile_id is not None:  # the gate's stamp may have read the profile again
            pid, user_ids = self.ids.active(who.profile_id, cur)
            who = Who(who.customer, who.known, pid, tuple(dict.fromkeys((*user_ids, *who.user_ids))),
                      who.matched)
        at = now.replace(tzinfo=None)
        keys = list(dict.fromkeys((who.customer, *who.user_ids)))
        salt, suppressed = self._suppression
        if suppressed and salt is not None:
            from xrm.interact._suppression import hash_identifier

            region = self.store.settings.default_region
            if any(hash_identifier(salt, "customer", k, region=region) in suppressed for k in keys):
                return lambda offer: "suppressed (erased or opted out of all contact)"
        capped = None
        if self._contacts:
            policy = ContactPolicy(default_timezone=self.store.settings.default_timezone)
            used, total = self.contact_counts(keys, channel, at)
            capped = _over(used, policy.channel_caps.get(channel, Caps()), f"{channel} cap") or _over(
                total, policy.overall, "overall cap")
        consent_keys = who.user_ids if who.profile_id is not None else keys
        memo: dict[str, bool] = {}

        def refuse(offer: Offer) -> str | None:
            purpose = offer.consent_purpose
            if purpose:
                if purpose not in memo:
                    memo[purpose] = self.consented(consent_keys, channel, purpose, at)
                if not memo[purpose]:
                    return f"no valid {channel} consent for {purpose}"
            if capped and purpose != "service":
                return f"contact policy: {capped}"
            return None

        return refuse


def _over(counts: list[int], caps: Any, label: str) -> str | None:
    if caps.per_day is not None and counts[0] >= caps.per_day:
        return f"{label} of {caps.per_day} in 24 hours reached"
    if caps.per_week is not None and counts[1] >= caps.per_week:
        return f"{label} of {caps.per_week} in 7 days reached"
    return None


# -- the endpoint --------------------------------------------------------------------------------


@router.post(
    "/decide", summary="Next best offers for a customer", response_class=Response,
    responses={200: {"description": "Ranked offers with explanations and a decision id",
                     "content": {"application/json": {}}}},
)
async def decide(
    request: Request,
    body: DecideRequest,
    purpose: Annotated[str | None, Query(max_length=MAX_PURPOSE, description=_WHY)] = None,
    x_xrm_purpose: Annotated[str | None, Header(max_length=MAX_PURPOSE, description=_WHY)] = None,
) -> Response:
    """Ranked offers (expected value, P(response), propensity, explanation) and a decision id.

    Respond with a track event ``Offer Clicked`` / ``Offer Purchased`` / ``Offer Ignored`` whose
    properties carry ``decision_id`` and ``offer_id``: the policy learns from it at once. The
    decision is audited (``profile.decide``, the profile or customer decided for, the purpose from
    ``X-Xrm-Purpose`` or ``?purpose=``) with the decision log.
    """
    principal: Principal | None = getattr(request.state, "principal", None)
    return Response(await answer(request.app.state.decide, principal, body, x_xrm_purpose or purpose,
                                 request.url.path), media_type="application/json")


def _waits_for_landed(state: _State, writer: EventWriter, body: DecideRequest) -> bool:
    """Whether events acknowledged during a checkpoint and not in the store yet could change this
    decision: a consent change, an offer response or an identity change of the person, or any
    event of a user id the decide graph does not hold yet (a new customer)."""
    ids = (body.userId, body.anonymousId)
    if writer.landed_for(*ids, read_by_decisions=True):
        return True
    new_user = body.userId is not None and state.ids.pid_of.hit(body.userId) is None
    return new_user and writer.landed_for(body.userId)


async def answer(state: _State, principal: Principal | None, body: DecideRequest, purpose: str | None,
                 path: str) -> bytes:
    """The decision for a validated body, as JSON bytes: shared by the route above and the ASGI
    fast path that serves it in the server (:mod:`xrm.api._decide_asgi`)."""
    decider = await state.get()
    now = datetime.now(UTC)
    if state.writer is not None and _waits_for_landed(state, state.writer, body):
        await state.writer.settled()  # acknowledged during a checkpoint, in the store a moment later
    await state.fresh()  # everything committed before this request, in memory
    # On the loop, from memory but for a look-up now and then: the store's gate, urgent (it blocks
    # the loop only while a release of index memory runs: xrm.store._gate).
    with state.store.gate.shared(urgent=True):
        who = _find(state, decider, body)
        if principal is None:  # mounted without require(): refuse rather than decide unaudited
            raise ApiError(401, "missing_api_key", "Authorization: missing; this endpoint needs an API key")
        # Queued before deciding: a flush may write the audit row without its decision, never the reverse.
        state.audit.add(key_id=principal.key_id, key_name=principal.name, action="profile.decide",
                        target=_audit_target(who), purpose=purpose, method="POST", path=path)
        channel = body.context.channel
        decision = decider.decide(
            who.customer, channel, placement=body.context.placement, k=body.limit,
            refusal=state.gate.refusal(state.cur, who, channel, now, check=False), now=now,
        )
    answer = {
        "decisionId": decision.decision_id,
        "customer": {"key": decider.customer_key, "id": who.customer, "known": who.known,
                     "profileId": who.profile_id, "matchedBy": who.matched},
        "context": {"channel": channel, "placement": body.context.placement},
        "decidedAt": decision.decided_at.isoformat().replace("+00:00", "Z"),
        "explored": decision.explored,
        "offers": [
            {"rank": o.rank, "offerId": o.offer_id, "name": o.name,
             "expectedValue": round(o.expected_value, 6),
             "pResponse": round(o.p_response, 6), "pMean": round(o.p_mean, 6), "value": o.value,
             "cost": o.cost, "propensity": round(o.propensity, 6), "explanation": o.explanation}
            for o in decision.offers
        ],
        "ineligible": decision.ineligible,
    }
    # Plain JSON bytes: FastAPI's generic encoder costs about as much as the decision.
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def _audit_target(who: Who) -> str | None:
    """Whose data the decision read: the profile, else the decider's key for a known customer (a
    stranger's identifier is not written: it may itself be personal data)."""
    if who.profile_id is not None:
        return str(who.profile_id)
    return who.customer if who.known else None
