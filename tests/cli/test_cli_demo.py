"""`xrm demo --no-serve --json` on a small sample business: what the demo is there to show (value tiers,
needs segments, drop-outs ranked by P(alive) against recency, identity accuracy) comes out of the
real pipeline, keyed to the sample's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xrm.cli import app


def test_demo_reports_tiers_segments_dropouts_and_identity(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "--store", str(tmp_path / "xrm.duckdb"), "demo", "--dir", str(tmp_path / "demo"),
        "--customers", "400", "--seed", "7", "--no-serve", "--json",
    ])
    assert result.exit_code == 0, result.output
    value = json.loads(result.stdout[result.stdout.index("{"):])["value"]
    tiers = {t["tier"]: t for t in value["tiers"]}
    assert {"MVC", "MGC"} <= tiers.keys()
    assert sum(t["customers"] for t in tiers.values()) > 300
    assert abs(sum(t["value_share"] for t in tiers.values()) - 1) < 1e-9
    assert value["segments"] and all(g["description"] for g in value["segments"])
    d = value["dropouts"]
    assert 0 < d["dropped"] < d["customers"] and d["auc_p_alive"] > d["auc_recency"]
    assert value["identity"]["records"] > value["identity"]["persons"] >= 400
    assert value["identity"]["cluster_f1"] > 0.7
