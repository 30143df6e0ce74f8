"""Lifetime value: xrm against `lifetimes` on CDNOW, and the purchase summary at scale.

1. Fit time (median of 3 fresh processes; one with ``--quick``) and parameter agreement of
   BG/NBD, Pareto/NBD and Gamma-Gamma on the published CDNOW calibration summary (2,357
   customers, 39 weeks; shipped in the `lifetimes` wheel, read by path).  Both libraries get the
   same data; the published file rounds t_x and T to 2 decimals, so t_x is clipped to T (21 rows)
   because `lifetimes` refuses t_x > T.  xrm's time includes its standard errors (a Hessian);
   `lifetimes` computes none.
2. The whole process, side by side: fit BG/NBD + Gamma-Gamma and score every customer (expected
   purchases in 52 weeks, P(alive), 12-month value at 1 % a month) with xrm, `lifetimes` and
   PyMC-Marketing (MAP with flat priors, i.e. maximum likelihood), each in fresh processes, on
   CDNOW and on a population simulated from the BG/NBD + Gamma-Gamma generative process
   (100,000 customers with ``--quick``, else 1,000,000).  ``import`` is timed separately.
3. The DuckDB purchase summary (``purchase_summary``, the same Ibis expression the pipeline runs)
   over a synthetic orders Parquet file of 10M transactions (1M with ``--quick``), 10 per customer
   on average: wall time and the peak resident memory of the whole process.

    python -m bench --only value [--quick]
    python -c "from bench.bench_value import summary_scale; print(summary_scale(100_000_000))"
"""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench._harness import Measurement, Section, machine_line, measure_python

__all__ = ["clv_side_by_side", "run", "simulate_population", "summary_scale", "write_orders"]

_DATA = """
import warnings
import numpy as np
import pandas as pd
warnings.simplefilter("ignore")
d = pd.read_csv({path!r})
d["t_x"] = np.minimum(d["t_x"], d["T"])
x, t_x, T, zbar = d["x"], d["t_x"], d["T"], d["zbar"]
rep = d[d["x"] > 0]
xrm_data = pd.DataFrame({{"frequency": x, "recency": t_x, "T": T, "monetary_value": zbar}})
xrm_rep = xrm_data[xrm_data["frequency"] > 0]
{imports}
import scipy.optimize  # xrm imports it at its first fit; the peers at import: untimed for all
"""

_FITS: dict[str, dict[str, tuple[str, str]]] = {
    # model: library: (import line, timed code that sets `extra`)
    "BG/NBD": {
        "xrm": ("from xrm.differentiate import BetaGeoNBD",
                "m = BetaGeoNBD().fit(xrm_data); extra = {'params': m.params_}"),
        "lifetimes": ("from lifetimes import BetaGeoFitter",
                      "m = BetaGeoFitter().fit(x, t_x, T); extra = {'params': m.params_.to_dict()}"),
    },
    "Pareto/NBD": {
        "xrm": ("from xrm.differentiate import ParetoNBD",
                "m = ParetoNBD().fit(xrm_data); extra = {'params': m.params_}"),
        "lifetimes": ("from lifetimes import ParetoNBDFitter",
                      "m = ParetoNBDFitter().fit(x, t_x, T); extra = {'params': m.params_.to_dict()}"),
    },
    "Gamma-Gamma": {
        "xrm": ("from xrm.differentiate import GammaGamma",
                "m = GammaGamma().fit(xrm_rep); extra = {'params': m.params_}"),
        "lifetimes": ("from lifetimes import GammaGammaFitter",
                      "m = GammaGammaFitter().fit(rep['x'], rep['zbar']); "
                      "extra = {'params': {('gamma' if k == 'v' else k): v for k, v in m.params_.items()}}"),
    },
}


def _cdnow_summary() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the CDNOW files ship in the `lifetimes` wheel: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / (
        "cdnow_customers_summary_with_transactions.csv"
    )


def _log_likelihood(model: str, params: dict[str, float], path: Path) -> float:
    """The total log-likelihood at ``params``, by xrm's formulas (the same for both libraries)."""
    import pandas as pd

    from xrm.differentiate import BetaGeoNBD, ParetoNBD

    d = pd.read_csv(path)
    data = pd.DataFrame({"frequency": d["x"], "recency": np.minimum(d["t_x"], d["T"]), "T": d["T"]})
    if model == "Gamma-Gamma":
        rep = d[d["x"] > 0]
        x, m = rep["x"].to_numpy(float), rep["zbar"].to_numpy(float)
        p, q, g = params["p"], params["q"], params["gamma"]
        from scipy.special import gammaln

        # The likelihood GammaGamma.fit maximises (Fader & Hardie 2013, §3).
        px = p * x
        ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g) + (px - 1) * np.log(m)
              + px * np.log(x) - (px + q) * np.log(g + x * m))
        return float(ll.sum())
    cls = BetaGeoNBD if model == "BG/NBD" else ParetoNBD
    return float(cls().set_params(**params).log_likelihood(data).sum())


def cdnow_fits(runs: int) -> list[dict[str, Any]]:
    """Each model fitted by each library in ``runs`` fresh processes: times, parameters, agreement."""
    path = _cdnow_summary()
    rows = []
    for model, libs in _FITS.items():
        got: dict[str, Measurement] = {}
        for lib, (imports, code) in libs.items():
            setup = _DATA.format(path=str(path), imports=imports)
            got[lib] = measure_python(f"{model} {lib}", code, setup=setup, runs=runs)
        ours, peer = got["xrm"].extra["params"], got["lifetimes"].extra["params"]
        rel = max(abs(ours[k] - peer[k]) / abs(peer[k]) for k in ours)
        rows.append({
            "model": model,
            "xrm_s": got["xrm"].median_s, "xrm_spread": got["xrm"].spread(),
            "lifetimes_s": got["lifetimes"].median_s, "lifetimes_spread": got["lifetimes"].spread(),
            "xrm_params": ours, "lifetimes_params": peer, "max_rel_diff": rel,
            "xrm_ll": _log_likelihood(model, ours, path), "lifetimes_ll": _log_likelihood(model, peer, path),
        })
    return rows


# -- the whole process, side by side ---------------------------------------------------------

# The population the simulation draws from: the published CDNOW fits (FHL 2005; Fader & Hardie 2013).
POPULATION = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}
WEEKS_PER_MONTH = 4.345  # what `lifetimes` and PyMC-Marketing use for a month of weekly data
PEER_LIMIT_S = 1200  # a library that needs longer than 20 minutes for one run is reported as such
_SAMPLE = 2_000  # customers whose scores are compared across libraries (evenly spaced)


def simulate_population(n: int, seed: int = 0) -> Any:
    """``n`` customers drawn from the BG/NBD + Gamma-Gamma generative process, summarised as
    (frequency, recency, T, monetary_value) in weeks, with days as the resolution.

    Each customer's first purchase lies 26-52 weeks (a whole number of days) before the end.
    While alive they buy at rate λ ~ Gamma(r, α); after each repeat purchase they drop out with
    probability p ~ Beta(a, b), so at most K ~ Geometric(p) repeat purchases.  Of the N ~ Poisson(λT)
    purchases in (0, T], x = min(N, K) happen; the x-th of N uniform arrival times is T·Beta(x, N-x+1)
    (rounded up to a day, as a daily summary would).  Spend per purchase is Gamma(p, ν),
    ν ~ Gamma(q, γ): the mean of x purchases is Gamma(px, xν), rounded to cents.
    """
    import pandas as pd

    g = POPULATION
    rng = np.random.default_rng(seed)
    t_days = rng.integers(26 * 7, 52 * 7 + 1, n)
    T = t_days / 7.0
    lam = rng.gamma(g["r"], 1.0 / g["alpha"], n)
    k = rng.geometric(rng.beta(g["a"], g["b"], n))
    arrivals = rng.poisson(lam * T)
    x = np.minimum(arrivals, k)
    x1 = np.maximum(x, 1)
    last = rng.beta(x1, np.maximum(arrivals - x + 1, 1))
    tx_days = np.where(x > 0, np.clip(np.ceil(last * t_days), 1, t_days), 0)
    nu = rng.gamma(g["q"], 1.0 / g["gamma"], n)
    spend = np.where(x > 0, np.round(rng.gamma(g["p"] * x1, 1.0 / (nu * x1)), 2), 0.0)
    spend = np.where((x > 0) & (spend <= 0), 0.01, spend)  # a cent at least, as a real order
    return pd.DataFrame({
        "customer_id": np.arange(n), "frequency": x.astype(np.float64), "recency": tx_days / 7.0,
        "T": T, "monetary_value": spend,
    })


def _cdnow_frame() -> Any:
    import pandas as pd

    d = pd.read_csv(_cdnow_summary())
    return pd.DataFrame({
        "customer_id": np.arange(len(d)), "frequency": d["x"].astype(np.float64),
        "recency": np.minimum(d["t_x"], d["T"]), "T": d["T"], "monetary_value": d["zbar"],
    })


_CLV_SETUP = """
import warnings
import numpy as np
import pandas as pd
warnings.simplefilter("ignore")
d = pd.read_parquet({path!r})
rep = d[d["frequency"] > 0]
sample = np.linspace(0, len(d) - 1, {sample}).astype(int)
{imports}
import scipy.optimize  # xrm imports it at its first fit; the peers at import: untimed for all
"""

# Every library: fit both models, then E[Y(52 weeks)], P(alive) and the 12-month value at 1 % a
# month (months of 4.345 weeks, the peers' convention) for every customer.
_CLV_TAIL = """
scores = {"e52": e52, "p_alive": alive, "clv": clv}
scores = {k: np.asarray(v, dtype=float).ravel() for k, v in scores.items()}
extra = {"params": params, "nonfinite": int(sum((~np.isfinite(v)).sum() for v in scores.values())),
         "scores": {k: v[sample].tolist() for k, v in scores.items()}}
"""

_CLV: dict[str, tuple[str, str]] = {
    "xrm": ("from xrm.differentiate import BetaGeoNBD, GammaGamma, discounted_clv", f"""
bg = BetaGeoNBD().fit(d)
gg = GammaGamma().fit(d)
e52 = bg.expected_purchases(d, 52.0)
alive = bg.p_alive(d)
clv = discounted_clv(bg, gg, d, horizon=12, discount_rate=0.01, period={WEEKS_PER_MONTH})
params = {{**bg.params_, **gg.params_}}
"""),
    "lifetimes": ("from lifetimes import BetaGeoFitter, GammaGammaFitter", """
bg = BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"])
gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
e52 = bg.conditional_expected_number_of_purchases_up_to_time(52.0, d["frequency"], d["recency"], d["T"])
alive = bg.conditional_probability_alive(d["frequency"], d["recency"], d["T"])
clv = gg.customer_lifetime_value(bg, d["frequency"], d["recency"], d["T"], d["monetary_value"],
                                 time=12, discount_rate=0.01, freq="W")
params = {**bg.params_.to_dict(), **{("gamma" if k == "v" else k): v for k, v in gg.params_.items()}}
"""),
    # Flat (HalfFlat) priors on every parameter and find_MAP without the Jacobian of the log
    # transform: the MAP is the maximum-likelihood estimate.  find_MAP passes `options` to scipy's
    # L-BFGS-B: xrm's stopping rule (ftol 1e-12, gtol 1e-8); with scipy's defaults it stops about
    # 1e-4 (relative) short of the optimum on CDNOW.
    "PyMC-Marketing": (
        "from pymc_extras.prior import Prior\nfrom pymc_marketing.clv import BetaGeoModel, GammaGammaModel",
        """
TOL = {"ftol": 1e-12, "gtol": 1e-8, "maxiter": 1000}
bg = BetaGeoModel(model_config={k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")})
bg.fit(d[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False, options=TOL)
gg = GammaGammaModel(model_config={k: Prior("HalfFlat") for k in ("p", "q", "v")})
gg.fit(rep[["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False, options=TOL)
e52 = bg.expected_purchases(d, future_t=52.0)
alive = bg.expected_probability_alive(d)
clv = gg.expected_customer_lifetime_value(bg, d.copy(), future_t=12, discount_rate=0.01, time_unit="W")
post = {**bg.idata.posterior, **gg.idata.posterior}
params = {("gamma" if k == "v" else k): float(post[k].values.ravel()[0])
          for k in ("r", "alpha", "a", "b", "p", "q", "v")}
"""),
}

PYMC_MISSING = "PyMC-Marketing not installed: pip install -e '.[bench]'"


def _installed(lib: str) -> bool:
    module = {"xrm": "xrm", "lifetimes": "lifetimes", "PyMC-Marketing": "pymc_marketing"}[lib]
    return importlib.util.find_spec(module) is not None


def _rel(ours: dict[str, float], peer: dict[str, float]) -> float:
    return max(abs(peer[k] - ours[k]) / abs(ours[k]) for k in ours)


def _score_rel(ours: dict[str, list[float]], peer: dict[str, list[float]]) -> float:
    """The largest relative difference of a sampled customer's score (values below 1e-6 count as
    1e-6, so that near-zero values do not blow up the ratio)."""
    worst = 0.0
    for k, mine in ours.items():
        a, b = np.asarray(mine), np.asarray(peer[k])
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-6), initial=0.0)))
    return worst


def clv_side_by_side(frame: Any, label: str, runs: int, *, limit_s: float = PEER_LIMIT_S) -> dict[str, Any]:
    """Fit + score with every installed library in ``runs`` fresh processes each; import timed apart."""
    out: dict[str, Any] = {"label": label, "customers": len(frame), "libs": {}}
    with tempfile.TemporaryDirectory(prefix="xrm-bench-clv-") as tmp:
        path = Path(tmp) / "summary.parquet"
        frame.to_parquet(path)
        for lib, (imports, code) in _CLV.items():
            row: dict[str, Any] = {}
            out["libs"][lib] = row
            if not _installed(lib):
                row["error"] = PYMC_MISSING if lib == "PyMC-Marketing" else f"{lib} not installed"
                continue
            row["import"] = measure_python(f"import {lib}", "\n" + imports, runs=runs, timeout=limit_s)
            setup = _CLV_SETUP.format(path=str(path), sample=min(_SAMPLE, len(frame)), imports=imports)
            try:
                row["run"] = measure_python(f"{label} {lib}", code + _CLV_TAIL, setup=setup, runs=runs,
                                            timeout=limit_s)
            except subprocess.TimeoutExpired:
                row["error"] = f"more than {limit_s / 60:.0f} min for one run (stopped)"
            except RuntimeError as exc:
                row["error"] = "failed: " + str(exc).strip().splitlines()[-1][:200]
    ours = out["libs"]["xrm"].get("run")
    for lib, row in out["libs"].items():
        if lib != "xrm" and ours is not None and "run" in row:
            row["param_rel"] = _rel(ours.extra["params"], row["run"].extra["params"])
            row["score_rel"] = _score_rel(ours.extra["scores"], row["run"].extra["scores"])
    return out


def _clv_lines(result: dict[str, Any]) -> list[str]:
    libs = result["libs"]
    lines = [
        f"#### {result['label']}: {result['customers']:,} customers",
        "",
        "| library | fit + score (s) | peak memory (MiB) | import (s) | max relative parameter "
        "difference to xrm | max relative score difference to xrm | non-finite scores |",
        "|---|---|---|---|---|---|---|",
    ]
    for lib, row in libs.items():
        imp = row.get("import")
        imp_s = f"{imp.median_s:.2f}" if imp is not None else "–"
        if "run" not in row:
            lines.append(f"| {lib} | {row['error']} | – | {imp_s} | – | – | – |")
            continue
        m = row["run"]
        rel = "–" if lib == "xrm" else f"{row['param_rel']:.1e}"
        srel = "–" if lib == "xrm" else f"{row['score_rel']:.1e}"
        lines.append(
            f"| {lib} | {m.median_s:.2f} ({m.spread()}) | {m.median_peak_mb:,.0f} | {imp_s} | {rel} "
            f"| {srel} | {m.extra['nonfinite']} |"
        )
    ours = libs["xrm"].get("run")
    peers = {lib: row["run"].median_s for lib, row in libs.items() if lib != "xrm" and "run" in row}
    lines.append("")
    if ours is not None and peers:
        fastest = min(peers, key=lambda k: peers[k])
        result["speedup"] = peers[fastest] / ours.median_s
        result["fastest_peer"] = fastest
        result["max_param_rel"] = max(libs[k]["param_rel"] for k in peers)
        lines.append(
            f"xrm is **{result['speedup']:.1f}×** as fast as the faster peer ({fastest}: "
            f"{peers[fastest]:.2f} s against {ours.median_s:.2f} s)."
        )
    missing = [f"{lib}: {row['error']}" for lib, row in libs.items() if "run" not in row]
    if missing:
        lines.append("Not measured: " + "; ".join(missing) + ".")
    return lines


def write_orders(path: Path, n_tx: int, *, seed: int = 0, chunk: int = 10_000_000) -> int:
    """A synthetic `Order Completed` Parquet file: ``n_tx`` orders by ``n_tx // 10`` customers over
    two years (2024-2025), written in chunks so that 100M rows need little memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_customers = max(n_tx // 10, 1)
    start = np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64)
    span = 2 * 365 * 86400
    schema = pa.schema([("type", pa.string()), ("event", pa.string()), ("user_id", pa.string()),
                        ("ts", pa.timestamp("us")), ("revenue", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        done = 0
        while done < n_tx:
            n = min(chunk, n_tx - done)
            ids = pa.array(rng.integers(0, n_customers, n)).cast(pa.string())
            ts = (start + rng.integers(0, span, n)) * 1_000_000
            table = pa.table({
                "type": pa.array(["track"] * 1).take(np.zeros(n, dtype=np.int64)),
                "event": pa.array(["Order Completed"]).take(np.zeros(n, dtype=np.int64)),
                "user_id": ids,
                "ts": pa.array(ts, pa.timestamp("us")),
                "revenue": np.round(rng.gamma(2.0, 20.0, n), 2),
            }, schema=schema)
            writer.write_table(table)
            done += n
    return n_customers


_SUMMARY = """
from pathlib import Path
from xrm.config import Settings
from xrm.differentiate import order_events, purchase_summary
from xrm.store import Store
folder = Path({folder!r})
store = Store.open(Settings(store_path=folder / "bench.duckdb", memory_limit={memory!r}))
"""

_SUMMARY_RUN = """
orders = store.ibis.read_parquet({path!r})
expr = purchase_summary(order_events(orders), observation_end="2025-12-31", calibration_end="2025-06-30")
expr.to_parquet(folder / "summary.parquet")
import pyarrow.parquet as pq
extra = {{"customers": pq.ParquetFile(folder / "summary.parquet").metadata.num_rows}}
"""


def summary_scale(n_tx: int, runs: int = 1, *, memory_limit: str = "20GB") -> Measurement:
    """Time and peak memory of the purchase summary of ``n_tx`` synthetic orders (fresh processes)."""
    with tempfile.TemporaryDirectory(prefix="xrm-bench-value-") as tmp:
        folder = Path(tmp)
        path = folder / "orders.parquet"
        write_orders(path, n_tx)
        return measure_python(
            f"summary {n_tx:,}",
            _SUMMARY_RUN.format(path=str(path)),
            setup=_SUMMARY.format(folder=str(folder), memory=memory_limit),
            runs=runs,
        )


def _params(p: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in p.items())


def dropout_auc(customers: int, seed: int = 42) -> dict[str, Any]:
    """P(alive) vs recency at finding the sample business's known drop-outs (one run; no timing)."""
    from xrm.differentiate import build_purchase_summaries, build_value, dropout_ranking
    from xrm.ingest import load_file
    from xrm.sample import generate_sample
    from xrm.store import Store

    with tempfile.TemporaryDirectory(prefix="xrm-bench-dropouts-") as tmp:
        out = Path(tmp)
        generate_sample(out / "data", customers=customers, seed=seed, show_progress=False)
        with Store.open(out / "x.duckdb") as store:
            load_file(store, out / "data" / "events" / "orders.parquet", show_progress=False)
            build_purchase_summaries(store)
            build_value(store)
            return dropout_ranking(store, out / "data" / "truth")


def _clv_section(results: list[dict[str, Any]], quick: bool) -> list[str]:
    lines = [
        "### The whole process: xrm, `lifetimes` and PyMC-Marketing side by side",
        "",
        "Each library fits BG/NBD and Gamma-Gamma by maximum likelihood (PyMC-Marketing: "
        '`fit(method="map")` with `HalfFlat` priors on every parameter, so that the MAP is the '
        "maximum-likelihood estimate) and scores every customer: expected purchases in 52 weeks, "
        "P(alive), and the 12-month value at 1 % a month (months of 4.345 weeks, the peers' "
        "convention; xrm's `discounted_clv` with `period=4.345`). Time: fit + score in a fresh "
        "process, the summary already loaded (a Parquet file); `import` is timed apart in its own "
        "fresh processes. Peak memory: the whole process (VmHWM). Score differences: 2,000 evenly "
        "spaced customers. xrm's fit includes standard errors (a Hessian), the peers' do not. "
        "PyMC-Marketing compiles its model (PyTensor, C) on first use and caches it on disk; "
        "runs after the first reuse that cache.",
        "",
        "The simulated population is drawn with numpy from the BG/NBD + Gamma-Gamma process at the "
        "published CDNOW parameters (`simulate_population`: first purchase 26-52 weeks before the "
        "end, recency and T in whole days, spend in cents). Identical (frequency, recency, T) rows "
        "are common in day-resolution data; xrm fits each distinct row once with its count.",
        "",
    ]
    for result in results:
        lines += [*_clv_lines(result), ""]
    big = results[-1]
    if "speedup" not in big:
        lines.append("Target (issue 4): not measurable in this run (no peer finished).")
        return lines
    fast = big["speedup"] >= 10
    close = big["max_param_rel"] < 1e-4
    verdict = "met" if fast and close else "NOT met"
    gap = []
    if not fast:
        gap.append(f"{big['speedup']:.1f}× instead of 10× ({10 / big['speedup']:.1f}× short)")
    if not close:
        gap.append(f"parameters differ by up to {big['max_param_rel']:.1e} (limit 1e-4)")
    where = f"{big['customers']:,} simulated customers"
    lines.append(
        f"Target (issue 4): xrm at least 10× as fast as the faster peer at 1,000,000 customers, "
        f"parameters within 1e-4 relative: **{verdict}** at {where}"
        + (f" ({'; '.join(gap)})" if gap else f" ({big['speedup']:.1f}×, parameters within "
           f"{big['max_param_rel']:.1e})")
        + (". This was a quick run: the target is stated for 1,000,000 customers (`python -m bench "
           "--only value`)." if quick else ".")
    )
    imports = big["libs"]["xrm"].get("import")
    if imports is not None:
        lines.append(
            "Import (issue 4: under one second): `from xrm.differentiate import BetaGeoNBD, GammaGamma, "
            f"discounted_clv` took {imports.median_s:.2f} s: "
            f"{'met' if imports.median_s < 1 else 'NOT met'}. Nearly all of it is numpy and "
            "scipy.special, which xrm needs; scipy.optimize (about 0.3 s more) is imported at the "
            "first fit, so scoring with saved parameters never pays it; `import xrm` alone loads "
            "neither. The fit + score column starts with scipy.optimize imported for every library."
        )
    return lines


def run(quick: bool) -> Section:
    runs = 1 if quick else 3
    fits = cdnow_fits(runs)
    n_people = 2_000 if quick else 20_000
    drop = dropout_auc(n_people)
    n_tx = 1_000_000 if quick else 10_000_000
    scale = summary_scale(n_tx, runs)
    n_sim = 100_000 if quick else 1_000_000
    clv = [
        clv_side_by_side(_cdnow_frame(), "CDNOW", runs),
        clv_side_by_side(simulate_population(n_sim), "Simulated BG/NBD + Gamma-Gamma population", runs),
    ]
    lines = [
        f"Machine: {machine_line()}. Runs per figure: {runs}, each in a fresh process "
        f"(imports and data loading untimed).",
        "",
        "### Fitting on CDNOW (2,357 customers), xrm vs `lifetimes` 0.11.3",
        "",
        "| model | xrm (s) | lifetimes (s) | max relative parameter difference | LL xrm | LL lifetimes |",
        "|---|---|---|---|---|---|",
    ]
    for r in fits:
        lines.append(
            f"| {r['model']} | {r['xrm_s']:.3f} ({r['xrm_spread']}) | {r['lifetimes_s']:.3f} "
            f"({r['lifetimes_spread']}) | {r['max_rel_diff']:.1e} | {r['xrm_ll']:.6f} "
            f"| {r['lifetimes_ll']:.6f} |"
        )
    lines += ["", "Parameters:", ""]
    for r in fits:
        lines.append(
            f"- {r['model']}: xrm {_params(r['xrm_params'])}; lifetimes {_params(r['lifetimes_params'])}"
        )
    lines += [
        "",
        "xrm's times include the standard errors (a numerical Hessian), which `lifetimes` does not "
        "compute. Where the parameters differ by more than about 1e-5, the log-likelihood columns "
        "(both evaluated with xrm's formulas) show which optimum is higher.",
        "",
        *_clv_section(clv, quick),
        "",
        "### Purchase summary in DuckDB (synthetic orders Parquet)",
        "",
        "| transactions | customers | time (s) | peak memory of the process (MiB) |",
        "|---|---|---|---|",
        f"| {n_tx:,} | {scale.extra.get('customers', 0):,} | {scale.median_s:.1f} ({scale.spread()}) "
        f"| {scale.median_peak_mb:,.0f} |",
        "",
        "The summary is `purchase_summary(order_events(...))` over `read_parquet`, written to Parquet, "
        "with DuckDB's memory_limit at 20GB. Nothing per order reaches Python. The first aggregate "
        "is per customer-day. With 10 orders per customer over two years, that is almost one row per "
        "order, so the working set follows customer-days. Past memory_limit, DuckDB spills it to "
        "disk.",
        "",
        "### Drop-outs of the sample business: P(alive) against recency alone",
        "",
        f"Sample business of {n_people:,} people (seed 42), its orders keyed by user id, BG/NBD "
        "scored at the end of the history. A customer has dropped out when the sample's truth "
        "(`truth/persons.parquet`, `dropout_at`) says so by then. ROC AUC of each ranking at telling "
        "the dropped-out customers from the living (0.5 = guessing):",
        "",
        "| customers | dropped out | AUC by 1 − P(alive) | AUC by days since last purchase |",
        "|---:|---:|---:|---:|",
        f"| {drop['customers']:,} | {drop['dropped']:,} | {drop['auc_p_alive']:.3f} "
        f"| {drop['auc_recency']:.3f} |",
        "",
        "Target (issue 4): P(alive) ranks the drop-outs better than recency alone: "
        f"{'met' if drop['auc_p_alive'] > drop['auc_recency'] else 'NOT met'}.",
    ]
    return Section("value", "\n".join(lines))
