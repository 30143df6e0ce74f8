"""The capability schemas the store knows, in dependency order.

Listed by module name so that the store never imports a capability's code at import time (and the
import arrow stays downward: a capability declares ``SCHEMA`` in its ``_schema`` module, which
imports only :mod:`xrm.store`).  A new capability adds its module here.
"""

from __future__ import annotations

import importlib
from functools import cache

from xrm.store._schema import Schema

__all__ = ["SCHEMA_MODULES", "all_schemas"]

SCHEMA_MODULES: tuple[str, ...] = (
    "xrm.ingest._schema",
    "xrm.identify._schema",
    "xrm.differentiate._schema",
    "xrm.customize._schema",
    "xrm.interact._schema",
    "xrm.network._schema",
    "xrm.web._schema",
    "xrm.api._schema",  # API keys and audit log; xrm.api's __init__ is lazy (no FastAPI)
)


@cache
def all_schemas() -> tuple[Schema, ...]:
    schemas = []
    for name in SCHEMA_MODULES:
        schema = importlib.import_module(name).SCHEMA
        if not isinstance(schema, Schema):
            raise TypeError(f"{name}.SCHEMA must be an xrm.store.Schema")
        schemas.append(schema)
    return tuple(schemas)
