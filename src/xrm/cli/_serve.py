"""`xrm serve`: the event API, profiles and timeline over HTTP (FastAPI on uvicorn).

The CLI and the API are sibling interfaces (neither imports the other), so the command hands the
process over to the server program, ``python -m xrm.api``, with the CLI's settings in ``XRM_*``
variables: signals (Ctrl-C, SIGTERM) then reach uvicorn directly.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from xrm.cli._output import console, fail_cleanly, state

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = "info",
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve the Segment-compatible event API and the profile timeline; owns the store while it runs.

    OpenAPI docs at http://HOST:PORT/docs. Stop with Ctrl-C: queued events are written first.
    """
    with fail_cleanly():
        settings = state(ctx).settings()  # checked here, so a bad setting fails before the hand-over
        if not settings.write_keys:
            console.print("[yellow]no write_keys configured: if no key was made with `xrm keys create` "
                          "either, any write key is accepted and profiles cannot be read[/]")
        env = {**os.environ, "XRM_STORE_PATH": str(settings.store_path), "XRM_ENGINE": settings.engine}
        argv = [sys.executable, "-m", "xrm.api", "--host", host, "--port", str(port),
                "--log-level", log_level]
        if access_log:
            argv.append("--access-log")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
