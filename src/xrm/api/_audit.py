"""The API's audit log: who (key), what (action, method, path), when, why (purpose), whose data.

One row per read of personal data (a profile, a timeline, a lookup by identifier) and per admin
action (key changes; export, erase and campaign launch when they get HTTP endpoints), written
before the answer is sent (before the read itself for a profile or timeline): if the row cannot
be written, nothing is answered (503). Query strings are
not stored (an identifier looked up may itself be personal data); the lookup's row names the
profiles found instead.

    >>> record_access(store, key_id=k, key_name=n, action="profile.read", target="17", ...)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xrm.store import Store

__all__ = ["AuditBuffer", "AuditRow", "AuditWriter", "list_audit", "record_access"]

MAX_PURPOSE = 500


@dataclass(frozen=True)
class AuditRow:
    audit_id: int
    logged_at: datetime
    key_id: str
    key_name: str
    action: str
    target: str | None
    purpose: str | None
    method: str
    path: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditWriter:
    """Group commit for audit rows: each caller waits for its row's commit, callers that arrive
    while a commit runs share the next one. A commit costs a WAL sync (about 13 ms on the loaded
    test machine), so one commit per read would cap reads at about 75/s.

    Leader and followers, no thread of its own: the first caller to find no commit running
    commits everything queued, until the queue is empty; the others wait on their futures.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._queue: list[tuple[list[Any], Future[None]]] = []
        self._committing = False

    def record(self, **row: Any) -> None:
        """Write one row (the :func:`record_access` fields); returns once it is committed."""
        mine: Future[None] = Future()
        with self._lock:
            self._queue.append((_values(**row), mine))
            lead = not self._committing
            self._committing = self._committing or lead
        while lead:
            with self._lock:
                group, self._queue = self._queue, []
                if not group:
                    self._committing = False
                    break
            try:
                with self.store.transaction() as tx:
                    tx.executemany(_INSERT, [values for values, _ in group])
            except Exception as exc:
                for _, fut in group:
                    fut.set_exception(exc)
            else:
                for _, fut in group:
                    fut.set_result(None)
        mine.result()


class AuditBuffer:
    """Audit rows written with the decision log (a :class:`~xrm.customize.LogRider`), not each on
    its own commit: a decision is answered from memory in about a millisecond, and a commit per
    decision would cost more than the decision. Same durability as the decision log: a killed
    server loses the rows of decisions answered since the last flush (docs/api.md).

        >>> decider.riders.append(AuditBuffer())                               # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[list[Any]] = []

    @property
    def pending(self) -> int:
        return len(self._rows)

    def add(self, **row: Any) -> None:
        """Queue one row (the :func:`record_access` fields), stamped now."""
        values = _values(**row)
        with self._lock:
            self._rows.append(values)

    def take(self) -> list[Any]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def give_back(self, rows: list[Any]) -> None:
        with self._lock:
            self._rows[:0] = rows

    def write(self, tx: Any, rows: list[Any]) -> None:
        """Append the rows in one statement (an Arrow table: a prepared INSERT per row costs more)."""
        import pyarrow as pa

        names = ("logged_at", "key_id", "key_name", "action", "target", "purpose", "method", "path")
        tx.register("__xrm_audit", pa.table({c: [r[i] for r in rows] for i, c in enumerate(names)}))
        try:
            tx.execute(f"INSERT INTO api_audit ({', '.join(names)}) SELECT * FROM __xrm_audit")
        finally:
            tx.unregister("__xrm_audit")


_INSERT = (
    "INSERT INTO api_audit (logged_at, key_id, key_name, action, target, purpose, method, path) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(
    *, key_id: str, key_name: str, action: str, target: str | None, purpose: str | None, method: str,
    path: str,
) -> list[Any]:
    purpose = (purpose or "").strip()[:MAX_PURPOSE] or None
    return [datetime.now(UTC).replace(tzinfo=None), key_id, key_name, action, target, purpose, method, path]


def record_access(
    store: Store,
    *,
    key_id: str,
    key_name: str,
    action: str,
    target: str | None,
    purpose: str | None,
    method: str,
    path: str,
) -> None:
    """One row, committed on its own (the server uses :class:`AuditWriter`)."""
    store.sql(_INSERT, _values(key_id=key_id, key_name=key_name, action=action, target=target,
                               purpose=purpose, method=method, path=path))


def list_audit(
    store: Store,
    *,
    key: str | None = None,
    target: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[AuditRow]:
    """Newest first; ``key`` matches a key's id or name."""
    where, params = [], []
    if key:
        where.append("(key_id = ? OR key_name = ?)")
        params += [key, key]
    if target:
        where.append("target = ?")
        params.append(target)
    if action:
        where.append("action = ?")
        params.append(action)
    sql = "SELECT audit_id, logged_at, key_id, key_name, action, target, purpose, method, path FROM api_audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.sql(sql + " ORDER BY audit_id DESC LIMIT ?", [*params, limit]).fetchall()
    return [AuditRow(*r) for r in rows]
