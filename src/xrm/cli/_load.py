"""`xrm load`: files into the store (being built: see issue 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xrm.cli._output import fail_cleanly
from xrm.exceptions import NotYetImplemented

__all__ = ["load"]


def load(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV, JSONL or Parquet files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Load files into the store."""
    with fail_cleanly(as_json):
        raise NotYetImplemented("`xrm load` is not built yet (issue 2)")
