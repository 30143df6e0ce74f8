"""Load one file into the store: checked row by row in SQL, bad rows kept aside, idempotent.

    >>> from xrm.ingest import load_file
    >>> report = load_file(store, "sources/crm.csv", "mappings/crm.toml")  # doctest: +SKIP

A file is read in batches (``settings.batch_rows`` rounded to whole DuckDB row groups) by a
reader thread; each batch is checked by vectorised SQL in DuckDB, its bad rows go to
``rejected_rows`` (file, line, field, value, reason, raw text) and its good rows to ``events`` /
``order_lines`` or ``records``, keyed, in one transaction per batch (plain ``INSERT`` first,
``INSERT OR IGNORE`` once a key is found stored: see :class:`_Writer`). The ``loads`` table
records the file with its sha256 and marks it ``done`` after the last batch, and a file already
done is skipped unless ``force=True``. A load that fails half-way keeps the batches it committed
(keys make a re-load skip them).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrm.exceptions import InputError, MappingError, StoreError, XrmError
from xrm.ingest._bulk import STAGE, BulkEvents, finish_stale
from xrm.ingest._events import insert_events_sql, insert_order_lines_sql, plan_events
from xrm.ingest._files import FileFacts, inspect_file
from xrm.ingest._mapping import Mapping, read_mapping
from xrm.ingest._padding import padded_columns
from xrm.ingest._progress import LoadProgress, ProgressCallback, print_progress
from xrm.ingest._readers import Batch, CsvShape, csv_line_numbers, read_batches
from xrm.ingest._records import insert_records_sql, plan_records
from xrm.ingest._report import LoadReport, RejectedRow

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from xrm.store import Store

__all__ = ["load_file"]

_SAMPLES = 5


def load_file(
    store: Store,
    path: str | Path,
    mapping: Mapping | str | Path | None = None,
    *,
    kind: str | None = None,
    force: bool = False,
    show_progress: bool = True,
    progress: ProgressCallback | None = None,
    bulk: BulkEvents | None = None,
) -> LoadReport:
    """Load one CSV, JSONL or Parquet file; returns what happened as a :class:`LoadReport`.

    ``mapping`` is a :class:`Mapping` or the path of a mapping TOML file; event files need none
    (``kind`` then defaults to ``"events"``). ``progress`` is called after every batch; with
    ``show_progress`` and no callback a one-line summary per file goes to stderr. ``bulk`` (from
    :func:`xrm.ingest.load_manifest` into an empty store) stages events for a keyed swap at the end:
    the file's ``loads`` row stays ``running`` until :meth:`BulkEvents.finish`.
    """
    path = Path(path)
    started = time.perf_counter()
    if bulk is None:
        finish_stale(store)  # events staged by a bulk load killed before its end
    resolved = _resolve_mapping(path, mapping, kind)
    facts = inspect_file(path, resolved)
    if facts.format == "jsonl" and resolved.kind == "records":
        raise InputError(
            f"{path}: records are read from CSV or Parquet files; JSONL files hold Segment events "
            f"(set kind = \"events\" in {resolved.origin}, or export the records as CSV)"
        )
    source = resolved.source or (path.name if resolved.kind == "events" else None)
    report = LoadReport(
        file=str(path),
        kind=resolved.kind,
        source=source,
        format=facts.format,
        sha256=facts.sha256,
        status="loaded",
        encoding=facts.encoding,
        delimiter=facts.delimiter,
        notes=list(facts.notes),
    )
    earlier = store.sql(
        "SELECT load_id FROM loads WHERE sha256 = ? AND kind = ? AND coalesce(source, '') = ? "
        "AND status = 'done' ORDER BY finished_at DESC LIMIT 1",
        [facts.sha256, resolved.kind, source or ""],
    ).fetchall()
    if earlier and not force:
        report.status = "already loaded"
        report.load_id = earlier[0][0]
        report.notes.append("a file with the same sha256 was loaded before; use force to load it again")
        report.seconds = time.perf_counter() - started
        return report
    # The plan checks the mapping against the file's columns: refuse before anything is written.
    schema = _schema(facts)
    plan = (plan_events if resolved.kind == "events" else plan_records)(facts, resolved, schema)
    report.notes += plan.notes
    plan_for = _planner(facts, resolved, schema, plan)
    callback = progress or (print_progress if show_progress else None)
    report.load_id = uuid.uuid4().hex
    store.sql(
        "INSERT INTO loads (load_id, file, sha256, kind, source, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, timezone('UTC', now()), 'running')",
        [report.load_id, str(path), facts.sha256, resolved.kind, source],
    ).fetchall()
    staged = bulk is not None and resolved.kind == "events"
    cur = store.con.cursor()
    try:
        cur.execute("SET SESSION TimeZone = 'UTC'")
        try:
            _load_batches(cur, store, facts, resolved, plan_for, source, report, callback, started,
                          STAGE if staged else "events")
            _finish(cur, report, "running" if staged else "done")
            if bulk is not None and staged:
                bulk.staged(report)
        except BaseException as exc:
            with contextlib.suppress(Exception):  # no transaction may be open
                cur.execute("ROLLBACK")
            full = _disk_full(exc)
            # Batches committed so far stay (a re-load skips them as duplicates); their rejects
            # go, so that the re-load reports them once.
            try:
                cur.execute("DELETE FROM rejected_rows WHERE load_id = ?", [report.load_id])
                _finish(cur, report, "failed")
            except Exception:
                if not full:  # on a full disk even this may not fit: the disk error is the news
                    raise
            if full:
                kept = (
                    f"{report.rows_loaded:,} rows of earlier batches were committed whole (a re-load "
                    f"skips them)" if report.rows_loaded else "nothing of this file was stored"
                )
                raise StoreError(
                    f"loading {path} stopped: the disk is full or a file-size limit (ulimit -f) was "
                    f"reached ({full}). The batch being written was rolled back; {kept}. Free space on "
                    f"the disk of {store.path} (or move store_path / temp_directory to a larger disk), "
                    f"then run the same `xrm load` again"
                ) from exc
            if isinstance(exc, XrmError) or not _is_duckdb_error(exc):
                raise
            raise StoreError(f"loading {path} failed in the store: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            cur.execute("DROP TABLE IF EXISTS __xrm_n")
        cur.close()
    report.rejects = _samples(store, report.load_id)
    report.seconds = time.perf_counter() - started
    store.sql(
        "UPDATE loads SET finished_at = timezone('UTC', now()) WHERE load_id = ?", [report.load_id]
    ).fetchall()
    return report


def _planner(
    facts: FileFacts, mapping: Mapping, schema: pa.Schema, plan: Any
) -> Callable[[pa.Table], Any]:
    """The plan for a batch: flat event files skip ``trim`` on the columns that need none."""
    if mapping.kind != "events" or facts.format == "jsonl":
        return lambda table: plan
    plans: dict[frozenset[str], Any] = {}

    def plan_for(table: pa.Table) -> Any:
        padded = padded_columns(table)
        if padded not in plans:
            plans[padded] = plan_events(facts, mapping, schema, padded)
        return plans[padded]

    return plan_for


def _schema(facts: FileFacts) -> pa.Schema:
    """The Arrow schema the readers will produce (CSV columns are read as text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if facts.format == "parquet":
        return pq.read_schema(facts.path)
    if facts.format == "csv":
        return pa.schema([(c, pa.string()) for c in facts.columns])
    return pa.schema([("__raw", pa.string())])


def _is_duckdb_error(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.Error)


_DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded", "disk is full")


def _disk_full(exc: BaseException) -> str:
    """The line of ``exc`` that says the disk (or the file-size limit) is full; "" if none does."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return str(exc)
    text = str(exc)
    for line in text.splitlines():
        if any(sign.lower() in line.lower() for sign in _DISK_FULL):
            return line.split("Error: ")[-1].strip()
    return ""


def _resolve_mapping(path: Path, mapping: Mapping | str | Path | None, kind: str | None) -> Mapping:
    if isinstance(mapping, Mapping):
        resolved = mapping
    elif mapping is not None:
        resolved = read_mapping(mapping)
    elif kind in (None, "events"):
        return Mapping.for_events()
    else:
        raise MappingError(
            f"{path}: a {kind} file needs a mapping (which column is source_key, first_name, ...); "
            f"write one as in docs/loading.md and pass it with --mapping"
        )
    if kind is not None and kind != resolved.kind:
        raise MappingError(
            f"{path}: asked to load it as {kind}, but its mapping {resolved.origin} says kind = "
            f"{resolved.kind!r}; make them agree"
        )
    return resolved


# DuckDB's row-group size. A transaction of whole row groups has them written straight to the
# file; the rows of a part-filled one go through the write-ahead log and a checkpoint, which
# costs about as much again.
ROW_GROUP_ROWS = 122_880


@dataclass
class _Counts:
    bad: int = 0
    added: int = 0
    order_lines: int = 0
    derived: int = 0


class _Writer:
    """Checks and stores batches, one transaction each.

    Rows go in with a plain ``INSERT`` first: with the keys' index it costs about half of
    ``INSERT OR IGNORE``, which looks every key up before inserting it. When a key is in the store
    already, the plain insert fails; the transaction is rolled back and written again with
    ``INSERT OR IGNORE``, which the rest of the file then keeps using. The result is the same
    either way: rows whose key is stored already count as duplicates.
    """

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        mapping: Mapping,
        plan_for: Callable[[pa.Table], Any],
        source: str | None,
        report: LoadReport,
        callback: ProgressCallback | None,
        started: float,
        table: str = "events",
    ) -> None:
        self.cur = cur
        self.events = mapping.kind == "events"
        self.table = table  # events, or a bulk load's staging table (no key: plain INSERT)
        self.plan_for = plan_for
        self.source = source
        self.report = report
        self.callback = callback
        self.started = started
        self.careful = False  # INSERT OR IGNORE from now on
        self.derived = 0

    def write(self, batch: Batch) -> None:
        """Check and store ``batch`` in one transaction; update the report."""
        cur = self.cur
        cur.register("__xrm_b", batch.table)
        try:
            # Checked outside the transaction (a temporary table), so a retry only re-inserts.
            plan = self.plan_for(batch.table)
            cur.execute(plan.normalise)
            while True:
                try:
                    cur.execute("BEGIN TRANSACTION")
                    c = self._store(plan.raw)
                    cur.execute("COMMIT")
                except Exception as exc:
                    if self.careful or not _is_key_conflict(exc):
                        raise
                    cur.execute("ROLLBACK")
                    self.careful = True
                    continue
                break
        finally:
            with contextlib.suppress(Exception):  # an aborted transaction refuses even this
                cur.unregister("__xrm_b")
        report, rows = self.report, batch.table.num_rows
        report.rows_read += rows
        report.rows_rejected += c.bad
        report.rows_loaded += c.added
        report.rows_duplicate += rows - c.bad - c.added
        report.order_lines += c.order_lines
        self.derived += c.derived
        if self.callback:
            elapsed = time.perf_counter() - self.started
            self.callback(LoadProgress(report.file, report.rows_read, batch.fraction, elapsed))

    def _store(self, raw: str) -> _Counts:
        """The checked batch ``__xrm_n`` into the store (inside the caller's transaction)."""
        cur, counts = self.cur, _Counts()
        counts.bad = _one(cur, "SELECT count(*) FROM __xrm_n WHERE __problem IS NOT NULL")
        if counts.bad:
            cur.execute(
                "INSERT INTO rejected_rows (load_id, file, line, field, value, reason, raw, "
                "rejected_at) SELECT ?, ?, n.__line, n.__problem.field, n.__problem.value, "
                f"n.__problem.reason, {raw}, timezone('UTC', now()) "
                "FROM __xrm_n n JOIN __xrm_b b ON b.__line = n.__line "
                "WHERE n.__problem IS NOT NULL",
                [self.report.load_id, self.report.file],
            )
        ignore = self.careful
        params = [self.source, self.report.load_id]
        if self.events:
            counts.derived = _one(cur, "SELECT count(*) FROM __xrm_n WHERE __problem IS NULL AND __derived")
            bare = self.table != "events"
            counts.added = _one(cur, insert_events_sql(ignore and not bare, self.table), params)
            counts.order_lines = _one(cur, insert_order_lines_sql(ignore))
        else:
            counts.added = _one(cur, insert_records_sql(ignore), params)
        return counts


def batch_size(batch_rows: int) -> int:
    """Rows per batch: ``batch_rows`` rounded to whole row groups (at least one)."""
    return max(1, round(batch_rows / ROW_GROUP_ROWS)) * ROW_GROUP_ROWS


def exact_batches(batches: Iterable[Batch], rows: int) -> Iterator[Batch]:
    """The same rows in batches of exactly ``rows`` (the last one fewer); no data is copied."""
    import pyarrow as pa

    held: list[pa.Table] = []
    count = 0
    for batch in batches:
        held.append(batch.table)
        count += batch.table.num_rows
        while count >= rows:
            table = pa.concat_tables(held) if len(held) > 1 else held[0]
            yield Batch(table.slice(0, rows), batch.fraction)
            rest = table.slice(rows)
            held, count = ([rest] if rest.num_rows else []), count - rows
    if count:
        yield Batch(pa.concat_tables(held) if len(held) > 1 else held[0], 1.0)


def prefetch(batches: Iterator[Batch]) -> Iterator[Batch]:
    """``batches``, the next one read by a worker thread while the caller works on this one.

    Arrow's readers and DuckDB both release the GIL, so reading (a third of the work for CSV)
    overlaps checking and inserting. At most two batches are held besides the one in hand.
    """
    import queue
    import threading

    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put(("error", exc))
        else:
            put(("done", None))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # a reader stopped early closes its file here, in its own thread

    thread = threading.Thread(target=work, name="xrm-ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _is_key_conflict(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.ConstraintException)


def _load_batches(
    cur: duckdb.DuckDBPyConnection,
    store: Store,
    facts: FileFacts,
    mapping: Mapping,
    plan_for: Callable[[pa.Table], Any],
    source: str | None,
    report: LoadReport,
    callback: ProgressCallback | None,
    started: float,
    table: str = "events",
) -> None:
    shape = CsvShape()
    writer = _Writer(cur, mapping, plan_for, source, report, callback, started, table)
    rows = batch_size(store.settings.batch_rows)
    for batch in prefetch(exact_batches(read_batches(facts, rows, shape), rows)):
        writer.write(batch)
    if facts.format == "csv":
        _fix_csv_lines(cur, facts, shape, report)
    if writer.derived:
        report.notes.append(f"{writer.derived:,} events had no messageId: ids derived from their content")
    if callback:
        callback(LoadProgress(report.file, report.rows_read, 1.0, time.perf_counter() - started, done=True))


def _fix_csv_lines(
    cur: duckdb.DuckDBPyConnection, facts: FileFacts, shape: CsvShape, report: LoadReport
) -> None:
    """Row numbers were counted as if each row were one line; correct them when it was not so,
    and keep the rows Arrow skipped for a wrong number of fields."""
    if shape.lines_exact and not facts.blank_lines:
        return
    wanted = {
        r[0]
        for r in cur.execute(
            "SELECT line FROM rejected_rows WHERE load_id = ?", [report.load_id]
        ).fetchall()
    }
    if not wanted and not shape.malformed:
        return
    mapped, malformed = csv_line_numbers(facts, wanted)
    if mapped:
        import pyarrow as pa

        pairs = pa.table({"row_no": list(mapped), "line_no": list(mapped.values())})
        cur.register("__xrm_lines", pairs)
        try:
            cur.execute(
                "UPDATE rejected_rows SET line = m.line_no FROM __xrm_lines m "
                "WHERE rejected_rows.load_id = ? AND rejected_rows.line = m.row_no",
                [report.load_id],
            )
        finally:
            cur.unregister("__xrm_lines")
    width = len(facts.columns)
    for line, text, fields in malformed:
        cur.execute(
            "INSERT INTO rejected_rows (load_id, file, line, field, value, reason, raw, rejected_at) "
            "VALUES (?, ?, ?, '(row)', NULL, ?, ?, timezone('UTC', now()))",
            [
                report.load_id,
                report.file,
                line,
                f"the row has {fields} field(s), the header {width}; check the delimiter "
                f"({facts.delimiter!r}) and quoting of this line",
                text,
            ],
        )
    report.rows_read += len(malformed)
    report.rows_rejected += len(malformed)


def _one(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> int:
    rows = cur.execute(sql, params).fetchall() if params is not None else cur.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0


def _finish(cur: duckdb.DuckDBPyConnection, report: LoadReport, status: str) -> None:
    cur.execute(
        "UPDATE loads SET status = ?, rows_read = ?, rows_loaded = ?, rows_duplicate = ?, "
        "rows_rejected = ?, finished_at = timezone('UTC', now()) WHERE load_id = ?",
        [
            status,
            report.rows_read,
            report.rows_loaded,
            report.rows_duplicate,
            report.rows_rejected,
            report.load_id,
        ],
    )


def _samples(store: Store, load_id: str | None) -> list[RejectedRow]:
    rows = store.sql(
        "SELECT line, field, value, reason FROM rejected_rows WHERE load_id = ? ORDER BY line LIMIT ?",
        [load_id, _SAMPLES],
    ).fetchall()
    return [RejectedRow(*r) for r in rows]
