"""`xrm value fit|score|tiers|segments|report` on a real store file, JSON and Rich output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from xrm.cli._value import value_app
from xrm.differentiate import build_purchase_summaries

runner = CliRunner()


@pytest.fixture
def env(cdnow_store):
    build_purchase_summaries(cdnow_store)
    path = str(cdnow_store.path)
    cdnow_store.close()  # the CLI opens the file itself (one writing process)
    return {"XRM_STORE_PATH": path, "XRM_MEMORY_LIMIT": "2GB", "XRM_THREADS": "2"}


def _json(args: list[str], env: dict[str, str]) -> dict:
    result = runner.invoke(value_app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_fit_score_tiers_report(env):
    fit = _json(["fit", "--model", "paretonbd"], env)
    assert fit["purchases"]["model"] == "pareto/nbd" and fit["purchases"]["n"] == 2357
    assert set(fit["purchases"]["se"]) == {"r", "alpha", "s", "beta"}
    first = _json(["score", "--no-refit", "--model", "paretonbd"], env)
    assert first["fit_id"] == fit["fit_id"]
    second = _json(["score", "--mvc-share", "0.02"], env)
    assert second["model"] == "bg/nbd"
    tiers = _json(["tiers"], env)
    assert tiers["run_id"] == second["run_id"] and tiers["migration"]["to_run"] == second["run_id"]
    assert sum(t["customers"] for t in tiers["tiers"]) == 2357
    report = _json(["report", "--top", "3"], env)
    assert len(report["top_customers"]) == 3
    human = runner.invoke(value_app, ["report"], env={**env, "COLUMNS": "160"})
    assert human.exit_code == 0 and "top customers by CLV" in human.output and "MVC" in human.output


def test_segments_and_clean_errors(env):
    seg = _json(["segments"], env)
    assert seg["k"] == 1 and len(seg["report"]) == 1
    bad = runner.invoke(value_app, ["score", "--discount-rate", "3", "--json"], env=env)
    assert bad.exit_code == 1 and "discount_rate" in json.loads(bad.stdout)["message"]
    first = runner.invoke(value_app, ["tiers", "--json"], env=env)
    assert first.exit_code == 1 and "no value scoring run" in json.loads(first.stdout)["message"]
