"""Value charts on CDNOW: real SVG and PNG files, and the tracking plot's numbers are the model's
expected cumulative repeat purchases (FHL 2005, Figure 2) and the actual ones."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from xrm.cli._value import value_app
from xrm.differentiate import (
    build_purchase_summaries,
    load_value_models,
    score_value,
    tracking_data,
    value_charts,
)
from xrm.exceptions import ModelError

NAMES = ("clv_distribution", "tracking", "tier_pyramid")


@pytest.fixture
def scored(cdnow_store):
    build_purchase_summaries(
        cdnow_store, observation_end="1998-06-30", calibration_end="1997-09-30", time_unit="W"
    )
    score_value(cdnow_store)
    return cdnow_store


def test_tracking_plot_is_the_models_expected_cumulative_repeat_purchases(scored, cdnow_orders):
    track = tracking_data(scored)
    assert len(track) == 78 and track["last_day"].iloc[-1] == "1998-06-30"
    assert (track["period"] == "calibration").sum() == 39  # weeks 1-39 end by 1997-09-30
    purchases, _, _ = load_value_models(scored)
    s = scored.sql("SELECT frequency, frequency_holdout, \"T\", first_purchase FROM purchase_summaries").df()
    # the model at week 78, customer by customer: E[X(T + 39)] summed (the paper's end point)
    assert track["expected"].iloc[-1] == pytest.approx(purchases.expected_purchases_new(s["T"] + 39.0).sum(),
                                                        rel=1e-12)
    # and at each week: Σ over customers who had entered of E[X(weeks since their first purchase)]
    first = (s["first_purchase"].dt.normalize() - np.datetime64("1997-01-01")).dt.days.to_numpy()
    for week in (1, 12, 39, 52):
        t = (7 * week - 1 - first) / 7.0
        by_hand = purchases.expected_purchases_new(t[t >= 0]).sum()
        assert track["expected"].iloc[week - 1] == pytest.approx(by_hand, rel=1e-12), week
    # actual: repeat purchase days, 2,457 in the calibration weeks and 4,339 by week 78 (FHL 2005)
    assert track["actual"].iloc[38] == s["frequency"].sum() == 2457
    assert track["actual"].iloc[-1] == s["frequency"].sum() + s["frequency_holdout"].sum() == 4339
    days = cdnow_orders.assign(day=cdnow_orders["ts"].dt.normalize()).drop_duplicates(["user_id", "day"])
    repeat = days[days["day"] > days.groupby("user_id")["day"].transform("min")]
    weeks = (repeat["day"] - np.datetime64("1997-01-01")).dt.days // 7
    by_week = weeks.value_counts().sort_index().cumsum()
    assert track["actual"].iloc[25] == by_week[by_week.index <= 25].iloc[-1]
    assert np.all(np.diff(track["actual"]) >= 0) and np.all(np.diff(track["expected"]) > 0)
    # the BG/NBD under-forecasts week 78 by about 4 % (FHL 2005 §6)
    assert -0.05 < track["expected"].iloc[-1] / 4339 - 1 < -0.03


def test_value_charts_writes_valid_svg_and_png(scored, tmp_path):
    out = value_charts(scored, tmp_path / "charts", formats=("svg", "png", "json"))
    assert sorted(out["files"]) == sorted(str(tmp_path / "charts" / f"{n}.{f}")
                                          for n in NAMES for f in ("svg", "png", "json"))
    for name in NAMES:
        root = ET.parse(tmp_path / "charts" / f"{name}.svg").getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert len(list(root.iter("{http://www.w3.org/2000/svg}path"))) > 3  # it drew marks
        png = (tmp_path / "charts" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
        spec = json.loads((tmp_path / "charts" / f"{name}.json").read_text())
        assert spec["$schema"].endswith("vega-lite/v5.json")
    svg = (tmp_path / "charts" / "tier_pyramid.svg").read_text()
    assert ("MVC" in svg and "BZ" in svg) or "normal" in svg
    assert out["tracking"] == {"weeks": 78, "actual": 4339, "expected": pytest.approx(4339 * 0.96, rel=0.01)}


def test_charts_need_a_scoring_run(cdnow_store, tmp_path):
    build_purchase_summaries(cdnow_store)
    with pytest.raises(ModelError, match="xrm value score"):
        value_charts(cdnow_store, tmp_path)


def test_report_cli_writes_the_charts(scored, tmp_path):
    path = str(scored.path)
    scored.close()
    env = {"XRM_STORE_PATH": path, "XRM_MEMORY_LIMIT": "2GB", "XRM_THREADS": "2"}
    args = ["report", "--charts", str(tmp_path / "c"), "--chart-format", "svg", "--json"]
    result = CliRunner().invoke(value_app, args, env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert sorted(out["charts"]["files"]) == sorted(str(tmp_path / "c" / f"{n}.svg") for n in NAMES)
