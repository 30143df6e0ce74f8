"""`xrm keys create|list|rotate|revoke|audit` on a real store file, used by the real app between."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from typer.testing import CliRunner

from xrm.api import create_app
from xrm.cli import app
from xrm.config import Settings

runner = CliRunner()


@contextmanager
def _served(settings: Settings) -> Iterator[httpx.Client]:
    """The real app on uvicorn in a thread (it owns the store until it stops)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _xrm(store: Path, *args: str) -> str:
    result = runner.invoke(app, ["--store", str(store), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_lifecycle_and_audit(tmp_path: Path) -> None:
    store = tmp_path / "keys.duckdb"
    made = json.loads(_xrm(store, "keys", "create", "support", "--scope", "read", "--rate", "50", "--json"))
    token = made["token"]
    assert made["scope"] == "read" and made["rate_per_s"] == 50 and token.startswith(made["prefix"])
    plain = _xrm(store, "keys", "create", "shop", "--workspace", "webshop")  # the token alone on stdout
    shop_token = plain.strip().splitlines()[-1]
    assert shop_token.startswith("xrm_") and len(shop_token) == 56
    listed = _xrm(store, "keys", "list", "--json")
    assert token not in listed and shop_token not in listed
    assert [(k["name"], k["scope"], k["workspace"]) for k in json.loads(listed)] == [
        ("support", "read", "support"), ("shop", "write", "webshop")]

    settings = Settings(store_path=store, memory_limit="1GB", threads=1)
    with _served(settings) as client:
        ev = {"userId": "u1", "event": "E", "timestamp": "2024-05-01T12:00:00Z"}
        assert client.post("/v1/track", json=ev, auth=(shop_token, "")).status_code == 200
        r = client.get("/v1/profiles/1", headers={"Authorization": f"Bearer {token}",
                                                       "X-Xrm-Purpose": "ticket 17"})
        assert r.status_code == 200

    rows = json.loads(_xrm(store, "keys", "audit", "--json"))
    assert [(r["key_name"], r["action"], r["target"], r["purpose"]) for r in rows] == [
        ("support", "profile.read", "1", "ticket 17")]
    assert json.loads(_xrm(store, "keys", "audit", "--key", "shop", "--json")) == []  # writes are not audited
    assert runner.invoke(app, ["--store", str(store), "keys", "audit"]).exit_code == 0  # the table

    rotated = json.loads(_xrm(store, "keys", "rotate", "support", "--grace", "0", "--json"))
    assert rotated["token"] != token and rotated["secrets"] == 1
    gone = json.loads(_xrm(store, "keys", "revoke", made["key_id"], "--json"))
    assert gone["active"] is False and gone["revoked_at"]
    assert [k["name"] for k in json.loads(_xrm(store, "keys", "list", "--json"))] == ["shop"]
    assert len(json.loads(_xrm(store, "keys", "list", "--all", "--json"))) == 2


def test_bad_input_is_named(tmp_path: Path) -> None:
    store = tmp_path / "keys.duckdb"
    result = runner.invoke(app, ["--store", str(store), "keys", "create", "x", "--scope", "root", "--json"])
    assert result.exit_code == 1
    assert "scope 'root' is not known; use one of write, read, admin" in json.loads(result.stdout)["message"]
    result = runner.invoke(app, ["--store", str(store), "keys", "revoke", "nobody", "--json"])
    assert result.exit_code == 1 and "xrm keys list" in json.loads(result.stdout)["message"]
    result = runner.invoke(app, ["--store", str(store), "keys", "rotate", "nobody", "--grace", "-1"])
    assert result.exit_code == 1
