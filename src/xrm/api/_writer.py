"""The one writer of the event API: group commits, so 200 means committed and throughput stays high.

Requests put their events on an asyncio queue and wait. One task takes everything queued (up to
``max_events``), and in one DuckDB transaction on its own thread checks the events with the
loader's SQL, stores the valid requests' events, resolves them to profiles (Identify's online
path, in bulk) and commits; then it answers each waiting request. While one group is being
written the next one gathers, so under load each commit carries many requests.

A request whose events break a rule stores nothing and gets its problems back; the other
requests of its group are not affected. If the resolution fails, the group is written again
without it (the events are kept; the next batch resolution, or the client's retry, resolves them).

    >>> writer = EventWriter(store); await writer.start()  # doctest: +SKIP
    >>> outcome = await writer.submit(Submission("POST /v1/track", "web", [text], [event]))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xrm.ingest import EventProblem, drop_staged, insert_staged_events, stage_events, staged_ids
from xrm.interact import IdentifierCache, resolve_events

if TYPE_CHECKING:
    import duckdb

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
    write_seconds: float = 0.0
    group_sizes: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "group_sizes"}
        d["mean_group_events"] = (sum(self.group_sizes) / len(self.group_sizes)) if self.group_sizes else 0
        return d


class _ResolveFailed(Exception):
    pass


class EventWriter:
    """Owns the store's write path while the server runs (one thread, one cursor)."""

    def __init__(self, store: Store, *, max_events: int = 20_000) -> None:
        self.store = store
        self.max_events = max_events
        self.load_id = f"api-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.stats = WriterStats()
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[Outcome]] | None] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xrm-writer")
        self._task: asyncio.Task[None] | None = None
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._cache: IdentifierCache | None = None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)
        self._task = asyncio.create_task(self._run(), name="xrm-event-writer")

    async def stop(self) -> None:
        """Write what is queued, then close the write path."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    async def submit(self, submission: Submission) -> Outcome:
        if self._task is None or self._task.done():
            raise RuntimeError("the event writer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((submission, future))
        return await future

    # -- the writer task -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is None:
                break
            group = [item]
            size = len(item[0].texts)
            while size < self.max_events and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += len(nxt[0].texts)
            subs = [s for s, _ in group]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._write_group, subs)
            except Exception as exc:
                log.exception("writing %d requests failed; they were answered 503", len(subs))
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), outcome in zip(group, outcomes, strict=True):
                if not fut.done():  # the client may have gone; its events are stored all the same
                    fut.set_result(outcome)

    # -- on the writer thread ------------------------------------------------------------------

    def _open(self) -> None:
        from xrm.identify import IdentityRules

        self._cur = self.store.con.cursor()
        self._cur.execute("SET SESSION TimeZone = 'UTC'")
        self._cache = IdentifierCache(IdentityRules.for_settings(self.store.settings))
        self._cur.execute(
            "INSERT INTO loads (load_id, file, sha256, kind, source, started_at, status) "
            "VALUES (?, 'xrm serve', ?, 'events', 'api', timezone('UTC', now()), 'running')",
            [self.load_id, self.load_id],
        )

    def _close(self) -> None:
        if self._cur is None:
            return
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

    def _write_group(self, subs: Sequence[Submission]) -> list[Outcome]:
        started = time.perf_counter()
        try:
            outcomes = self._transaction(subs, resolve=True)
        except _ResolveFailed as exc:
            log.error("online identity resolution failed (%s); events stored unresolved", exc.__cause__)
            self.stats.resolution_failures += 1
            outcomes = self._transaction(subs, resolve=False)
        s = self.stats
        s.groups += 1
        s.requests += len(subs)
        s.group_sizes.append(sum(len(x.texts) for x in subs))
        del s.group_sizes[:-1000]
        s.write_seconds += time.perf_counter() - started
        for sub, out in zip(subs, outcomes, strict=True):
            if out.problems:
                s.requests_rejected += 1
            else:
                s.events_added += out.added
                s.events_duplicate += len(sub.texts) - out.added
        return outcomes

    def _transaction(self, subs: Sequence[Submission], *, resolve: bool) -> list[Outcome]:
        cur = self._cur
        assert cur is not None and self._cache is not None
        outcomes = [Outcome([]) for _ in subs]
        pairs: list[tuple[str, dict[str, Any]]] = []
        cur.execute("BEGIN TRANSACTION")
        try:
            # One staging per source (the source is a column of every stored event).
            for source in dict.fromkeys(s.source for s in subs):
                members = [k for k, s in enumerate(subs) if s.source == source]
                pairs += self._store_source(cur, subs, members, outcomes)
            if resolve and pairs:
                try:
                    summary = resolve_events(cur, self.store.settings, pairs, self._cache)
                except Exception as exc:
                    raise _ResolveFailed(str(exc)) from exc
                st = self.stats
                st.resolved_known += summary.known
                st.resolved_new += summary.new
                st.resolved_one_by_one += summary.one_by_one
                st.unresolved += summary.unresolved
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        finally:
            with contextlib.suppress(Exception):
                drop_staged(cur)
        return outcomes

    def _store_source(
        self,
        cur: duckdb.DuckDBPyConnection,
        subs: Sequence[Submission],
        members: list[int],
        outcomes: list[Outcome],
    ) -> list[tuple[str, dict[str, Any]]]:
        texts: list[str] = []
        events: list[dict[str, Any]] = []
        starts: list[int] = []
        for k in members:
            starts.append(len(texts))
            texts += subs[k].texts
            events += subs[k].events
        problems = stage_events(cur, texts)
        bad: set[int] = set()
        rejects = []
        for p in problems:
            m = bisect.bisect_right(starts, p.line) - 1
            k = members[m]
            local = EventProblem(p.line - starts[m], p.field, p.value, p.reason)
            outcomes[k].problems.append(local)
            bad.add(m)
            rejects.append((subs[k].label, local, texts[p.line]))
        ends = [*starts[1:], len(texts)]
        skip = [(starts[m], ends[m]) for m in sorted(bad)]
        kept = [
            (line, mid) for line, mid in staged_ids(cur) if bisect.bisect_right(starts, line) - 1 not in bad
        ]
        stored = self._stored(cur, [mid for _, mid in kept])
        insert_staged_events(
            cur, source=subs[members[0]].source, load_id=self.load_id, skip=skip, rejects=rejects
        )
        for line, mid in kept:
            if mid not in stored:
                stored.add(mid)  # a duplicate inside the group counts once
                outcomes[members[bisect.bisect_right(starts, line) - 1]].added += 1
        return [(mid, events[line]) for line, mid in kept]

    def _stored(self, cur: duckdb.DuckDBPyConnection, mids: list[str]) -> set[str]:
        """Of these ids, those already stored (retries)."""
        if not mids:
            return set()
        import pyarrow as pa

        cur.register("__xrm_m", pa.table({"message_id": mids}))
        try:
            rows = cur.execute(
                "SELECT message_id FROM events WHERE message_id IN (SELECT message_id FROM __xrm_m)"
            ).fetchall()
        finally:
            cur.unregister("__xrm_m")
        return {r[0] for r in rows}
