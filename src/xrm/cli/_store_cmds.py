"""`xrm init`, `xrm info` and `xrm config`: the store and the settings."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["config", "info", "init"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def init(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Create the store (or upgrade an older one) and show its schema versions."""
    with fail_cleanly(as_json):
        from xrm.store import Store

        settings = state(ctx).settings()
        with Store.open(settings) as store:
            versions = store.schema_versions()
        data = {"store": str(settings.store_path), "schemas": {k: v[0] for k, v in versions.items()}}
        emit(data, as_json, lambda d: console.print(f"store {d['store']} ready: {d['schemas']}"))


def info(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show the store's tables and their row counts."""
    with fail_cleanly(as_json):
        from xrm.store import Store

        settings = state(ctx).settings()
        with Store.open(settings) as store:
            data: dict[str, Any] = {
                "store": str(store.path),
                "schemas": {k: v[0] for k, v in store.schema_versions().items()},
                "tables": {t: store.count(t) for t in store.tables()},
            }

        def render(d: dict[str, Any]) -> None:
            table = Table(title=f"store {d['store']}")
            table.add_column("table")
            table.add_column("rows", justify="right")
            for name, rows in d["tables"].items():
                table.add_row(name, f"{rows:,}")
            console.print(table)

        emit(data, as_json, render)


def config(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show every setting: its value now, where to set it, and its help text."""
    with fail_cleanly(as_json):
        from xrm.config import Settings

        settings = state(ctx).settings()
        rows = [
            {
                "setting": name,
                "env": f"XRM_{name.upper()}",
                "value": getattr(settings, name),
                "help": field.description or "",
            }
            for name, field in Settings.model_fields.items()
        ]

        def render(items: list[dict[str, Any]]) -> None:
            table = Table(title="xrm settings (xrm.toml, XRM_* variables)")
            for col in ("setting", "env", "value", "help"):
                table.add_column(col, overflow="fold")
            for r in items:
                table.add_row(r["setting"], r["env"], escape(str(r["value"])), escape(r["help"]))
            console.print(table)

        emit(rows, as_json, render)
