"""The one writer of the event API: group commits, so 200 means committed and throughput stays high.

Requests put their events on an asyncio queue and wait. One task takes everything queued (up to
``max_events``), and in one DuckDB transaction on its own thread checks the events with the
loader's SQL, stores the valid requests' events, resolves them to profiles (Identify's online
path, in bulk) and commits; then it answers each waiting request. While one group is being
written the next one gathers, so under load each commit carries many requests.

A request whose events break a rule stores nothing and gets its problems back; the other
requests of its group are not affected. If the resolution fails, the group is written again
without it (the events are kept; the next batch resolution, or the client's retry, resolves them).

The writer also checkpoints the store itself, between two groups (:meth:`EventWriter.checkpoint`):
every ``api_checkpoint_s`` seconds once the write-ahead log holds :data:`CHECKPOINT_MIN_WAL`; at
:data:`CHECKPOINT_AT_WAL` whatever the queue; and, with ``api_checkpoint_step_mib`` set, in steps of
that size while the queue is short (a checkpoint locks out every commit, so the requests queued
meanwhile wait for it: a small one costs them tens of milliseconds of CPU, one at 32 MiB hundreds).
Until a checkpoint DuckDB holds the committed rows in memory, and the commit that takes the log
over its own threshold checkpoints inside itself, so every request of that group waits for it.
With ``api_checkpoint_detour`` (the default) no request waits: the checkpoint runs on a thread of its
own and the groups that come meanwhile are committed into a landing file (:mod:`xrm.api._landing`),
moved into the store right after.

messageId de-duplication costs no look-up in the common case: the events go in with a plain
INSERT, and one already stored (a client's retry) fails it on the primary key before anything
else is written; the group is then written again with ``ON CONFLICT DO NOTHING``. (Asking first
which ids are stored joins them against ``events``, a scan that grew with the store.)

    >>> writer = EventWriter(store); await writer.start()  # doctest: +SKIP
    >>> outcome = await writer.submit(Submission("POST /v1/track", "web", [text], [event]))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from xrm.api._landing import SUFFIX as LANDING_SUFFIX
from xrm.api._landing import Landing, leftover_files
from xrm.exceptions import StoreError, StoreLost
from xrm.ingest import EventProblem, drop_staged, insert_staged_events, stage_events, staged_ids

# Not in xrm.ingest's public surface yet (tests/ingest pins it; another engineer's file).
from xrm.ingest._api_batch import QuickEvent, insert_quick_events, quick_event, store_quick_events
from xrm.interact import IdentifierCache, resolve_events

# Not in xrm.interact's surface.
from xrm.interact._timeline_resolve import StaleOwners, fold_activity

if TYPE_CHECKING:
    from xrm.store import Store

__all__ = ["EventWriter", "Outcome", "Submission", "WriterStats"]

log = logging.getLogger("xrm.api")


@dataclass
class Submission:
    """The events of one request: their JSON texts (as stored) and the parsed objects."""

    label: str  # "POST /v1/batch": kept as the file of rejected rows
    source: str  # the write key's source
    texts: list[str]
    events: list[dict[str, Any]]
    # quick_event of each event, worked out on the request's side so the writer need not.
    quick: list[QuickEvent | None] | None = None


@dataclass
class Outcome:
    problems: list[EventProblem]  # lines are positions in the request; empty: stored
    added: int = 0  # new events (the rest were already stored: retries)


@dataclass
class WriterStats:
    groups: int = 0
    requests: int = 0
    events_added: int = 0
    events_duplicate: int = 0
    requests_rejected: int = 0
    resolved_known: int = 0
    resolved_new: int = 0
    resolved_one_by_one: int = 0
    unresolved: int = 0
    resolution_failures: int = 0
    groups_with_retries: int = 0  # written twice: an event of the group was stored already
    folds: int = 0
    fold_seconds: float = 0.0
    fold_conflicts: int = 0  # groups written again after a fold they conflicted with
    cache_entries: dict[str, int] = field(default_factory=dict)  # each at most the cache's size
    write_seconds: float = 0.0
    group_sizes: list[int] = field(default_factory=list, repr=False)
    # The five longest group writes (ms): what sets the tail (a checkpoint inside a commit, a retry).
    slowest_ms: list[float] = field(default_factory=list)
    checkpoints: int = 0  # the writer's own (DuckDB's inside a commit are not counted)
    checkpoint_seconds: float = 0.0
    slowest_checkpoints_ms: list[float] = field(default_factory=list)  # the five longest
    checkpoints_skipped: int = 0  # another transaction was writing (or the fold ran): later
    # The last five: when (UTC), how long the writer (and every commit beside it) waited, log size.
    last_checkpoints: list[dict[str, Any]] = field(default_factory=list)
    # Checkpoints with a detour (api_checkpoint_detour): groups committed into landing files meanwhile,
    # and their moves into the store (see xrm.api._landing).
    detours: int = 0
    groups_landed: int = 0
    events_landed: int = 0
    landing_moves: int = 0
    landing_move_seconds: float = 0.0
    landing_move_failures: int = 0
    # Index memory (api_index_memory_mb): what DuckDB kept of the indexes after the last checkpoint
    # (MiB), and the checkpoints that were releases (the store detached and attached again) instead.
    index_mb_after_checkpoint: float = 0.0
    releases: int = 0
    release_seconds: float = 0.0
    releases_skipped: int = 0  # the store's users did not leave it within RELEASE_WAIT_S: later
    last_releases: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "group_sizes"}
        d["mean_group_events"] = (sum(self.group_sizes) / len(self.group_sizes)) if self.group_sizes else 0
        return d


# How long a release (api_index_memory_mb) waits for the requests inside the store to leave it, while
# no new one enters and the writer's queue grows; if they stay, it gives up and is tried again after
# the next checkpoint. A profile read takes tens of ms, a decision's store read a few.
RELEASE_WAIT_S = 1.0
# At most one release in this many seconds: after one, reads and inserts load the buffers they need
# again (each a read from the file), so releasing at every move would cost more than it frees.
RELEASE_EVERY_S = 30.0

# Events per group commit at most. The writer commits as soon as the previous commit is done, so
# the group is what queued meanwhile; the cap bounds how long one commit (and so the wait of
# every request in it) can take when a burst queues up. Session 5: 1,000 (was 2,000), about 30 ms
# of writer time on a quiet machine; past 400 events a commit's cost per event hardly falls.
MAX_EVENTS = 1_000

# DuckDB checkpoints inside the commit that takes the write-ahead log over this size, and every
# request of that group waits for it (bench ingest_api: up to 1.5 s on a loaded machine at the
# default 16 MB, one commit in a few dozen). Session 7: a backstop only; the writer checkpoints
# between groups long before (below), unless api_checkpoint_s is 0.
CHECKPOINT_WAL = "128MiB"

# The writer's own checkpoints: every settings.api_checkpoint_s once the log holds CHECKPOINT_MIN_WAL
# (none for a few rows), and at CHECKPOINT_AT_WAL whatever the time. Until one, DuckDB holds the
# committed rows in memory (bench mixed, session 6: +7.5 MB/min at 85 events/s, no checkpoint in
# 10 minutes at 128 MiB); a checkpoint's time grows with the log, and every commit waits for it.
CHECKPOINT_MIN_WAL = 1 << 20
CHECKPOINT_AT_WAL = 32 << 20
# A checkpoint's stall grows with the log (bench ingest_api writes about 0.6 MB of log per
# 1,000 events, so 32 MiB every ~5 s at 10,000 events/s, each a 250 ms+ stall: the open loop's p99).
# settings.api_checkpoint_step_mib (off by default) checkpoints in smaller steps between groups while
# fewer than half a group's events are queued; CHECKPOINT_AT_WAL stays the backstop whatever the queue.

# The counters a commit saw (identifiers' n_seen and last_seen, profiles' updated_at, evidence's
# n_seen) are appended to identity_activity and added in by a fold of their own: when the writer
# finds its queue empty and FOLD_SECONDS have passed, or after FOLD_MAX_SECONDS whatever the load,
# and at start and at stop. Session 6: the fold runs on a thread and cursor of its own, beside the
# commits, instead of between two of them (where every request that came meanwhile waited for it,
# 50-250 ms once every 5-30 s: at a steady rate, about 1% of requests). Readers of those counters
# see them up to FOLD_MAX_SECONDS late; events and profiles are there at the 200.
FOLD_SECONDS = 5.0
FOLD_MAX_SECONDS = 30.0

# With settings.api_checkpoint_detour the writer's checkpoint runs on a thread of its own and the
# groups that come meanwhile are committed into a landing file (xrm.api._landing), so no request
# waits for it. Once it is done, a full landing file is moved into the store on that thread while
# the writer lands into a fresh one, until one holds fewer than SWITCH_BACK events: the writer
# moves that one itself, before its next group, and commits into the store again.
SWITCH_BACK = 500
# Events in the file being landed into at most while another is moved: past it the writer waits
# for that move (back-pressure when more comes than the store takes in; it bounds a reader's wait).
MAX_LANDED = 20_000
# How long a reader waits for landed events to reach the store before it reads without them.
SETTLE_WAIT_S = 10.0


def _decision_reads(q: QuickEvent) -> bool:
    """Whether /v1/decide reads this event (its hooks: consent, responses; identity changes)."""
    from xrm.customize import RESPONSE_EVENTS

    return q.type in ("identify", "alias") or (
        q.type == "track" and (q.event == "Consent Updated" or q.event in RESPONSE_EVENTS))


class _Wake:
    """Queued by the background thread when its checkpoint or move is done: the writer looks."""


_WAKE = _Wake()


def _keep_longest(longest: list[float], ms: float, n: int = 5) -> None:
    """Keep the ``n`` largest values in ``longest`` (descending)."""
    if len(longest) < n or ms > longest[-1]:
        longest.append(round(ms, 1))
        longest.sort(reverse=True)
        del longest[n:]


class _ResolveFailed(Exception):
    pass


def _conflict(exc: BaseException) -> bool:
    """A write-write conflict with the fold running beside the commit (the online path's merges
    update identifiers and profiles, as the fold does): the group is written again after it."""
    cause = exc.__cause__ if isinstance(exc, _ResolveFailed) else exc
    return isinstance(cause, duckdb.TransactionException) and "onflict" in str(cause)


class _FoldOverlap(Exception):
    """A group that updated rows in place (one-by-one resolution: merges, the fold inside it) while
    a fold ran beside it: written again with the fold's lock held. DuckDB finds a write-write
    conflict only for some updates (not when an update sets several columns), so none is risked."""


class _Retry(Exception):
    """A plain insert met an event already stored (a client's retry): write the group again, asking."""


def _warm_up(cur: duckdb.DuckDBPyConnection) -> None:
    """Import what the first group would (pyarrow; DuckDB's Arrow scan pulls in pandas): a second
    or more on a busy machine, which would otherwise hold up the first requests."""
    import pyarrow as pa

    cur.register("__xrm_w", pa.table({"x": [1]}))
    try:
        cur.execute("SELECT count(*) FROM __xrm_w").fetchall()
    finally:
        cur.unregister("__xrm_w")


class EventWriter:
    """Owns the store's write path while the server runs (one thread, one cursor)."""

    def __init__(
        self, store: Store, *, max_events: int = MAX_EVENTS, cache_size: int | None = None
    ) -> None:
        self.store = store
        self.max_events = max_events
        # Entries per identifier-cache map (see IdentifierCache): settings.api_writer_cache.
        self.cache_size = cache_size or store.settings.api_writer_cache
        self.checkpoint_every = store.settings.api_checkpoint_s  # 0: DuckDB's own only
        self.checkpoint_step = int(store.settings.api_checkpoint_step_mib * 2**20)  # 0: no steps
        # Past this (MiB of index buffers kept after a checkpoint), the next checkpoint is a release.
        self.index_budget_mb = store.settings.api_index_memory_mb if store.releasable else 0.0
        self._release_tried = float("-inf")
        self._landing_ckpt_at = float("-inf")  # the last checkpoint tried while landing
        self._checkpointed_at = time.monotonic()
        self._wal = store.path.with_name(store.path.name + ".wal")
        self._folded_at = time.monotonic()
        self._unfolded = False  # a commit since the last fold appended counters
        self.load_id = f"api-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.stats = WriterStats()
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[Outcome]] | _Wake | None] = (
            asyncio.Queue())
        self._queued_events = 0  # events of the requests in the queue (a checkpoint waits for a short one)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xrm-writer")
        # The fold: its own thread and cursor (a transaction beside the commits), one at a time.
        self._fold_executor = ThreadPoolExecutor(1, thread_name_prefix="xrm-fold")
        # The detour: the checkpoint, then moves of landing files, on a thread of their own. While a
        # detour lasts the writer thread commits only into landing files (its own cursor), and the
        # background job alone writes the store (self._cur): never both at once.
        self.detour = store.settings.api_checkpoint_detour
        self._bg_executor = ThreadPoolExecutor(1, thread_name_prefix="xrm-checkpoint")
        self._bg_job: Future[None] | None = None
        self._landing: Landing | None = None  # the file groups are landed in now
        self._unmoved: list[Landing] = []  # files whose move failed: tried again
        self._move_error: BaseException | None = None  # why the last move failed
        # Landing files not moved yet, and events landed so far: a reader waits for the files that
        # hold events landed before it came (under load the writer may land for many seconds).
        self._pending: list[Landing] = []
        self._landed_total = 0
        self._moved = threading.Condition()
        self._landing_names = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ckpt_cur: duckdb.DuckDBPyConnection | None = None
        self._land_cur: duckdb.DuckDBPyConnection | None = None
        self._fold_lock = threading.Lock()
        self._fold_gen = 0  # odd while a fold runs; a group compares it at BEGIN and before COMMIT
        self._folding: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._fold_cur: duckdb.DuckDBPyConnection | None = None
        self._cache: IdentifierCache | None = None
        self._staged = False  # __xrm_n exists (some events of the group went through the SQL)
        # Called after each commit into the store with the (message id, event) pairs stored for the
        # first time, before the requests are answered (decide: responses and consent); on the writer
        # thread, or on the background one while it moves landed events (never both at once).
        self.on_commit: list[Callable[[list[tuple[str, dict[str, Any]]]], None]] = []

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def wal_bytes(self) -> int:
        """The size of the store's write-ahead log (0: none)."""
        try:
            return os.stat(self._wal).st_size
        except OSError:
            return 0

    def checkpoint_due(self) -> bool:
        if not self.checkpoint_every or self._landing is not None or self._bg_busy():
            return False
        wal = self.wal_bytes()
        if wal >= CHECKPOINT_AT_WAL:
            return True
        if self.checkpoint_step and wal >= self.checkpoint_step and 2 * self._queued_events < self.max_events:
            return True
        return wal >= CHECKPOINT_MIN_WAL and time.monotonic() - self._checkpointed_at >= self.checkpoint_every

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)
        self._task = asyncio.create_task(self._run(), name="xrm-event-writer")

    async def stop(self) -> None:
        """Write what is queued, then close the write path."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._folding is not None:
            await self._folding
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
        self._fold_executor.shutdown(wait=True)
        self._bg_executor.shutdown(wait=True)

    async def submit(self, submission: Submission) -> Outcome:
        if self.store.lost:
            raise StoreLost(self.store.lost)
        if self._task is None or self._task.done():
            raise RuntimeError("the event writer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queued_events += len(submission.texts)
        await self._queue.put((submission, future))
        return await future

    def landed_for(self, *ids: str | None, read_by_decisions: bool = False) -> bool:
        """Whether events of these user or anonymous ids (any, if none is given) are landed and not
        in the store yet (a checkpoint's detour); ``read_by_decisions``: only events a decision
        reads (consent changes, offer responses, identify and alias calls)."""
        given = [i for i in ids if i]
        return any(f.holds(given, read_by_decisions) for f in list(self._pending))

    @property
    def pending(self) -> bool:
        """Landed events not in the store yet (a reader may have to wait: :meth:`wait_settled`)."""
        return bool(self._pending)

    def wait_settled(self, timeout: float = SETTLE_WAIT_S) -> bool:
        """Block until every landed event is in the store (readers: read your writes); False on timeout."""
        with self._moved:
            target = self._landed_total
            return self._moved.wait_for(lambda: self._moved_up_to(target), timeout)

    def _moved_up_to(self, landed: int) -> bool:
        return not any(f.first is not None and f.first <= landed for f in self._pending)

    async def settled(self, timeout: float = SETTLE_WAIT_S) -> bool:
        if not self._pending:
            return True
        return await asyncio.get_running_loop().run_in_executor(None, self.wait_settled, timeout)

    # -- the writer task -----------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._run_groups()
        except Exception:
            log.exception("the event writer stopped; every request now answers 503")
            raise
        finally:  # nothing queued waits for an answer that would never come
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if isinstance(item, tuple) and not item[1].done():
                    item[1].set_exception(StoreLost(self.store.lost) if self.store.lost
                                          else RuntimeError("the event writer stopped"))

    async def _run_groups(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            # Idle with counters not folded in, or a log to checkpoint: look again every FOLD_SECONDS.
            waiting = self._unfolded or (self.checkpoint_every > 0 and self.wal_bytes() >= CHECKPOINT_MIN_WAL)
            waiting = waiting or self._landing is not None or bool(self._unmoved)
            try:
                item = await (asyncio.wait_for(self._queue.get(), FOLD_SECONDS) if waiting
                              else self._queue.get())
            except TimeoutError:
                if self._unfolded:
                    self._fold_soon(loop)
                await self._housekeep(functools.partial(self._settle, final=True))
                if self.checkpoint_due():
                    await self._housekeep(self._checkpoint_now)
                continue
            if item is None:
                break
            if isinstance(item, _Wake):  # the background job is done: move or end the detour
                await self._housekeep(self._settle)
                continue
            group = [item]
            size = len(item[0].texts)
            while size < self.max_events and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                if isinstance(nxt, _Wake):  # looked at with this group (_write_or_land)
                    continue
                group.append(nxt)
                size += len(nxt[0].texts)
            self._queued_events -= size
            subs = [s for s, _ in group]
            try:
                if self.store.lost:  # nothing more can be written: every request answers 503 at once
                    raise StoreLost(self.store.lost)
                outcomes = await loop.run_in_executor(self._executor, self._write_or_land, subs)
            except Exception as exc:
                self.store.note_fault(exc)
                if not isinstance(exc, StoreLost):  # (the first loss is logged where it happened)
                    log.exception("writing %d requests failed; they were answered 503", len(subs))
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), outcome in zip(group, outcomes, strict=True):
                if not fut.done():  # the client may have gone; its events are stored all the same
                    fut.set_result(outcome)
            if self.checkpoint_due():  # answered first: the next group gathers meanwhile
                await self._housekeep(self._checkpoint_now)
            due = time.monotonic() - self._folded_at
            if self._unfolded and (due >= FOLD_MAX_SECONDS or (due >= FOLD_SECONDS and self._queue.empty())):
                self._fold_soon(loop)

    async def _housekeep(self, job: Callable[[], object]) -> None:
        """A checkpoint or a move between groups, on the writer's thread. Its failure (DuckDB out of
        memory, say) is logged and tried again later: left uncaught it ended the writer task, and
        the requests queued behind it waited for ever."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except Exception as exc:
            self.store.note_fault(exc)
            log.exception("the writer's checkpoint or move failed; tried again later")

    def _fold_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a fold on its own thread unless one runs; the writer does not wait for it."""
        if self._folding is None or self._folding.done():
            self._folding = asyncio.create_task(self._fold_logged(loop), name="xrm-fold")

    async def _fold_logged(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.run_in_executor(self._fold_executor, self.fold)
        except Exception as exc:
            if _conflict(exc):  # a merge of the commits' updated a row it counts: next time
                log.info("folding identity_activity met a commit's update; tried again later")
            elif self.store.note_fault(exc) == "lost":
                log.error("folding identity_activity failed: the store was lost (%s)", self.store.lost)
            else:
                log.exception("folding identity_activity failed; tried again later")

    # -- on the writer thread ------------------------------------------------------------------

    def _open(self) -> None:
        from xrm.identify import IdentityRules

        self._cur = self.store.con.cursor()
        self._cur.execute("SET SESSION TimeZone = 'UTC'")
        self._cur.execute(f"SET checkpoint_threshold = '{CHECKPOINT_WAL}'")  # the server owns the store
        self._fold_cur = self.store.con.cursor()
        self._fold_cur.execute("SET SESSION TimeZone = 'UTC'")
        self._ckpt_cur = self.store.con.cursor()
        self._land_cur = self.store.con.cursor()
        if self.index_budget_mb:  # its transactions then hold only landing files: a release runs beside
            self._land_cur.execute("USE memory")
        _warm_up(self._cur)
        self._cache = IdentifierCache(IdentityRules.for_settings(self.store.settings), self.cache_size)
        self.fold()  # what a killed server had not folded in yet
        self._cur.execute(
            "INSERT INTO loads (load_id, file, sha256, kind, source, started_at, status) "
            "VALUES (?, 'xrm serve', ?, 'events', 'api', timezone('UTC', now()), 'running')",
            [self.load_id, self.load_id],
        )
        # What a killed server had landed and not moved yet: into the store before serving.
        for path in leftover_files(self.store.path):
            landing = Landing(self._cur, path, self._landing_name(), self.store.encryption_key)
            log.info("moving %s, left by a server that stopped during a checkpoint", path.name)
            self._move(landing)

    def fold(self) -> int:
        """Add the counters of identity_activity in: own cursor and transaction, one fold at a time.

        Commits go on meanwhile. Their appends are not in the fold's snapshot, so they are neither
        added nor deleted by it; a commit that updated rows in place (an online merge) while a
        fold ran, or met one's update, is written again once it is done (:meth:`_attempt_alone`).
        """
        with self._fold_lock:
            cur = self._fold_cur
            assert cur is not None
            started = time.perf_counter()
            # Before the snapshot: a commit after it says again that there is something to fold.
            self._unfolded = False
            self._folded_at = time.monotonic()
            self._fold_gen += 1
            cur.execute("BEGIN TRANSACTION")
            try:
                n = fold_activity(cur)
                cur.execute("COMMIT")
            except BaseException:
                self._unfolded = True
                with contextlib.suppress(Exception):
                    cur.execute("ROLLBACK")
                raise
            finally:
                self._fold_gen += 1
            self.stats.folds += 1
            self.stats.fold_seconds += time.perf_counter() - started
            return n

    def checkpoint(self, cur: duckdb.DuckDBPyConnection | None = None) -> bool:
        """CHECKPOINT the store on the writer's thread, between two groups; True if it was done.

        DuckDB's checkpoint locks out every commit meanwhile (measured: one from another cursor
        waits for it), so no request is inside a commit that pays for it, but one queued meanwhile
        waits. DuckDB 2.0 sometimes checkpoints beside another cursor's writing transaction and
        sometimes refuses ("other write transactions active": the bench's server, /v1/decide's log
        or an audit row); a refusal is counted as skipped and the next group tries again (left
        uncaught, it ended the writer task: every batch after it answered 503). ``cur``: the
        background thread's cursor for a checkpoint with a detour."""
        cur = cur or self._cur
        assert cur is not None
        if not self._fold_lock.acquire(blocking=False):  # a fold's transaction is open
            self.stats.checkpoints_skipped += 1
            return False
        try:
            before = self.wal_bytes()
            started = time.perf_counter()
            try:
                cur.execute("CHECKPOINT")
            except duckdb.Error as exc:  # "other write transactions active" (or any refusal): the next
                self.stats.checkpoints_skipped += 1  # group tries again; a fatal one loses the store
                self.store.note_fault(exc)
                return False
            took = time.perf_counter() - started
        finally:
            self._fold_lock.release()
        after = self.wal_bytes()
        s = self.stats
        if before and after >= before:
            s.checkpoints_skipped += 1
            return False
        self._checkpointed_at = time.monotonic()
        if self.index_budget_mb:  # what the checkpoint left loaded: look-ups' buffers, not inserts'
            s.index_mb_after_checkpoint = self.store.index_memory_mb()
        s.checkpoints += 1
        s.checkpoint_seconds += took
        _keep_longest(s.slowest_checkpoints_ms, 1000 * took)
        s.last_checkpoints.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "ms": round(1000 * took, 1), "wal_mb": round(before / 2**20, 1)})
        del s.last_checkpoints[:-5]
        return True

    def cache_sizes(self) -> dict[str, int]:
        return self._cache.sizes() if self._cache is not None else {}

    def _close(self) -> None:
        if self._cur is None:
            return
        try:
            self._settle(final=True)
        except Exception:  # kept in their landing files: moved at the next start
            log.exception("moving landed events into the store failed; they are moved at the next start")
        with contextlib.suppress(Exception):
            self.fold()
        s = self.stats
        with contextlib.suppress(Exception):
            self._cur.execute(
                "UPDATE loads SET status = 'done', finished_at = timezone('UTC', now()), "
                "rows_read = ?, rows_loaded = ?, rows_duplicate = ?, rows_rejected = "
                "(SELECT count(*) FROM rejected_rows WHERE load_id = ?) WHERE load_id = ?",
                [s.events_added + s.events_duplicate, s.events_added, s.events_duplicate,
                 self.load_id, self.load_id],
            )
        self._cur.close()
        self._cur = None
        for name in ("_fold_cur", "_ckpt_cur", "_land_cur"):
            other = getattr(self, name)
            if other is not None:
                other.close()
                setattr(self, name, None)

    # -- the checkpoint's detour (writer thread, and the background job it starts) ------------------

    def _checkpoint_now(self) -> None:
        """A due checkpoint: on this thread, or with api_checkpoint_detour on the background thread
        while this one lands the groups that come meanwhile."""
        release = self._release_due()
        if not self.detour:
            if not (release and self._release()):
                self.checkpoint()
            return
        self._landing = self._new_landing()
        self.stats.detours += 1
        job = self._release if release else functools.partial(self.checkpoint, self._ckpt_cur)
        self._bg_job = self._bg_executor.submit(self._in_background, job)

    def _release_due(self) -> bool:
        """Whether the last checkpoint left more index buffers loaded than ``api_index_memory_mb``
        (at most one release every RELEASE_EVERY_S): then this checkpoint is a release. What a
        checkpoint leaves is what look-ups loaded (it frees what inserts changed), which nothing but
        a release frees; what inserts load between checkpoints a checkpoint frees anyway."""
        if not self.index_budget_mb or time.monotonic() - self._release_tried < RELEASE_EVERY_S:
            return False
        if self.stats.index_mb_after_checkpoint < self.index_budget_mb:
            return False
        self._release_tried = time.monotonic()
        return True

    def _checkpoint_while_landing(self) -> bool:
        """Under steady load the writer stays in landing mode, where no checkpoint of its own is due
        (DuckDB's inside a move's commit, at 128 MiB of log, only): one on the background thread
        between two moves once ``api_checkpoint_s`` has passed, while the groups keep landing."""
        now = time.monotonic()
        # (tried at most once an interval: a refused checkpoint must not hold the moves off)
        last = max(self._checkpointed_at, self._landing_ckpt_at)
        if not self.checkpoint_every or now - last < self.checkpoint_every:
            return False
        if self.wal_bytes() < CHECKPOINT_MIN_WAL:
            return False
        self._landing_ckpt_at = now
        job = self._release if self._release_due() else functools.partial(self.checkpoint, self._ckpt_cur)
        self.stats.detours += 1
        self._bg_job = self._bg_executor.submit(self._in_background, job)
        return True

    def _release(self) -> bool:
        """Instead of a checkpoint: detach the store and attach it again (its DETACH checkpoints),
        which frees the index buffers DuckDB keeps (docs/api.md, "Memory under load"). On the
        background thread while the writer lands the groups that come (its landing cursor's
        transactions do not hold the store), or without a detour on the writer's thread. Every other
        user of the store is held at its gate meanwhile. False: not done (a fold ran, or a request
        stayed inside the store for RELEASE_WAIT_S)."""
        s = self.stats
        if not self._fold_lock.acquire(blocking=False):
            s.releases_skipped += 1
            return False
        try:
            before_mb, wal = self.store.index_memory_mb(), self.wal_bytes()
            started = time.perf_counter()
            with self.store.gate.alone(RELEASE_WAIT_S) as got:
                waited = time.perf_counter() - started
                if not got:
                    s.releases_skipped += 1
                    log.info("index memory not released: the store's users stayed %.1f s", waited)
                    return False
                self.store.release_index_memory()
                took = time.perf_counter() - started
        finally:
            self._fold_lock.release()
        self._checkpointed_at = time.monotonic()
        s.index_mb_after_checkpoint = self.store.index_memory_mb()
        s.releases += 1
        s.release_seconds += took
        s.last_releases.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "ms": round(1000 * took, 1), "waited_ms": round(1000 * waited, 1),
                                "index_mb": round(before_mb, 1), "wal_mb": round(wal / 2**20, 1)})
        del s.last_releases[:-5]
        return True

    def _in_background(self, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception as exc:  # a refused checkpoint is counted inside; a move keeps its file (_unmoved)
            self.store.note_fault(exc)
            log.exception("the writer's background job failed")
        finally:  # the writer looks at once (it may be idle, with readers waiting for the move)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._queue.put_nowait, _WAKE)

    def _bg_busy(self) -> bool:
        return self._bg_job is not None and not self._bg_job.done()

    def _new_landing(self) -> Landing:
        assert self._land_cur is not None
        name = self._landing_name()
        stem = self.store.path.name + LANDING_SUFFIX
        path = self.store.path.with_name(f"{stem}{self.load_id}-{self._landing_names}")
        landing = Landing(self._land_cur, path, name, self.store.encryption_key)
        with self._moved:
            self._pending.append(landing)
        return landing

    def _landing_name(self) -> str:
        self._landing_names += 1
        return f"__xrm_landing_{self._landing_names}"

    def _write_or_land(self, subs: Sequence[Submission]) -> list[Outcome]:
        """A group: into the store, or during a detour into the landing file."""
        if self._landing is not None or self._unmoved:
            stuck = sum(f.events for f in self._unmoved)
            if stuck >= MAX_LANDED:  # the store takes nothing in: landing more would only pile up files
                self._settle()  # (tries the moves again)
                stuck = sum(f.events for f in self._unmoved)
                if stuck >= MAX_LANDED:
                    raise StoreError(f"{stuck} landed events could not be moved into the store "
                                     f"({type(self._move_error).__name__}); none taken until they are"
                                     ) from self._move_error
            if not all(s.quick is not None and None not in s.quick for s in subs):
                self._settle(final=True)  # its problems come from the store's SQL: after the detour
            else:
                full = self._landing is not None and self._landing.events >= MAX_LANDED
                if full and self._bg_job is not None:
                    self._bg_job.result()  # more comes than the store takes in: wait for the move
                self._settle()
            if self._landing is not None:
                return self._land(subs)
        return self._write_group(subs)

    def _land(self, subs: Sequence[Submission]) -> list[Outcome]:
        landing = self._landing
        assert landing is not None and self._land_cur is not None
        rows = [(s.source, t) for s in subs for t in s.texts]
        started = time.perf_counter()
        landing.land(self._land_cur, rows)
        _keep_longest(self.stats.slowest_ms, 1000 * (time.perf_counter() - started))
        quick = [q for s in subs for q in s.quick or () if q is not None]
        who = {i for q in quick for i in (q.user_id, q.anonymous_id) if i}
        key = {i for q in quick if _decision_reads(q) for i in (q.user_id, q.anonymous_id) if i}
        with self._moved:
            if landing.first is None:
                landing.first = self._landed_total + 1
            self._landed_total += len(rows)
            landing.who |= who
            landing.key_who |= key
        self.stats.groups_landed += 1
        self.stats.events_landed += len(rows)
        # Retries among them are found when they are moved (the events primary key).
        return [Outcome([], added=len(s.texts)) for s in subs]

    def _settle(self, *, final: bool = False) -> None:
        """Once the background job is done (``final``: waiting for it): move the landing file into
        the store here if it is small (or ``final``), else hand it to the background and land in a
        fresh one. A move that fails keeps its file for the next try (``_unmoved``)."""
        if self._bg_job is not None:
            if not final and self._bg_busy():
                return
            self._bg_job.result()  # (its errors are caught and logged inside)
            self._bg_job = None
        for failed in self._unmoved[:]:
            self._unmoved.remove(failed)
            self._move_logged(failed)
        landing = self._landing
        big = landing is not None and landing.events >= SWITCH_BACK
        if big and not final and self._checkpoint_while_landing():
            return  # the move after it
        if landing is not None:
            if final or landing.events < SWITCH_BACK:
                self._landing = None
                self._move_logged(landing)
            else:
                self._landing = self._new_landing()
                self._bg_job = self._bg_executor.submit(self._in_background, lambda: self._move(landing))

    def _move_logged(self, landing: Landing) -> None:
        try:
            self._move(landing)
        except Exception as exc:
            self.store.note_fault(exc)
            log.exception("moving %s into the store failed; tried again later", landing.path.name)

    def _move(self, landing: Landing) -> None:
        """The landed groups into the store through the ordinary write path, then the file away.
        On failure the file stays (listed in ``_unmoved``) and is moved again later."""
        assert self._cur is not None
        started = time.perf_counter()
        try:
            for run in landing.rows(self._cur):
                for at in range(0, len(run), self.max_events):
                    texts = [t for _, t in run[at:at + self.max_events]]
                    events = [orjson.loads(t) for t in texts]
                    quick = [quick_event(e, t) for e, t in zip(events, texts, strict=True)]
                    source = run[0][0]
                    subs = [Submission("landed events", source, texts, events, quick)]
                    if None in quick:  # checked before landing, so never; else each alone: a bad one
                        subs = [Submission("landed events", source, [t], [e], [q])  # keeps only itself out
                                for t, e, q in zip(texts, events, quick, strict=True)]
                    problems = [p for out in self._write_group(subs) for p in out.problems]
                    if problems:  # kept aside in rejected_rows with their reasons
                        log.error("%d landed events broke a rule when moved: %s", len(problems), problems[:3])
            landing.remove(self._cur)
            with self._moved:
                if landing in self._pending:
                    self._pending.remove(landing)
                self._moved.notify_all()
        except Exception as exc:
            self.stats.landing_move_failures += 1
            self._unmoved.append(landing)
            self._move_error = exc
            raise
        self.stats.landing_moves += 1
        self.stats.landing_move_seconds += time.perf_counter() - started

    def _write_group(self, subs: Sequence[Submission]) -> list[Outcome]:
        started = time.perf_counter()
        try:
            outcomes = self._write_checked(subs)
        finally:
            took = time.perf_counter() - started
            self.stats.write_seconds += took
            _keep_longest(self.stats.slowest_ms, 1000 * took)
        s = self.stats
        if self._cache is not None:
            s.cache_entries = self._cache.sizes()
        s.groups += 1
        s.requests += len(subs)
        s.group_sizes.append(sum(len(x.texts) for x in subs))
        del s.group_sizes[:-1000]
        for sub, out in zip(subs, outcomes, strict=True):
            if out.problems:
                s.requests_rejected += 1
            else:
                s.events_added += out.added
                s.events_duplicate += len(sub.texts) - out.added
        return outcomes

    def _write_checked(self, subs: Sequence[Submission]) -> list[Outcome]:
        """The group, written again where it must be: stale owners, or no resolution at all."""
        try:
            try:
                return self._attempt_alone(subs, resolve=True)
            except _ResolveFailed as exc:
                if not isinstance(exc.__cause__, StaleOwners):
                    raise
                # The graph changed behind the remembered owners (rolled back, forgotten): again.
                log.info("identifier cache was stale (%s); the group is resolved again", exc.__cause__)
                return self._attempt_alone(subs, resolve=True)
        except _ResolveFailed as exc:
            log.error("online identity resolution failed (%s); events stored unresolved", exc.__cause__)
            self.stats.resolution_failures += 1
            return self._attempt_alone(subs, resolve=False)

    def _attempt_alone(self, subs: Sequence[Submission], *, resolve: bool) -> list[Outcome]:
        """:meth:`_attempt`; on a conflict with the fold beside it, again once the fold is done
        (holding its lock, so no fold starts meanwhile). Nothing of the failed try was committed."""
        try:
            return self._attempt(subs, resolve=resolve, alone=False)
        except (duckdb.TransactionException, _ResolveFailed, _FoldOverlap) as exc:
            if not isinstance(exc, _FoldOverlap) and not _conflict(exc):
                raise
            self.stats.fold_conflicts += 1
            log.info("a group overlapped the fold (%s); written again after it", exc)
            with self._fold_lock:
                return self._attempt(subs, resolve=resolve, alone=True)

    def _attempt(self, subs: Sequence[Submission], *, resolve: bool, alone: bool = True) -> list[Outcome]:
        """One transaction; a second if an event of the group is stored already (a client's retry).

        Events go in first with a plain INSERT, the cheapest statement: no look-up of which ids
        are stored (a join that scans ``events``). One already stored makes it fail on the primary
        key before anything else is written, and the group is written again with
        ``ON CONFLICT DO NOTHING``, which says which ids it added."""
        try:
            return self._transaction(subs, resolve=resolve, asking=False, alone=alone)
        except _Retry:
            self.stats.groups_with_retries += 1
            return self._transaction(subs, resolve=resolve, asking=True, alone=alone)

    def _transaction(
        self, subs: Sequence[Submission], *, resolve: bool, asking: bool, alone: bool = True
    ) -> list[Outcome]:
        """``alone``: the caller holds the fold's lock; else a group that updated rows in place
        commits only if no fold ran meanwhile (else :class:`_FoldOverlap`, rolled back)."""
        cur = self._cur
        assert cur is not None and self._cache is not None
        outcomes = [Outcome([]) for _ in subs]
        pairs: list[tuple[str, dict[str, Any]]] = []
        fresh: set[str] = set()
        gen = self._fold_gen
        held = False
        cur.execute("BEGIN TRANSACTION")
        try:
            # One staging per source (the source is a column of every stored event).
            for source in dict.fromkeys(s.source for s in subs):
                members = [k for k, s in enumerate(subs) if s.source == source]
                pairs += self._store_source(cur, subs, members, outcomes, fresh, asking)
            if resolve and pairs:
                try:
                    summary = resolve_events(
                        cur, self.store.settings, pairs, self._cache, fresh_ids=fresh, deferred=True
                    )
                except Exception as exc:
                    raise _ResolveFailed(str(exc)) from exc
                st = self.stats
                st.resolved_known += summary.known
                st.resolved_new += summary.new
                st.resolved_one_by_one += summary.one_by_one
                st.unresolved += summary.unresolved
                if summary.one_by_one and not alone:  # in place: only with no fold beside it
                    held = self._fold_lock.acquire(blocking=False)
                    if not held or gen != self._fold_gen or gen % 2:
                        raise _FoldOverlap(f"{summary.one_by_one} events resolved one by one")
            cur.execute("COMMIT")
            self._unfolded = self._unfolded or bool(resolve and pairs)
        except BaseException as exc:
            if not isinstance(exc, _Retry):  # (a retry fails before any resolution)
                self._cache.forget_owners()  # what it learnt in this transaction did not happen
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        finally:
            if held:
                self._fold_lock.release()
            if self._staged:
                self._staged = False
                with contextlib.suppress(Exception):
                    drop_staged(cur)
        stored = [(m, e) for m, e in pairs if m in fresh]
        for hook in self.on_commit if stored else ():
            try:
                hook(stored)
            except Exception:
                log.exception("after-commit hook %r failed; the events are stored", hook)
        return outcomes

    def _store_source(
        self,
        cur: duckdb.DuckDBPyConnection,
        subs: Sequence[Submission],
        members: list[int],
        outcomes: list[Outcome],
        fresh: set[str],
        asking: bool,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Check and store one source's events; return (message id, event) of those kept.

        ``fresh`` gets the ids stored for the first time (so not resolved yet)."""
        # Plainly valid events skip the loader's SQL (its planning is the fixed cost of a group);
        # the rest, valid or not, are checked and worded by that SQL (see xrm.ingest._api_batch).
        quick: list[tuple[int, int, QuickEvent, str]] = []  # (member, position, fields, text)
        slow: list[tuple[int, int]] = []
        slow_texts: list[str] = []
        for m, k in enumerate(members):
            sub = subs[k]
            checked = sub.quick or [quick_event(e, t) for e, t in zip(sub.events, sub.texts, strict=True)]
            for j, (text, q) in enumerate(zip(sub.texts, checked, strict=True)):
                if q is None:
                    slow.append((m, j))
                    slow_texts.append(text)
                else:
                    quick.append((m, j, q, text))
        bad: set[int] = set()
        rejects = []
        kept: list[tuple[int, int, str]] = []
        if slow_texts:
            self._staged = True
            for p in stage_events(cur, slow_texts):
                m, j = slow[p.line]
                k = members[m]
                local = EventProblem(j, p.field, p.value, p.reason)
                outcomes[k].problems.append(local)
                bad.add(m)
                rejects.append((subs[k].label, local, slow_texts[p.line]))
            kept = [(*slow[line], mid) for line, mid in staged_ids(cur) if slow[line][0] not in bad]
        kept += [(m, j, q.message_id) for m, j, q, _ in quick if m not in bad]
        kept.sort()
        source = subs[members[0]].source
        # Which ids are stored already (retries)? With slow events (the loader's SQL stores with
        # INSERT OR IGNORE, which does not say) a look-up first; otherwise none are assumed, and a
        # plain INSERT fails on the first one (_Retry); asking, ON CONFLICT DO NOTHING says.
        stored = self._stored(cur, [mid for _, _, mid in kept]) if slow_texts else set()
        taken = set(stored)
        new_rows: list[tuple[QuickEvent, str]] = []
        for m, _, q, text in quick:
            if m not in bad and q.message_id not in taken:
                taken.add(q.message_id)
                new_rows.append((q, text))
        if slow_texts or not asking:
            try:
                insert_quick_events(cur, new_rows, source=source, load_id=self.load_id)
            except duckdb.ConstraintException as exc:
                if "message_id" not in str(exc) or asking:
                    raise
                raise _Retry(str(exc)) from None
        else:
            added = store_quick_events(cur, new_rows, source=source, load_id=self.load_id)
            stored = {mid for _, _, mid in kept} - added
        if slow_texts:
            lines: dict[int, list[int]] = {}
            for line, (m, _) in enumerate(slow):
                if m in bad:
                    lines.setdefault(m, []).append(line)
            skip = [(ls[0], ls[-1] + 1) for ls in lines.values()]  # a request's lines are contiguous
            insert_staged_events(cur, source=source, load_id=self.load_id, skip=skip, rejects=rejects)
        for m, _, mid in kept:
            if mid not in stored:
                stored.add(mid)  # a duplicate inside the group counts once
                fresh.add(mid)
                outcomes[members[m]].added += 1
        return [(mid, subs[members[m]].events[j]) for m, j, mid in kept]

    def _stored(self, cur: duckdb.DuckDBPyConnection, mids: list[str]) -> set[str]:
        """Of these ids, those already stored (retries)."""
        if not mids:
            return set()
        import pyarrow as pa

        # Read by DuckDB's replacement scan from this frame: cheaper than register + unregister.
        # (One leading underscore: a double one would be name-mangled inside this class.)
        _xrm_ids = pa.table({"message_id": mids})
        rows = cur.execute(
            "SELECT message_id FROM events WHERE message_id IN (SELECT message_id FROM _xrm_ids)"
        ).fetchall()
        return {r[0] for r in rows}
