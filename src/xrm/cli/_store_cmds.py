"""`xrm init`, `xrm info`, `xrm config` and `xrm store ...`: the store and the settings."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["config", "info", "init", "store_app"]

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


store_app = typer.Typer(
    help="Rewrite the store file: encrypt, decrypt, compact (with no server running).",
    no_args_is_help=True,
)


def _rewrite(ctx: typer.Context, as_json: bool, verb: str) -> None:
    with fail_cleanly(as_json):
        from pathlib import Path

        from xrm.exceptions import ConfigError
        from xrm.store._compact import compact_store, decrypt_store, encrypt_store
        from xrm.store._crypto import store_key

        settings = state(ctx).settings()
        path, key = Path(settings.store_path), store_key(settings)
        unsafe, memory = settings.store_encryption_unsafe_crypto, settings.memory_limit
        if verb in ("encrypt", "decrypt") and key is None:
            raise ConfigError(
                f"`xrm store {verb}` needs the key: set XRM_STORE_ENCRYPTION_KEY (store_encryption_key), "
                f"at least 16 characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if verb == "encrypt":
            assert key is not None
            saved = encrypt_store(path, key, unsafe_crypto=unsafe, memory_limit=memory)
            note = "keep XRM_STORE_ENCRYPTION_KEY set and safe: without it the store cannot be opened"
        elif verb == "decrypt":
            assert key is not None
            saved = decrypt_store(path, key, unsafe_crypto=unsafe, memory_limit=memory)
            note = "now unset XRM_STORE_ENCRYPTION_KEY (a key set for a plain store is refused)"
        else:
            saved = compact_store(path, memory_limit=memory, settings=settings)
            note = "deleted rows are gone from the file"
        data = {"store": str(path), "action": verb, "bytes": path.stat().st_size, "bytes_saved": saved,
                "encrypted": key is not None and verb != "decrypt", "note": note}
        emit(data, as_json, lambda d: console.print(f"store {d['store']}: {verb}ed; {note}"))


@store_app.command("encrypt")
def encrypt(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Encrypt the plain store with store_encryption_key (XRM_STORE_ENCRYPTION_KEY); stop `xrm serve` first.

    Backups made before stay plain: make a new one and delete the old ones."""
    _rewrite(ctx, as_json, "encrypt")


@store_app.command("decrypt")
def decrypt(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Write the encrypted store back as a plain file (key: XRM_STORE_ENCRYPTION_KEY); stop the server."""
    _rewrite(ctx, as_json, "decrypt")


@store_app.command("compact")
def compact(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Rewrite the store with live rows only, so erased people are gone from its free blocks too.

    Needs the store closed: stop `xrm serve` first (DuckDB cannot swap the file under an open one)."""
    _rewrite(ctx, as_json, "compact")
