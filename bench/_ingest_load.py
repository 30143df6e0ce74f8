"""A cheap HTTP/1.1 load generator for /v1/batch: open loop (a fixed rate) or closed loop (N clients).

Everything a request needs is built before the timed run: each request's whole bytes (headers and
gzip-compressed body, as Segment's clients send it, every messageId unique), so the timed run only
writes prepared bytes to keep-alive sockets and reads the status line and Content-Length of each
answer. It runs on asyncio protocols (uvloop where installed), one callback per answer and no task
per request: httpx spent 35 µs CPU per event in the closed loop and 233 in the open loop (a task,
a connection-pool look-up and header objects per request), which on two shared cores took a core
from the server it measured.

    >>> reqs = build_requests(url, "/v1/batch", bodies, auth="Basic YmVuY2g6")  # doctest: +SKIP
    >>> asyncio.run(open_loop(url, reqs, rate_rps=100, seconds=60, warmup=5,  # doctest: +SKIP
    ...                       events_per_request=100))
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["build_requests", "closed_loop", "open_loop", "percentile"]

# An answer not finished after this many seconds counts as an error (its connection is dropped).
TIMEOUT_S = 60.0


def build_requests(url: str, path: str, bodies: Sequence[bytes], *, auth: str, level: int = 6) -> list[bytes]:
    """Each body gzip-compressed (zlib's default level) behind its request line and headers."""
    host = urlsplit(url).netloc
    out = []
    for body in bodies:
        z = gzip.compress(body, compresslevel=level, mtime=0)
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"content-encoding: gzip\r\nauthorization: {auth}\r\ncontent-length: {len(z)}\r\n\r\n"
        )
        out.append(head.encode("latin-1") + z)
    return out


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time; ``done(conn, ok)`` when its answer is in."""

    def __init__(self, done: Callable[[_Conn, bool], None]) -> None:
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.need = -1  # bytes of the whole answer, once its head is read
        self.status = 0
        self.busy = False
        self.sent_at = 0.0
        self.record: Any = None  # the caller's note for the request in flight (e.g. its due time)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, record: Any) -> None:
        assert self.transport is not None and not self.busy
        self.busy, self.record, self.sent_at = True, record, time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:  # the server always sends Content-Length; anything else is an error here
                self._fail()
                return
            stop = head.find(b"\r\n", at + 2)
            self.need = end + 4 + int(head[at + 17 : stop if stop > 0 else len(head)])
        if len(self.buf) >= self.need:
            self.buf, self.need, self.busy = self.buf[self.need :], -1, False
            self.done(self, self.status == 200)

    def _fail(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.busy:
            self.busy = False
            self.done(self, False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail()


class _Run:
    """Connections, the requests still to send, and what the answers measured."""

    def __init__(self, url: str, requests: Sequence[bytes], events_per_request: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.requests = requests
        self.per = events_per_request
        self.next = 0  # index of the next request's bytes
        self.recording = False
        self.latencies: list[float] = []
        self.errors = 0
        self.answered = 0  # answers of any kind, recorded or not
        self.loop = asyncio.get_running_loop()

    async def connect(self, done: Callable[[_Conn, bool], None]) -> _Conn:
        _, conn = await self.loop.create_connection(lambda: _Conn(done), self.host, self.port)
        return conn

    def take(self) -> bytes:
        if self.next >= len(self.requests):
            raise RuntimeError(
                f"the {len(self.requests):,} requests built beforehand ran out; build more"
            )
        request = self.requests[self.next]
        self.next += 1
        return request

    def result(self, elapsed: float, cpu: float, **extra: Any) -> dict[str, Any]:
        self.latencies.sort()
        return {
            "seconds": elapsed, "requests": len(self.latencies),
            "events": len(self.latencies) * self.per, "errors": self.errors,
            "p50_ms": percentile(self.latencies, 0.50), "p95_ms": percentile(self.latencies, 0.95),
            "p99_ms": percentile(self.latencies, 0.99), "max_ms": percentile(self.latencies, 1.0),
            "sent_total": self.next, "loadgen_cpu_s": cpu, **extra,
        }


def percentile(sorted_s: list[float], q: float) -> float:
    """The q-quantile of sorted seconds, in ms (nan when empty)."""
    if not sorted_s:
        return float("nan")
    return sorted_s[min(len(sorted_s) - 1, int(len(sorted_s) * q))] * 1000


async def closed_loop(
    url: str, requests: Sequence[bytes], *, connections: int, seconds: float, warmup: float,
    events_per_request: int, on_measure: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``connections`` clients, each sending its next request as soon as its last is answered;
    each request timed from when it was sent."""
    run = _Run(url, requests, events_per_request)
    stop_at = [float("inf")]
    finished = run.loop.create_future()
    live = [connections]

    def done(conn: _Conn, ok: bool) -> None:
        now = time.perf_counter()
        if conn.record:  # sent while recording
            if ok:
                run.latencies.append(now - conn.sent_at)
            else:
                run.errors += 1
        if conn.closed or now >= stop_at[0]:
            live[0] -= 1
            if live[0] == 0 and not finished.done():
                finished.set_result(None)
            return
        conn.send(run.take(), run.recording)

    conns = [await run.connect(done) for _ in range(connections)]
    start = time.perf_counter()
    for conn in conns:
        conn.send(run.take(), False)
    await asyncio.sleep(max(0.0, start + warmup - time.perf_counter()))
    if on_measure is not None:
        on_measure()
    run.recording, cpu0, measured = True, time.process_time(), time.perf_counter()
    stop_at[0] = measured + seconds
    await asyncio.sleep(seconds)
    try:
        await asyncio.wait_for(finished, TIMEOUT_S)
    except TimeoutError:
        run.errors += live[0]
    elapsed, cpu = time.perf_counter() - measured, time.process_time() - cpu0
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    out = run.result(elapsed, cpu)
    out["events_per_s"] = out["events"] / elapsed
    return out


async def open_loop(
    url: str, requests: Sequence[bytes], *, rate_rps: float, seconds: float, warmup: float,
    events_per_request: int, max_connections: int = 64, on_measure: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """One request due every 1/``rate_rps`` s whatever the answers, each timed from when it was due
    (a server, or this generator, that falls behind is charged the wait: no coordinated omission).
    A due request takes an idle connection, opens one (up to ``max_connections``), or queues for
    the next one free. Answers still missing 10 s after the schedule ends count as errors.
    ``on_measure`` is called when the measured span starts (after ``warmup``), in both loops."""
    run = _Run(url, requests, events_per_request)
    interval = 1.0 / rate_rps
    idle: list[_Conn] = []
    waiting: deque[tuple[float, bool]] = deque()  # (due, measured) of requests with no connection
    conns: list[_Conn] = []
    opening = [0]
    in_flight = [0]
    counts = {"due_measured": 0, "late": 0, "queued": 0}

    def done(conn: _Conn, ok: bool) -> None:
        due, measured = conn.record
        in_flight[0] -= 1
        run.answered += 1
        if measured:
            if ok:
                run.latencies.append(time.perf_counter() - due)
            else:
                run.errors += 1
        if conn.closed:
            return
        if waiting:
            in_flight[0] += 1
            conn.send(run.take(), waiting.popleft())
        else:
            idle.append(conn)

    async def grow() -> None:
        opening[0] += 1
        try:
            conn = await run.connect(done)
        except OSError:
            return
        finally:
            opening[0] -= 1
        conns.append(conn)
        done_waiting = waiting.popleft() if waiting else None
        if done_waiting is not None:
            in_flight[0] += 1
            conn.send(run.take(), done_waiting)
        else:
            idle.append(conn)

    for _ in range(8):  # a few open beforehand, as a client's pool would be
        await grow()
    growing: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    measured_from = start + warmup
    end = measured_from + seconds
    cpu0: float | None = None
    r = 0
    while True:
        due = start + r * interval
        if due >= end:
            break
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > interval:
            counts["late"] += 1  # the generator itself was behind (charged as latency all the same)
        measured = due >= measured_from
        if measured and cpu0 is None:
            if on_measure is not None:
                on_measure()
            cpu0 = time.process_time()
        counts["due_measured"] += measured
        r += 1
        while idle and idle[-1].closed:
            idle.pop()
        if idle:
            in_flight[0] += 1
            idle.pop().send(run.take(), (due, measured))
            continue
        waiting.append((due, measured))
        counts["queued"] += 1
        if len(conns) + opening[0] < max_connections:
            t = asyncio.create_task(grow())
            growing.add(t)
            t.add_done_callback(growing.discard)
    deadline = time.perf_counter() + 10
    while (in_flight[0] or waiting) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    cpu = time.process_time() - (cpu0 or time.process_time())
    elapsed = time.perf_counter() - measured_from
    # Measured requests still unanswered (on a connection or waiting for one) are errors.
    unanswered = sum(1 for c in conns if c.busy and c.record[1]) + sum(m for _, m in waiting)
    for conn in conns:
        conn.record = (0.0, False)  # late answers after this are not counted
        if conn.transport is not None:
            conn.transport.close()
    out = run.result(elapsed, cpu, connections=len(conns), **counts)
    out["errors"] += unanswered
    out["events_per_s"] = out["events"] / seconds  # answered 200, over the schedule's span
    return out
