"""The engine seam: where DuckDB and Spark differ, and nowhere else.

Capability code builds Ibis expressions over ``ibis.Table`` objects and never asks which engine
runs them.  This module hands out the backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrm.config import Settings
from xrm.exceptions import ConfigError, EngineUnavailable, InputError, NotYetImplemented

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd
    from ibis.backends.pyspark import Backend as SparkBackend

__all__ = ["BatchEngine", "batch_engine", "spark_backend", "spark_remote", "spark_session"]


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
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
    )
    if master.startswith("local"):
        import os
        import sys

        # Ibis runs a few functions (JSON unwrapping) as Python UDFs: local workers need this
        # Python (PySpark reads the variable when the context starts; a cluster sets its own).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
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


class BatchEngine:
    """The input tables of one batch run on one Ibis backend, and where its outputs go.

    Capability code asks the engine for tables (:meth:`table`), materialises intermediate
    results (:meth:`cache`, for iterative joins), collects small results (:meth:`collect`) and
    writes outputs (:meth:`write`); it never asks which engine it is.  Work that still needs the
    DuckDB store (transactions, DuckDB SQL) asks :meth:`store_for`, which raises
    :class:`~xrm.exceptions.NotYetImplemented` on an engine without one.

        >>> engine = batch_engine(settings, store=store)  # doctest: +SKIP
        >>> engine.table("events").count().execute()  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        backend: Any,
        *,
        store: Any = None,
        source: str | None = None,
        fmt: str = "parquet",
        output: str | None = None,
        reader: Any = None,
        writer: Any = None,
        cacher: Any = None,
    ) -> None:
        self.name = name  # for reports and messages only
        self.backend = backend
        self._store = store
        self.source = source.rstrip("/") if source else None
        self.fmt = fmt
        self.output = output.rstrip("/") if output else None
        self._reader = reader  # (name, location, fmt) -> ir.Table for a source location
        self._writer = writer or (lambda expr, path: backend.to_parquet(expr, path))
        self._tables: dict[str, ir.Table] = {}
        self._cached: list[tuple[ir.Table, Any]] = []  # (table, its release function)
        self._cacher = cacher or _ibis_cache
        self._derived: set[str] = set()

    def table(self, name: str) -> ir.Table:
        """An input table: ``{source}/{name}`` when a source is set, else the catalog's (store's) table."""
        if name not in self._tables:
            if self.source is None:
                self._tables[name] = self.backend.table(name)
            else:
                self._tables[name] = self._reader(name, f"{self.source}/{name}", self.fmt)
        return self._tables[name]

    def table_or_none(self, name: str) -> ir.Table | None:
        """An optional input table (posts, handles, suppressions ...): None where there is none."""
        from ibis.common.exceptions import TableNotFound

        try:
            return self.table(name)
        except (InputError, TableNotFound):  # no dataset in the source; no table in the catalog
            return None

    def register(self, name: str, expr: ir.Table) -> ir.Table:
        """Make a derived table (cached) the engine's table ``name`` for the later steps of a run."""
        self._tables[name] = self.cache(expr)
        self._derived.add(name)
        return self._tables[name]

    def cache(self, expr: ir.Table) -> ir.Table:
        """Materialise ``expr`` in the engine until :meth:`release` or :meth:`close`: a temp table
        on DuckDB, a checkpointed DataFrame on Spark (so an iteration's plan does not grow)."""
        cached, free = self._cacher(expr)
        self._cached.append((cached, free))
        return cached

    def release(self, *tables: ir.Table) -> None:
        """Free cached tables no longer needed (an iteration's previous round)."""
        for t in tables:
            for _, free in [e for e in self._cached if e[0] is t]:
                free()
            self._cached = [e for e in self._cached if e[0] is not t]

    def close(self) -> None:
        """Free every cached and derived table of the run (the inputs stay readable)."""
        self.release(*[c for c, _ in self._cached])
        for name in self._derived:
            self._tables.pop(name, None)
        self._derived.clear()

    def collect(self, expr: ir.Table) -> pd.DataFrame:
        """A small result as a pandas frame (summaries, not raw events)."""
        return expr.to_pyarrow().to_pandas()

    def write(self, name: str, data: ir.Table | pd.DataFrame) -> str | None:
        """Write an output (an expression, or a frame computed in Python) as Parquet at
        ``{output}/{name}``, replacing it; None without an output."""
        if self.output is None:
            return None
        import ibis

        expr = data if isinstance(data, ibis.Table) else ibis.memtable(_arrow(data))
        if "://" not in self.output:
            Path(self.output).mkdir(parents=True, exist_ok=True)  # DuckDB's COPY makes no folders
        path = f"{self.output}/{name}"
        self._writer(expr, path)
        return path

    def store_for(self, step: str) -> Any:
        """The DuckDB store, for a step whose work is still DuckDB SQL; other engines are refused."""
        if self._store is None:
            raise NotYetImplemented(
                f"pipeline step {step!r} is not yet implemented on the {self.name} engine: it still runs "
                f"DuckDB SQL on the store (issue 9); run it with engine = 'duckdb'"
            )
        return self._store

    def __repr__(self) -> str:
        where = self.source or "catalog"
        return f"BatchEngine({self.name!r}, source={where!r}, output={self.output!r})"


def _ibis_cache(expr: ir.Table) -> tuple[ir.Table, Any]:
    cached = expr.cache()
    return cached, cached.release  # type: ignore[attr-defined]


def _spark_cacher(session: Any, backend: Any) -> Any:
    """Spark's cache keeps the whole lineage in the plan, which an iteration grows until the driver
    runs out of memory planning it; a local checkpoint materialises the rows and cuts the plan."""
    names = iter(range(1 << 62))

    def cache(expr: ir.Table) -> tuple[ir.Table, Any]:
        backend._run_pre_execute_hooks(expr)  # register the expression's UDFs and memtables first
        df = session.sql(str(backend.compile(expr))).localCheckpoint(eager=True)
        name = f"xrm_cached_{next(names)}_{id(df):x}"
        df.createOrReplaceTempView(name)

        def free() -> None:
            session.catalog.dropTempView(name)
            df.unpersist()

        return backend.table(name), free

    return cache


def _arrow(frame: pd.DataFrame) -> Any:
    """A frame as Arrow with microsecond timestamps (what Parquet and Spark keep)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False, safe=False)
    fields = [
        pa.field(f.name, pa.timestamp("us", f.type.tz)) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields), safe=False)


def _duckdb_reader(backend: Any) -> Any:
    def read(name: str, location: str, fmt: str) -> ir.Table:
        if fmt != "parquet":
            raise ConfigError(f"batch_format = {fmt!r}: the DuckDB engine reads 'parquet' only")
        path = Path(location)
        if Path(location + ".parquet").is_file():
            target = location + ".parquet"
        elif path.is_dir():
            target = str(path / "**" / "*.parquet")  # a dataset folder as Spark writes it
        elif path.is_file() or "://" in location:
            target = location
        else:
            raise InputError(f"input table {name!r}: no {location}.parquet and no folder {location}")
        return backend.read_parquet(target, table_name=f"xrm_in_{name}")

    return read


def _spark_reader(session: Any, backend: Any) -> Any:
    def read(name: str, location: str, fmt: str) -> ir.Table:
        if fmt == "parquet" and Path(location + ".parquet").exists():
            location += ".parquet"
        from pyspark.errors import AnalysisException

        if "://" not in location and not Path(location).exists():  # spares Spark's error log
            raise InputError(f"input table {name!r}: no dataset at {location}")
        try:
            frame = session.read.format(fmt).load(location)
        except AnalysisException as exc:
            if "PATH_NOT_FOUND" not in str(exc):
                raise
            raise InputError(f"input table {name!r}: no dataset at {location}") from None
        frame.createOrReplaceTempView(f"xrm_in_{name}")
        return backend.table(f"xrm_in_{name}")

    return read


def batch_engine(settings: Settings, *, store: Any = None, session: Any = None) -> BatchEngine:
    """The engine the ``engine`` setting names: the DuckDB store, or Spark (a session handed in, else
    one made for ``spark_master``: ``local[N]``, ``spark://HOST:PORT``, ``yarn``, or a Spark Connect
    remote ``sc://HOST:PORT``).

    Inputs come from ``batch_source`` (one Parquet/Delta dataset per table, e.g. ``s3a://bucket/xrm``)
    or, when it is empty, from the store (DuckDB) or the Spark catalog by table name.
    This is the only place that looks at which engine was chosen.
    """
    source, fmt, output = settings.batch_source or None, settings.batch_format, settings.batch_output or None
    if not settings.uses_spark:
        if store is None:
            raise ConfigError("engine = 'duckdb' runs on an open store: pass store=Store.open(settings)")
        be = store.ibis
        return BatchEngine("duckdb", be, store=store, source=source, fmt=fmt, output=output,
                           reader=_duckdb_reader(be))
    if session is None:
        master = settings.engine if settings.engine.startswith("spark://") else settings.spark_master
        session = spark_remote(master) if master.startswith("sc://") else spark_session(master)
    sb = spark_backend(session)
    return BatchEngine(
        "spark", sb, source=source, fmt=fmt, output=output, reader=_spark_reader(session, sb),
        writer=lambda expr, path: sb.to_parquet(expr, path, mode="overwrite"),
        cacher=_spark_cacher(session, sb),
    )


def spark_remote(url: str, **conf: str) -> Any:
    """A Spark Connect session to ``sc://HOST:PORT`` (needs ``pyspark[connect]`` on this side)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineUnavailable("the Spark engine needs PySpark: pip install 'xrm[spark]'") from None
    builder = SparkSession.builder.remote(url).config("spark.sql.session.timeZone", "UTC")
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
