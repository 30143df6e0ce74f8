"""One exception tree for xrm.

Every class derives from :class:`XrmError` and also from the built-in it resembles, so callers
may catch either (``except xrm.InputError`` or ``except ValueError``).  Messages name the value,
the rule and the fix.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigurationInfeasible",
    "ConsentDenied",
    "EngineUnavailable",
    "InputError",
    "MappingError",
    "ModelError",
    "NotFound",
    "NotYetImplemented",
    "StoreBusy",
    "StoreError",
    "StoreKeyError",
    "StoreLost",
    "StoreVersionError",
    "XrmError",
]


class XrmError(Exception):
    """Root of every error xrm raises on purpose."""


class ConfigError(XrmError, ValueError):
    """A setting (xrm.toml, XRM_* variable or argument) is missing or invalid."""


class StoreError(XrmError, RuntimeError):
    """The store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer xrm, or is not an xrm store at all."""


class StoreBusy(StoreError):
    """Another process holds the store's write lock (DuckDB allows one writing process)."""


class StoreLost(StoreError):
    """DuckDB invalidated the open database after a fatal error: what was committed is safe in the
    file, but only a new process can open it again (the server stops itself)."""


class StoreKeyError(StoreError):
    """The store is encrypted and its key is missing or wrong, or a key is set for a plain store."""


class InputError(XrmError, ValueError):
    """Input data (a file, a row, an event) breaks a rule; the message says which and how to fix it."""


class MappingError(InputError):
    """A source mapping file is invalid or does not fit the file it maps."""


class ConfigurationInfeasible(InputError):
    """No configuration of a product meets every constraint; ``conflicts`` names a minimal set."""

    def __init__(self, message: str, conflicts: list[str]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


class ModelError(XrmError, ValueError):
    """A model cannot be fitted or loaded (bad data for it, incompatible saved version)."""


class ConsentDenied(XrmError, PermissionError):
    """A message would break a customer's consent or the contact policy."""


class EngineUnavailable(XrmError, ImportError):
    """An optional engine (e.g. Spark) was asked for but its extra is not installed."""


class NotFound(XrmError, LookupError):
    """Something asked for by id (a profile, a message ...) is not in the store."""


class NotYetImplemented(XrmError, NotImplementedError):
    """A capability that is planned but not built yet; the message names the issue that tracks it."""
