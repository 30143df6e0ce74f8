"""The `network` Typer sub-app end to end on a store file, and the public surface."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

import xrm.network
from xrm.cli._app import _global
from xrm.cli._network import network_app

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(_global)
    app.add_typer(network_app, name="network")
    return app


def test_cli_load_analyse_report(tmp_path: Path):
    store = tmp_path / "net.duckdb"
    rels = tmp_path / "rels.csv"
    rels.write_text("src,dst,rel_type\na,b,referred\nb,c,mentions\nc,c,mentions\n", encoding="utf-8")
    app = _app()
    r = runner.invoke(app, ["--store", str(store), "network", "load-relationships", str(rels), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["rows_rejected"] == 1
    r = runner.invoke(app, ["--store", str(store), "network", "analyse", "--no-derive", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["connected_parties"] == 3
    out = tmp_path / "ron.html"
    r = runner.invoke(
        app, ["--store", str(store), "network", "report", "--format", "html", "--output", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "Return on Network" in r.stdout and "<table>" in out.read_text(encoding="utf-8")


def test_cli_errors_are_clean(tmp_path: Path):
    r = runner.invoke(_app(), ["--store", str(tmp_path / "s.duckdb"), "network", "report", "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["error"] == "InputError"


def test_public_surface():
    assert sorted(xrm.network.__all__) == sorted(
        n
        for n in dir(xrm.network)
        if not n.startswith("_")
        and n not in {"annotations"}
        and not isinstance(getattr(xrm.network, n), type(xrm))
    )
    for name in xrm.network.__all__:
        assert getattr(xrm.network, name) is not None
