"""How a capability declares its tables: an ordered list of versioned migrations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

__all__ = ["Migration", "Schema"]


@dataclass(frozen=True)
class Migration:
    """One step of a capability's schema; ``apply`` is SQL text or a function of the connection.

    SQL may hold several statements separated by ``;``.  Migrations are never edited once
    released: a change is a new migration with the next version number.
    """

    version: int
    description: str
    apply: str | Callable[[duckdb.DuckDBPyConnection], None]

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        if callable(self.apply):
            self.apply(con)
        else:
            con.execute(self.apply)


@dataclass(frozen=True)
class Schema:
    """The tables one capability owns, e.g. ``Schema("ingest", (Migration(1, ...),))``."""

    capability: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(
                f"schema {self.capability!r}: migration versions must be 1, 2, 3 ... in order, "
                f"got {versions}"
            )

    @property
    def latest(self) -> int:
        return len(self.migrations)
