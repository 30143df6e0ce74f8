"""The `xrm` command line (Typer); `xrm --help` lists the commands."""

from xrm.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
