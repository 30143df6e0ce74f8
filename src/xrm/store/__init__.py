"""The store: the only room that opens the database (DuckDB file by default, Spark for scale).

    >>> from xrm.store import Store
"""

from xrm.store._engines import spark_backend, spark_session
from xrm.store._migrate import META_TABLE
from xrm.store._registry import SCHEMA_MODULES, all_schemas
from xrm.store._schema import Migration, Schema
from xrm.store._store import Store

__all__ = [
    "META_TABLE",
    "SCHEMA_MODULES",
    "Migration",
    "Schema",
    "Store",
    "all_schemas",
    "spark_backend",
    "spark_session",
]
