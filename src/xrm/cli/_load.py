"""`xrm load FILE...`: files (or a manifest.json) into the store, with a progress bar and a summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xrm.cli._output import console, emit, fail_cleanly, state
from xrm.exceptions import InputError

if TYPE_CHECKING:
    from xrm.ingest import LoadProgress, LoadReport

__all__ = ["load"]


def load(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="CSV, JSONL or Parquet files, or a manifest.json naming them.")
    ],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="Mapping TOML for the files (records need one)."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="records or events (default: the mapping's, else events).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Load a file again even if the same bytes were loaded.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Load files into the store; bad rows are kept in rejected_rows with their reasons.

    Exits 0 when every file was loaded (even with rejected rows), 1 when a file was refused.
    """
    with fail_cleanly(as_json):
        from xrm.ingest import is_manifest, load_file, load_manifest
        from xrm.store import Store

        if kind not in (None, "records", "events"):
            raise InputError(f"--kind {kind!r}: use records or events")
        results: list[dict[str, Any]] = []
        refused = False
        with Store.open(state(ctx).settings()) as store, _bar(disable=as_json) as on_progress:
            for path in files:
                try:
                    if is_manifest(path):
                        reports = load_manifest(
                            store, path, force=force, show_progress=False, progress=on_progress
                        )
                    else:
                        reports = [
                            load_file(
                                store,
                                path,
                                mapping,
                                kind=kind,
                                force=force,
                                show_progress=False,
                                progress=on_progress,
                            )
                        ]
                except InputError as exc:  # MappingError too: refuse this file, go on
                    refused = True
                    results.append(
                        {"file": str(path), "status": "refused", "error": type(exc).__name__,
                         "message": str(exc)}
                    )
                    if not as_json:
                        console.print(f"[bold red]refused:[/] {exc}", highlight=False)
                    continue
                for report in reports:
                    results.append(report.as_dict())
                    if not as_json:
                        _show(report)
        if as_json:
            emit(results, True)
        if refused:
            raise typer.Exit(1)


def _show(report: LoadReport) -> None:
    colour = "green" if not report.rows_rejected else "yellow"
    console.print(f"[{colour}]{report.summary()}[/]", highlight=False)
    for note in report.notes:
        console.print(f"  note: {note}", highlight=False)
    if report.rows_rejected:
        for line in report.reject_lines():
            console.print(f"  rejected: {line}", highlight=False, markup=False)
        more = report.rows_rejected - len(report.rejects)
        tail = f" (and {more:,} more)" if more > 0 else ""
        console.print(
            f"  {report.rows_rejected:,} row(s) kept in rejected_rows{tail}; "
            f"see them with: SELECT * FROM rejected_rows WHERE load_id = '{report.load_id}'",
            highlight=False,
        )


@contextmanager
def _bar(*, disable: bool) -> Iterator[Callable[[LoadProgress], None] | None]:
    """A Rich bar per file: share of the file read, rows so far and rows/s."""
    if disable:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:

        def on_progress(p: LoadProgress) -> None:
            if p.file not in tasks:
                tasks[p.file] = bar.add_task(Path(p.file).name, total=1.0, rows="")
            bar.update(
                tasks[p.file],
                completed=p.fraction,
                rows=f"{p.rows:,} rows, {p.rate:,.0f} rows/s",
            )

        yield on_progress
