"""The store: the only room that opens the database (DuckDB file by default, Spark for scale).

    >>> from xrm.store import Store
"""

from xrm.store._backup import BackupInfo, backup_store, open_for_backup, restore_store, verify_backup
from xrm.store._engines import BatchEngine, batch_engine, spark_backend, spark_remote, spark_session
from xrm.store._migrate import META_TABLE
from xrm.store._registry import SCHEMA_MODULES, all_schemas
from xrm.store._schema import Migration, Schema
from xrm.store._store import Store

__all__ = [
    "META_TABLE",
    "SCHEMA_MODULES",
    "BackupInfo",
    "BatchEngine",
    "Migration",
    "Schema",
    "Store",
    "all_schemas",
    "backup_store",
    "batch_engine",
    "open_for_backup",
    "restore_store",
    "spark_backend",
    "spark_remote",
    "spark_session",
    "verify_backup",
]
