"""`xrm sample` writes the files and prints the manifest and its speed."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from xrm.cli import app

runner = CliRunner()


def test_sample_command_writes_manifest_and_reports_speed(tmp_path):
    out = tmp_path / "s"
    result = runner.invoke(app, ["sample", "--out", str(out), "--customers", "300", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["manifest"]["customers"] == 300 and data["manifest"]["seed"] == 5
    assert data["events_per_s"] > 0 and data["customers_per_s"] > 0
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == data["manifest"]


def test_sample_command_refuses_bad_input_cleanly(tmp_path):
    result = runner.invoke(app, ["sample", "--out", str(tmp_path), "--customers", "0", "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"] == "ConfigError" and "customers = 0" in payload["message"]
