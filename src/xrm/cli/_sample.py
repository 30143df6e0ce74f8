"""`xrm sample`: the realistic sample business (being built: see issue 2)."""

from __future__ import annotations

from typing import Annotated

import typer

from xrm.cli._output import fail_cleanly
from xrm.exceptions import NotYetImplemented

__all__ = ["sample"]


def sample(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write the sample business's source files and ground truth."""
    with fail_cleanly(as_json):
        raise NotYetImplemented("`xrm sample` is not built yet (issue 2)")
