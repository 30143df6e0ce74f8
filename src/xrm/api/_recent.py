"""A bounded map that keeps the most recently used entries: the decide path's identity cache.

The server's memory must not grow with every new person it hears of (issue 10): a map of people
is held as a :class:`Recent` of at most ``limit`` entries, the least recently used dropped first,
and whoever is dropped is read from the store again when next asked for.

    >>> seen = Recent(2); seen.put("a", 1); seen.put("b", 2); seen.hit("a"); seen.put("c", 3)
    1
    >>> sorted(seen), seen.dropped
    (['a', 'c'], 1)

Threads: :meth:`put` takes a lock (it may evict); :meth:`hit` does not (the event loop's hot path)
and tolerates an entry evicted under it by another thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import suppress
from typing import Generic, TypeVar

__all__ = ["Recent"]

K = TypeVar("K")
V = TypeVar("V")


class Recent(OrderedDict[K, V], Generic[K, V]):
    """An :class:`~collections.OrderedDict` of at most ``limit`` entries, least recently used first.

    Read with :meth:`hit` (marks the entry used) or plain ``get`` / ``in`` (does not); write with
    :meth:`put`. ``dropped`` counts the entries ever evicted: while it is 0 the map holds every
    entry ever put in it.
    """

    def __init__(self, limit: int, items: Iterable[tuple[K, V]] = ()) -> None:
        if limit < 1:
            raise ValueError(f"limit = {limit}: a cache holds at least one entry")
        super().__init__()
        self.limit = limit
        self.dropped = 0
        self._lock = threading.Lock()
        self.update(items)  # in bulk (a load of the whole graph): then the oldest over the limit go
        while len(self) > limit:
            self.popitem(last=False)
            self.dropped += 1

    def hit(self, key: K) -> V | None:
        """The entry for ``key`` (None if absent), marked as the most recently used."""
        value = self.get(key)
        if value is not None:
            with suppress(KeyError):  # evicted by another thread meanwhile: the value is still right
                self.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Set ``key``, mark it the most recently used, and drop the least recently used over the limit."""
        with self._lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.limit:
                self.popitem(last=False)
                self.dropped += 1
