"""xrm: a one-to-one relationship-marketing engine.

Identify every customer, differentiate them by value and needs, interact under consent, customize
the next best offer, learn from every response, and see the network.

    >>> import xrm
    >>> store = xrm.open_store("demo.duckdb")  # doctest: +SKIP

Importing xrm is cheap: submodules (DuckDB, Ibis, Spark) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xrm.exceptions import (
    ConfigError,
    ConsentDenied,
    EngineUnavailable,
    InputError,
    MappingError,
    ModelError,
    NotYetImplemented,
    StoreBusy,
    StoreError,
    StoreVersionError,
    XrmError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pathlib import Path

    from xrm.config import Settings
    from xrm.store import Store

__all__ = [
    "ConfigError",
    "ConsentDenied",
    "EngineUnavailable",
    "InputError",
    "MappingError",
    "ModelError",
    "NotYetImplemented",
    "Settings",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreVersionError",
    "XrmError",
    "__version__",
    "open_store",
]


def open_store(target: Settings | str | Path | None = None, *, read_only: bool = False) -> Store:
    """Open the store named by settings or a path (created and migrated as needed)."""
    from xrm.store import Store

    return Store.open(target, read_only=read_only)


def __getattr__(name: str) -> Any:
    # Lazy public names: keep `import xrm` free of DuckDB, Ibis and pydantic-settings.
    if name == "Settings":
        from xrm.config import Settings

        return Settings
    if name == "Store":
        from xrm.store import Store

        return Store
    raise AttributeError(f"module 'xrm' has no attribute {name!r}")
