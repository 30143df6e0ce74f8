"""Value charts as image files: the lifetime-value distribution, the calibration/holdout tracking
plot, and the tier pyramid.

    >>> value_charts(store, "charts/")  # doctest: +SKIP
    {'files': ['charts/clv_distribution.svg', 'charts/clv_distribution.png', ...], ...}

Each chart is a Vega-Lite spec (the console's format), rendered offline by ``vl-convert``, which
carries its own JavaScript engine and fonts: nothing is fetched.  The tracking plot is the one of
Fader, Hardie & Lee (2005, Figure 2): cumulative repeat purchases week by week, actual against
the model's expectation Σ_i E[X(t - t_i)] over the customers' first-purchase times t_i, across
the calibration and holdout periods.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xrm.differentiate._summary import order_events
from xrm.exceptions import InputError, ModelError
from xrm.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "clv_histogram_spec", "pyramid_spec", "tracking_data", "tracking_spec", "value_charts"]

FORMATS = ("svg", "png")
_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier only: nothing is fetched
_COLOURS = ["#1f5f8b", "#3b8ea5", "#6fb1a0", "#f2a541", "#c94c4c"]
_TIERS = ["MVC", "MGC", "normal", "BZ"]
_EPOCH = dt.date(1970, 1, 1)
_BINS = 30


def _base(title: str, values: list[dict[str, Any]], width: int = 640, height: int = 320) -> dict[str, Any]:
    return {"$schema": _SCHEMA, "title": title, "data": {"values": values}, "width": width,
            "height": height, "background": "white",
            "config": {"view": {"stroke": None}, "font": "sans-serif"}}


# -- the data ----------------------------------------------------------------------------------


def tracking_data(
    store: Store, *, customer_key: str = "user_id", events_table: str = "events"
) -> pd.DataFrame:
    """Week by week from the first customer's first purchase: cumulative repeat purchases (purchase
    days after each customer's first, as in the summary), actual and expected by the latest fit.

    Columns: week, last_day (the date the week's count runs to: the week's last day, the
    observation end for the last week), actual, expected, period (calibration | holdout).  The
    customers are those of ``purchase_summaries``; the model is the latest saved fit.
    """
    import pandas as pd

    from xrm.differentiate._score import load_value_models

    meta = store.sql(
        "SELECT min(calibration_end), min(observation_end), min(time_unit_days), count(*) "
        "FROM purchase_summaries"
    ).fetchone()
    if meta is None or not meta[3]:
        raise ModelError("no purchase summaries yet; build them first: xrm value fit (or xrm pipeline)")
    cal_end, obs_end, unit = meta[0], meta[1], float(meta[2])
    purchases, _, _ = load_value_models(store)
    cal_day, obs_day = (cal_end - _EPOCH).days, (obs_end - _EPOCH).days

    # Repeat purchase days per day, aggregated in the engine (one row per day reaches Python).
    o = order_events(store.table(events_table))
    if customer_key not in o.columns:
        raise InputError(f"customer_key {customer_key!r} is not a column of {events_table}")
    days = o.select(customer_id=o[customer_key].cast("string"),
                    day=(o.ts.epoch_seconds() // 86400).cast("int64"))
    days = days.filter(days.customer_id.notnull() & (days.day <= obs_day)).distinct()
    s = store.table("purchase_summaries")
    firsts = s.select(customer_id=s.customer_id,
                      first_day=(s.first_purchase.epoch_seconds() // 86400).cast("int64"))
    j = days.join(firsts, "customer_id")
    rep = j.filter(j.day > j.first_day)
    repeats = rep.group_by("day").aggregate(n=rep.count()).to_pyarrow().to_pandas()
    entries = firsts.group_by("first_day").aggregate(n=firsts.count()).to_pyarrow().to_pandas()

    start = int(entries["first_day"].min())
    weeks = (obs_day - start) // 7 + 1
    last_day = np.minimum(start + 7 * np.arange(1, weeks + 1) - 1, obs_day)
    if last_day[-1] < obs_day:  # a last, partial week up to the observation end
        last_day = np.append(last_day, obs_day)
    per_day = repeats.set_index("day")["n"].astype("int64")
    cum = per_day.sort_index().cumsum()
    actual = np.array([int(cum[cum.index <= d].iloc[-1]) if (cum.index <= d).any() else 0 for d in last_day])
    first = entries["first_day"].to_numpy(dtype=np.int64)
    count = entries["n"].to_numpy(dtype=np.float64)
    expected = []
    for d in last_day:
        t = (d - first[first <= d]) / unit
        expected.append(float(count[first <= d] @ purchases.expected_purchases_new(t)) if len(t) else 0.0)
    return pd.DataFrame({
        "week": np.arange(1, len(last_day) + 1),
        "last_day": [(_EPOCH + dt.timedelta(days=int(d))).isoformat() for d in last_day],
        "actual": actual,
        "expected": expected,
        "period": np.where(last_day <= cal_day, "calibration", "holdout"),
    })


def _clv_bins(store: Store) -> tuple[list[dict[str, Any]], float, int]:
    clv = np.array([r[0] for r in store.sql("SELECT greatest(clv, 0) FROM customer_value").fetchall()],
                   dtype=np.float64)
    if not len(clv):
        raise ModelError("no customer value yet; score the customers first: xrm value score")
    cap = float(np.quantile(clv, 0.99)) or float(clv.max()) or 1.0
    edges = np.linspace(0.0, cap, _BINS + 1)
    counts, _ = np.histogram(np.minimum(clv, cap), bins=edges)
    rows = [{"bin_start": float(a), "bin_end": float(b), "n": int(n)}
            for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)]
    return rows, cap, int((clv > cap).sum())


# -- the specs ---------------------------------------------------------------------------------


def clv_histogram_spec(bins: list[dict[str, Any]], *, cap: float, above: int) -> dict[str, Any]:
    """Customers per CLV bin; the last bin also holds the top 1 % (beyond ``cap``)."""
    title = {"text": "Customer lifetime value",
             "subtitle": f"{above:,} customers above {cap:,.0f} counted in the last bin"}
    return {**_base("", bins), "title": title,
            "mark": {"type": "bar", "color": _COLOURS[1], "tooltip": True},
            "encoding": {"x": {"field": "bin_start", "bin": {"binned": True}, "type": "quantitative",
                               "title": "CLV"},
                         "x2": {"field": "bin_end"},
                         "y": {"field": "n", "type": "quantitative", "title": "customers"}}}


def tracking_spec(rows: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    """Cumulative repeat purchases by week, actual (solid) and the model (dashed), with a rule at
    the end of the calibration period."""
    long = [{"week": r["week"], "series": "actual", "purchases": r["actual"]} for r in rows]
    long += [{"week": r["week"], "series": f"{model} expected", "purchases": r["expected"]} for r in rows]
    cal = [r["week"] for r in rows if r["period"] == "calibration"]
    layers: list[dict[str, Any]] = [{
        "mark": {"type": "line", "tooltip": True},
        "encoding": {
            "x": {"field": "week", "type": "quantitative", "title": "week"},
            "y": {"field": "purchases", "type": "quantitative", "title": "cumulative repeat purchases"},
            "color": {"field": "series", "type": "nominal", "scale": {"range": [_COLOURS[0], _COLOURS[4]]},
                      "title": None},
            "strokeDash": {"field": "series", "type": "nominal", "title": None},  # one legend with colour
        },
    }]
    if cal and len(cal) < len(rows):
        layers.append({"data": {"values": [{"week": max(cal), "label": "end of calibration"}]},
                       "mark": {"type": "rule", "color": "#777", "strokeDash": [2, 2]},
                       "encoding": {"x": {"field": "week", "type": "quantitative"}}})
    return {**_base("Tracking cumulative repeat purchases: actual vs model", long), "layer": layers}


def pyramid_spec(tiers: list[dict[str, Any]]) -> dict[str, Any]:
    """The customer pyramid: one centred bar per tier (MVC on top), widths by customers."""
    rows = [{"tier": t["tier"], "n": t["customers"], "half": t["customers"] / 2, "neg": -t["customers"] / 2,
             "clv_share": t.get("clv_share", 0.0),
             "label": f"{t['tier']}: {t['customers']:,} ({t.get('clv_share', 0.0):.0%} of CLV)"}
            for t in sorted(tiers, key=lambda t: _TIERS.index(t["tier"]) if t["tier"] in _TIERS else 9)]
    return {**_base("Value tiers", rows, height=220), "padding": {"right": 160},
            "layer": [
                {"mark": {"type": "bar", "tooltip": True},
                 "encoding": {
                     "y": {"field": "tier", "type": "nominal", "sort": _TIERS, "title": None},
                     "x": {"field": "neg", "type": "quantitative", "axis": None},
                     "x2": {"field": "half"},
                     "color": {"field": "tier", "type": "nominal", "sort": _TIERS,
                               "scale": {"domain": _TIERS, "range": _COLOURS[:4]}, "legend": None}}},
                {"mark": {"type": "text", "color": "black", "align": "left", "dx": 6},
                 "encoding": {"y": {"field": "tier", "type": "nominal", "sort": _TIERS},
                              "x": {"field": "half", "type": "quantitative"},
                              "text": {"field": "label"}}},
            ]}


# -- rendering ---------------------------------------------------------------------------------


def render(spec: dict[str, Any], path: Path) -> Path:
    """Write ``spec`` as ``path`` (its suffix: .svg, .png, or .json for the spec itself)."""
    import json

    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        return path
    import vl_convert as vlc

    if suffix == ".svg":
        path.write_text(vlc.vegalite_to_svg(spec), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(vlc.vegalite_to_png(spec, scale=2))
    else:
        raise InputError(f"chart format {suffix!r} is not known; use one of svg, png, json")
    return path


def value_charts(
    store: Store, out_dir: str | Path, *, formats: tuple[str, ...] = FORMATS, customer_key: str = "user_id",
) -> dict[str, Any]:
    """Write the three value charts into ``out_dir`` in each of ``formats`` (svg, png, json: the
    Vega-Lite spec, for the console).  Needs a fit and a scoring run (``xrm value score``)."""
    unknown = [f for f in formats if f not in (*FORMATS, "json")]
    if unknown or not formats:
        raise InputError(f"chart formats {unknown or formats} are not known; use svg, png and/or json")
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = store.sql("SELECT summary FROM value_runs ORDER BY scored_at DESC, run_id DESC LIMIT 1").fetchall()
    if not runs:
        raise ModelError("no value scoring run yet; run `xrm value score` (or `xrm pipeline`) first")
    summary = json.loads(runs[0][0])
    bins, cap, above = _clv_bins(store)
    track = tracking_data(store, customer_key=customer_key)
    specs = {
        "clv_distribution": clv_histogram_spec(bins, cap=cap, above=above),
        "tracking": tracking_spec([{str(k): v for k, v in r.items()} for r in track.to_dict("records")],
                                  model=str(summary.get("model", "model"))),
        "tier_pyramid": pyramid_spec(summary["tiers"]),
    }
    files = [str(render(spec, out / f"{name}.{fmt}")) for name, spec in specs.items() for fmt in formats]
    last = track.iloc[-1]
    return {"files": files, "tracking": {"weeks": len(track), "actual": int(last["actual"]),
                                         "expected": float(last["expected"])}}
