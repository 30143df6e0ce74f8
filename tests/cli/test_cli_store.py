from __future__ import annotations

import json

from typer.testing import CliRunner

from xrm.cli import app
from xrm.store import all_schemas

runner = CliRunner()


def test_init_and_info_json(tmp_path):
    store = tmp_path / "cli.duckdb"
    result = runner.invoke(app, ["--store", str(store), "init", "--json"])
    assert result.exit_code == 0, result.output
    ingest = next(s for s in all_schemas() if s.capability == "ingest")
    assert json.loads(result.stdout)["schemas"]["ingest"] == ingest.latest
    result = runner.invoke(app, ["--store", str(store), "info", "--json"])
    assert json.loads(result.stdout)["tables"]["events"] == 0


def test_error_is_clean_and_json(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"garbage" * 500)
    result = runner.invoke(app, ["--store", str(bad), "info", "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"] == "StoreVersionError" and "not an xrm store" in payload["message"]


def test_config_lists_every_setting():
    from xrm.config import Settings

    result = runner.invoke(app, ["config", "--json"])
    names = {row["setting"] for row in json.loads(result.stdout)}
    assert names == set(Settings.model_fields)
