"""`xrm users add|list|passwd` on a real store file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from xrm.cli._users import users_app
from xrm.store import Store
from xrm.web import authenticate


def test_users_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = tmp_path / "xrm.duckdb"
    monkeypatch.setenv("XRM_STORE_PATH", str(store_path))
    app = typer.Typer()
    app.add_typer(users_app, name="users")
    run = CliRunner().invoke
    r = run(app, ["users", "add", "eva", "--role", "marketer", "--lang", "en", "--password", "x" * 12,
                  "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"username": "eva", "role": "marketer", "lang": "en"}
    r = run(app, ["users", "add", "eva", "--password", "y" * 12])
    assert r.exit_code == 1 and "exists already" in r.output
    r = run(app, ["users", "add", "bob", "--role", "boss", "--password", "short"])
    assert r.exit_code == 1 and "role = 'boss'" in r.output and "at least 10" in r.output
    r = run(app, ["users", "passwd", "eva"], input="z" * 12 + "\n" + "z" * 12 + "\n")
    assert r.exit_code == 0, r.output
    r = run(app, ["users", "list", "--json"])
    assert [u["username"] for u in json.loads(r.stdout)] == ["eva"]
    with Store.open(store_path) as store:
        assert authenticate(store, "eva", "z" * 12) is not None
        assert authenticate(store, "eva", "x" * 12) is None
