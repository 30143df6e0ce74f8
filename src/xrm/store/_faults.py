"""What a DuckDB error means for a long-running owner of the store (the server).

Two faults are not the caller's: DuckDB ran out of memory (``memory_limit``), and DuckDB
invalidated the database after a fatal error (e.g. a rollback that itself ran out of memory, or a
checkpoint that failed half-way). After the second every statement fails until the process opens
the database again; what was committed is safe in the file and its write-ahead log.

    >>> store_fault(duckdb.OutOfMemoryException("Out of Memory Error: ..."))  # doctest: +SKIP
    'memory'
"""

from __future__ import annotations

from typing import Literal

import duckdb

__all__ = ["StoreFault", "memory_advice", "store_fault"]

StoreFault = Literal["lost", "memory"]

# DuckDB words them so; a COMMIT that runs out of memory raises a TransactionException that only
# quotes the buffer manager ("Failed to commit: failed to pin block ...").
_LOST_TEXT = ("database has been invalidated", "FATAL Error")
_MEMORY_TEXT = ("Out of Memory Error", "failed to pin block", "could not allocate block",
                "failed to allocate data")


def store_fault(exc: BaseException) -> StoreFault | None:
    """``'lost'``: DuckDB invalidated the database (restart the process); ``'memory'``: it ran
    out of memory_limit; None: any other error. Looks through the exception's causes."""
    seen: set[int] = set()
    memory = False
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:
        seen.add(id(at))
        text = str(at)
        if isinstance(at, duckdb.FatalException) or any(t in text for t in _LOST_TEXT):
            return "lost"
        memory = memory or isinstance(at, duckdb.OutOfMemoryException) or any(t in text for t in _MEMORY_TEXT)
        at = at.__cause__ or at.__context__
    return "memory" if memory else None


def memory_advice(memory_limit: str) -> str:
    """What to tell the operator when DuckDB ran out of memory in the server."""
    return (
        f"DuckDB ran out of its memory_limit ({memory_limit}). The store's indexes are held in "
        f"memory and grow with the events stored (docs/api.md, 'Memory under load'): raise "
        f"memory_limit (XRM_MEMORY_LIMIT) and restart the server"
    )
