"""The store's gate: who may use the store while the server releases DuckDB's index memory.

DuckDB 2.0 keeps every index buffer a look-up loaded until the database is detached (docs/api.md,
"Memory under load"), so the server bounds that memory by detaching the store and attaching it
again (:meth:`xrm.store.Store.release_index_memory`). A DETACH beside any open transaction is
deferred, and until that transaction ends the store cannot be attached again and new statements
find no store: so every user of the store holds the gate *shared* for as long as its transaction
lasts, and the release holds it *alone*.

Two kinds of shared holders:

- **requests** (the API's middleware, :mod:`xrm.api._gate`): they yield to a release that
  is waiting (no new request enters while it waits for those inside to finish), else a steady
  stream of overlapping reads would never leave the store free;
- **urgent** holders (the server's own short jobs: the decision log's flusher, the decide gate's
  reads, the scheduler): they wait only while a release *runs*, never for one that waits, because
  a request inside may be waiting for them (an audit row, a decision's read) and would otherwise
  hold the release off until it gives up.

The release waits a bounded time for the holders to leave (:meth:`StoreGate.alone`); if they do
not, it gives up and is tried again later, so a long request (a backup, an export) only delays it.

    >>> gate = StoreGate()
    >>> with gate.shared():
    ...     pass
    >>> with gate.alone(timeout=0.1) as got:
    ...     got
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["StoreGate"]


class StoreGate:
    """A readers-writer lock: shared holds by requests (each counted) and by threads (re-entrant)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holders = 0  # requests inside, plus threads holding it (a thread's nested holds once)
        self._waiting = False  # a release waits for the holders to leave
        self._alone = False  # a release runs
        self._mine = threading.local()  # this thread's nesting depth
        self._when_open: list[Callable[[], None]] = []

    # -- requests (an event loop: never blocks) ------------------------------------------------

    def try_enter(self) -> bool:
        """A request's shared hold, if it needs no wait (no release runs or waits); else False:
        ask :meth:`when_open` to be woken, and try again. End it with :meth:`leave`."""
        with self._cond:
            if self._alone or self._waiting:
                return False
            self._holders += 1
            return True

    def enter(self) -> None:
        """A request's shared hold taken on a worker thread (blocks while a release waits or runs)."""
        with self._cond:
            self._cond.wait_for(lambda: not (self._alone or self._waiting))
            self._holders += 1

    def leave(self) -> None:
        with self._cond:
            self._holders -= 1
            self._cond.notify_all()

    def when_open(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from any thread) once a request could enter: at once if it can now."""
        with self._cond:
            if not (self._alone or self._waiting):
                wake()
                return
            self._when_open.append(wake)

    # -- threads -------------------------------------------------------------------------------

    @contextmanager
    def shared(self, *, urgent: bool = False) -> Iterator[None]:
        """Hold the store shared on this thread (nested holds on the same thread are free);
        ``urgent``: wait only while a release runs, not for one that waits."""
        with self._cond:
            depth = self._depth
            if not depth:
                self._cond.wait_for(lambda: not self._alone and (urgent or not self._waiting))
                self._holders += 1
            self._depth = depth + 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._holders -= 1
                    self._cond.notify_all()

    # -- the release ---------------------------------------------------------------------------

    @contextmanager
    def alone(self, timeout: float) -> Iterator[bool]:
        """Hold the store alone: yields True once no one else holds it, False if that took longer
        than ``timeout`` seconds (then nothing is held, and the waiting requests go on)."""
        with self._cond:
            if self._alone or self._waiting or self._depth:
                got = False  # one release at a time; never from inside a shared hold
            else:
                self._waiting = True
                got = self._cond.wait_for(lambda: self._holders == 0, timeout)
                self._waiting = False
                self._alone = got
                if not got:
                    self._open()
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self._alone = False
                    self._open()

    def _open(self) -> None:
        self._cond.notify_all()
        wakes, self._when_open = self._when_open, []
        for wake in wakes:
            wake()

    @property
    def _depth(self) -> int:
        return int(getattr(self._mine, "depth", 0))

    @_depth.setter
    def _depth(self, value: int) -> None:
        self._mine.depth = value
