"""The lifetime-value benchmark's own machinery: the simulated population follows the models it is
drawn from, and a missing PyMC-Marketing is reported in the section instead of failing the run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_value  # noqa: E402


def test_the_simulated_population_is_the_bgnbd_gamma_gamma_process():
    from xrm.differentiate import BetaGeoNBD, GammaGamma

    d = bench_value.simulate_population(30_000, seed=5)
    assert (d["recency"] <= d["T"]).all() and ((d["frequency"] > 0) == (d["recency"] > 0)).all()
    assert ((d["frequency"] > 0) == (d["monetary_value"] > 0)).all()
    # Fitted on its own draw, each model finds the parameters it was drawn from (within 4 SE).
    for model in (BetaGeoNBD().fit(d), GammaGamma().fit(d)):
        assert model.params_ is not None
        for k, v in model.params_.items():
            se = model.se_[k]
            assert se is not None and abs(v - bench_value.POPULATION[k]) < 4 * se, (k, v, se)


def test_a_missing_peer_is_reported_not_fatal(monkeypatch):
    monkeypatch.setattr(bench_value, "_CLV", {k: bench_value._CLV[k] for k in ("xrm", "PyMC-Marketing")})
    monkeypatch.setattr(bench_value, "_installed", lambda lib: lib == "xrm")
    result = bench_value.clv_side_by_side(bench_value.simulate_population(3_000), "tiny", 1)
    ours = result["libs"]["xrm"]["run"]
    assert np.isfinite(ours.median_s) and set(ours.extra["params"]) == set(bench_value.POPULATION)
    assert ours.extra["nonfinite"] == 0 and len(ours.extra["scores"]["clv"]) == 2_000
    text = "\n".join(bench_value._clv_section([result], quick=True))
    assert bench_value.PYMC_MISSING in text
    assert "not measurable in this run" in text
