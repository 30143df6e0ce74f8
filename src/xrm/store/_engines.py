"""The engine seam: where DuckDB and Spark differ, and nowhere else.

Capability code builds Ibis expressions over ``ibis.Table`` objects and never asks which engine
runs them.  This module hands out the backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xrm.exceptions import EngineUnavailable

if TYPE_CHECKING:
    from ibis.backends.pyspark import Backend as SparkBackend

__all__ = ["spark_backend", "spark_session"]


def spark_session(master: str = "local[2]", app_name: str = "xrm", **conf: str) -> Any:
    """A SparkSession (created or reused); needs ``pip install 'xrm[spark]'`` and Java 17."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineUnavailable(
            "the Spark engine needs PySpark: pip install 'xrm[spark]' (and Java 17 on PATH)"
        ) from None
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_backend(session: Any = None, *, engine: str = "spark") -> SparkBackend:
    """An Ibis PySpark backend over ``session`` (or one made from the ``engine`` setting)."""
    try:
        import ibis
    except ImportError:  # pragma: no cover - ibis is a core dependency
        raise EngineUnavailable("ibis-framework is missing; reinstall xrm") from None
    if session is None:
        session = spark_session(engine if engine.startswith("spark://") else "local[2]")
    try:
        return ibis.pyspark.connect(session)
    except ImportError:
        raise EngineUnavailable(
            "the Spark engine needs PySpark: pip install 'xrm[spark]'"
        ) from None
