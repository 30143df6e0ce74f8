"""The `xrm` command: one Typer app, one command group per capability."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xrm.cli import _backup, _store_cmds
from xrm.cli._output import CliState

__all__ = ["app"]

app = typer.Typer(
    name="xrm",
    help="xrm: one-to-one relationship marketing. Identify, differentiate, interact, customize.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global(
    ctx: typer.Context,
    store: Annotated[
        Path | None, typer.Option("--store", help="Store file (overrides XRM_STORE_PATH).")
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="Batch engine: duckdb or spark[://host:port].")
    ] = None,
) -> None:
    from xrm._redact import install_redaction

    install_redaction()  # no personal data in the CLI's logs (xrm._redact)
    ctx.obj = CliState({"store_path": store, "engine": engine})


@app.command("version")
def _version() -> None:
    """Print xrm's version."""
    from xrm import __version__

    typer.echo(__version__)


app.command("init")(_store_cmds.init)
app.command("info")(_store_cmds.info)
app.command("config")(_store_cmds.config)
app.command("backup")(_backup.backup)
app.command("restore")(_backup.restore)
app.add_typer(_store_cmds.store_app, name="store")

# Capability commands live in their own modules, imported here (imports stay lazy inside them).
from xrm.cli import (  # noqa: E402
    _customize,
    _identify,
    _interact,
    _keys,
    _load,
    _network,
    _pipeline,
    _sample,
    _serve,
    _timeline,
    _users,
    _value,
)

app.command("load")(_load.load)
app.command("sample")(_sample.sample)
app.command("pipeline")(_pipeline.pipeline)
app.command("demo")(_pipeline.demo)
app.add_typer(_customize.offers_app, name="offers")
app.add_typer(_network.network_app, name="network")
app.add_typer(_interact.consent_app, name="consent")
app.add_typer(_interact.campaign_app, name="campaign")
app.add_typer(_interact.gdpr_app, name="gdpr")
app.add_typer(_value.value_app, name="value")
app.add_typer(_value.needs_app, name="needs")
app.command("serve")(_serve.serve)
app.command("timeline")(_timeline.timeline_command)
app.add_typer(_identify.identify_app, name="identify")
app.add_typer(_users.users_app, name="users")
app.add_typer(_keys.keys_app, name="keys")
