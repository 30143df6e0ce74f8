"""`xrm backup DEST` and `xrm restore SRC`: a consistent copy of the store, and putting one back.

When no process holds the store, ``xrm backup`` copies it itself. While ``xrm serve`` runs it
holds the only write connection, so the backup is asked of the server (POST /v1/admin/backup),
downloaded, and verified here before it gets its name. See docs/store.md, "Backup and restore".
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from xrm.cli._output import console, emit, fail_cleanly, state

__all__ = ["backup", "restore"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _show(verb: str) -> Any:
    def render(d: dict[str, Any]) -> None:
        rows = sum(d["tables"].values())
        console.print(
            f"{verb} {d['path']}: {len(d['tables'])} tables, {rows:,} rows, "
            f"{d['bytes'] / 1e6:.1f} MB, schemas {d['schemas']} ({d['seconds']:.1f} s, via {d['via']})"
        )

    return render


def _through_server(url: str, key: str | None, store: Path, dest: Path, store_key: str | None = None) -> Any:
    """Ask the running server for a backup, download it next to ``dest``, verify it, name it."""
    import httpx

    from xrm.exceptions import StoreBusy, StoreError
    from xrm.store import verify_backup

    url = url.rstrip("/")
    auth = (key, "") if key else None
    try:
        health = httpx.get(f"{url}/healthz", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise StoreBusy(
            f"store {store} is held by another process, and no xrm server answers at {url} ({exc}); "
            f"pass --server URL of the `xrm serve` that holds it, or stop that process"
        ) from None
    served = Path(str(health.get("store", ""))).absolute()
    if served != store.absolute():
        raise StoreError(
            f"the server at {url} serves {served}, not {store.absolute()}; pass --server with the "
            f"URL of the server that holds {store}"
        )
    part = dest.with_name(f".{dest.name}.download")
    try:
        with httpx.stream("POST", f"{url}/v1/admin/backup", auth=auth, timeout=None) as resp:
            if resp.status_code != 200:
                resp.read()
                raise StoreError(f"the server at {url} refused the backup: {resp.status_code} {resp.text}")
            with part.open("wb") as fh:
                for chunk in resp.iter_bytes(1 << 20):
                    fh.write(chunk)
        info = verify_backup(part, label=dest, key=store_key)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    info.path = str(dest)
    return info


def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="New backup file (a DuckDB file with a manifest).")],
    server: Annotated[
        str | None,
        typer.Option("--server", help="URL of the `xrm serve` holding the store (default: public_base_url)."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="XRM_ADMIN_KEY", help="API key with the admin scope, for --server."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace DEST if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up the store to DEST, consistently, even while `xrm serve` is ingesting.

    The backup holds every event acknowledged before it began; `xrm restore` verifies it."""
    with fail_cleanly(as_json):
        from xrm.exceptions import StoreBusy, StoreError
        from xrm.store import backup_store, open_for_backup
        from xrm.store._backup import backup_path_problem
        from xrm.store._crypto import store_key

        settings = state(ctx).settings()
        skey = store_key(settings)
        store = Path(settings.store_path)
        dest = dest.absolute()
        problem = backup_path_problem(dest, force=force)
        if problem:
            raise StoreError(f"cannot write backup: {problem}")
        started = time.perf_counter()
        try:
            con = open_for_backup(store, key=skey, unsafe_crypto=settings.store_encryption_unsafe_crypto)
        except StoreBusy:
            info = _through_server(server or settings.public_base_url, key, store, dest, skey)
            info.seconds = time.perf_counter() - started  # made, downloaded and verified
            via = "server"
        else:
            try:
                info = backup_store(con, dest, force=force, key=skey)
            finally:
                con.close()
            via = "direct"
        emit({**info.as_dict(), "via": via}, as_json, _show("backup"))


def restore(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="Backup file written by `xrm backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the store if it exists (never one a server holds).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify the backup SRC and put it in place as the store (--store / store_path).

    Refuses files that are not xrm backups, damaged ones, ones from a newer xrm, and a store that a
    running process holds."""
    with fail_cleanly(as_json):
        from xrm.store import Store, restore_store
        from xrm.store._crypto import store_key

        settings = state(ctx).settings()
        info = restore_store(
            src, Path(settings.store_path), force=force, key=store_key(settings),
            unsafe_crypto=settings.store_encryption_unsafe_crypto,
        )
        with Store.open(settings):  # opens (and upgrades an older backup) before we say it is done
            pass
        emit({**info.as_dict(), "via": "file"}, as_json, _show("restored"))
