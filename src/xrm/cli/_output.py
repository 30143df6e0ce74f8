"""Shared CLI plumbing: settings from global options, JSON or Rich output, clean errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from xrm.exceptions import XrmError

__all__ = ["CliState", "console", "emit", "fail_cleanly", "progress_bar", "state"]

console = Console(stderr=True)


@dataclass
class CliState:
    """What the global options (``xrm --store ... --config ...``) set for every command."""

    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> Any:
        from xrm.config import load_settings

        return load_settings(**self.overrides)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print ``data`` as JSON on stdout (for scripts) or through ``render`` (for people)."""
    if as_json or render is None:
        sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")
    else:
        render(data)


@contextmanager
def fail_cleanly(as_json: bool = False) -> Iterator[None]:
    """Turn an :class:`XrmError` into a readable message and exit code 1, without a traceback."""
    try:
        yield
    except XrmError as exc:
        if as_json:
            payload = {"error": type(exc).__name__, "message": str(exc)}
            sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        else:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise typer.Exit(1) from None


def progress_bar(*, disable: bool = False, unit: str = "rows") -> Progress:
    """A Rich progress bar showing count, rate (``unit``/s), elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )
