"""Value traits in the store: fit the lifetime-value models on ``purchase_summaries``, save them in
``value_models``, and write each customer's value, wallet and tier to ``customer_value``.

    >>> score_value(store, horizon_weeks=52, discount_rate=0.01, model="bgnbd")  # doctest: +SKIP
    {'run_id': 'run-...', 'customers': 2357, 'tiers': [...], ...}

The purchase model (BG/NBD or Pareto/NBD) is fitted on every customer, Gamma-Gamma on the repeat
customers with positive average spend (returns and free orders would break it; their count is in
the summary, and they are scored as if their own average were 0, shrunk to the population mean).
CLV is the discounted margin over the horizon (``discounted_purchases`` × expected spend); the
``net_value`` subtracts the discounted cost to serve.  Nothing written is NULL or NaN.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import numpy as np
import numpy.typing as npt

from xrm.differentiate._bgnbd import BetaGeoNBD
from xrm.differentiate._clv import MONTH_IN_WEEKS, discounted_purchases
from xrm.differentiate._gammagamma import GammaGamma
from xrm.differentiate._model import FORMAT_VERSION, ValueModel
from xrm.differentiate._paretonbd import ParetoNBD
from xrm.differentiate._policy import PURCHASE_MODELS, ValuePolicy
from xrm.differentiate._tiers import assign_tiers, tier_table
from xrm.differentiate._wallet import estimate_wallet
from xrm.exceptions import ConfigError, InputError, ModelError
from xrm.store import Store

__all__ = ["KEEP_RUNS", "NO_PURCHASES", "fit_value_models", "load_value_models", "score_value"]

Array = npt.NDArray[np.float64]
Purchases = BetaGeoNBD | ParetoNBD
KEEP_RUNS = 12  # tier history kept for migration reports; older runs are pruned
NO_PURCHASES = (
    "no purchase summaries in the store: load `Order Completed` events (xrm load) and build the "
    "summaries (xrm pipeline, step 'purchase summaries') before scoring value"
)
_MODELS: dict[str, type[ValueModel]] = {
    "bg/nbd": BetaGeoNBD, "pareto/nbd": ParetoNBD, "gamma-gamma": GammaGamma,
}
_WALLET_NOTE = (
    "no wallet survey data: each wallet is the {q:.0%} quantile of {w:g}-week spend among look-alike "
    "customers (same needs segment), after Perlich et al. (2007); it compares a customer with our "
    "best comparable customers, not with the whole market. Pass category_wallet to use known figures."
)


def _now() -> dt.datetime:
    # Microseconds kept: "the latest fit/run" is ordered by this time, and runs can be a second apart.
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _new_id(prefix: str, at: dt.datetime) -> str:
    return f"{prefix}-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _key(customer_key: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", customer_key):
        raise InputError(f"customer_key = {customer_key!r} is not a column name of the events table")
    return customer_key


def _summaries(store: Store) -> dict[str, Any]:
    return store.sql(
        'SELECT customer_id, frequency, recency, "T", monetary_value, total_spend, spend_holdout, '
        "time_unit_days, observation_end FROM purchase_summaries ORDER BY customer_id"
    ).fetchnumpy()


def _purchase_model(name: str) -> Purchases:
    if name not in PURCHASE_MODELS:
        raise ModelError(f"model = {name!r} is not a purchase model; use one of {', '.join(PURCHASE_MODELS)}")
    return BetaGeoNBD() if name == "bgnbd" else ParetoNBD()


def fit_value_models(
    store: Store, *, model: str = "bgnbd", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Fit the purchase model and Gamma-Gamma on ``purchase_summaries``; save both in ``value_models``.

        >>> fit_value_models(store, model="paretonbd")["purchases"]["params"]  # doctest: +SKIP
    """
    data = _summaries(store) if data is None else data
    n = len(data["customer_id"])
    if not n:
        raise ModelError(NO_PURCHASES)
    purchases = _purchase_model(model).fit(data)
    x, m = data["frequency"], data["monetary_value"]
    repeat = x > 0
    usable = repeat & (m > 0)
    excluded = int((repeat & ~usable).sum())
    spend = GammaGamma().fit({"frequency": x[usable], "monetary_value": m[usable]})
    fitted_at = _now()
    fit_id = _new_id("fit", fitted_at)
    rows = []
    for role, fitted in (("purchases", purchases), ("spend", spend)):
        s = fitted.summary()
        rows.append((
            fit_id, role, fitted.kind, FORMAT_VERSION, fitted_at, int(s["n"]), float(s["log_likelihood"]),
            json.dumps(s["params"]), json.dumps(s["se"]), json.dumps(fitted.to_dict()),
        ))
    with store.transaction() as tx:
        tx.executemany("INSERT INTO value_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return {
        "fit_id": fit_id,
        "fitted_at": fitted_at.isoformat(),
        "customers": n,
        "purchases": purchases.summary(),
        "spend": spend.summary(),
        "spend_excluded": {
            "customers": excluded,
            "reason": "repeat customers whose average spend is <= 0 (returns, free orders) are left "
            "out of the Gamma-Gamma fit, which needs positive spend",
        },
    }


def load_value_models(store: Store, fit_id: str | None = None) -> tuple[Purchases, GammaGamma, str]:
    """The saved purchase and spend models of ``fit_id`` (default: the latest fit)."""
    if fit_id is None:
        rows = store.sql(
            "SELECT fit_id FROM value_models ORDER BY fitted_at DESC, fit_id DESC LIMIT 1"
        ).fetchall()
        if not rows:
            raise ModelError("no value models are saved yet; fit them: xrm value fit")
        fit_id = str(rows[0][0])
    saved = dict(store.sql("SELECT role, saved FROM value_models WHERE fit_id = ?", [fit_id]).fetchall())
    if set(saved) != {"purchases", "spend"}:
        raise ModelError(f"no saved fit {fit_id!r} (with a purchase and a spend model) in value_models")
    models: dict[str, ValueModel] = {}
    for role, text in saved.items():
        d = json.loads(text)
        cls = _MODELS.get(str(d.get("model")))
        if cls is None:
            raise ModelError(f"value_models {fit_id}/{role}: unknown model kind {d.get('model')!r}; refit")
        models[role] = cls.from_dict(d)
    spend, purchases = models["spend"], models["purchases"]
    if not isinstance(spend, GammaGamma) or not isinstance(purchases, BetaGeoNBD | ParetoNBD):
        raise ModelError(f"value_models {fit_id}: roles hold {spend.kind!r} and {purchases.kind!r}; refit")
    return purchases, spend, fit_id


def _expected_spend(spend: GammaGamma, x: Array, m: Array) -> Array:
    """Gamma-Gamma E(Z | x, m_x) (Fader & Hardie 2013, §4) with an average <= 0 taken as 0."""
    p, q, g = (spend.params_ or {})["p"], (spend.params_ or {})["q"], (spend.params_ or {})["gamma"]
    spend.mean_spend()  # refuses q <= 1 with its reason
    px = p * np.where(x > 0, x, 0.0)
    return np.asarray((p * g + px * np.clip(m, 0.0, None)) / (px + q - 1), dtype=np.float64)


def _check_finite(ids: npt.NDArray[np.object_], **columns: Array) -> None:
    for name, values in columns.items():
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ModelError(
                f"value scoring produced a non-finite {name} for {int(bad.sum())} customer(s) "
                f"(first: {ids[first]!r}); nothing was written. Refit (xrm value fit) or report this"
            )


def _wallet_inputs(
    store: Store, customer_key: str, obs_end: dt.date, window_weeks: float, events_table: str
) -> tuple[Array, npt.NDArray[np.object_]]:
    """Spend in the wallet window and the look-alike group (needs segment) per summarised customer."""
    end = dt.datetime.combine(obs_end + dt.timedelta(days=1), dt.time())
    start = end - dt.timedelta(days=7 * window_weeks)
    got = store.sql(
        f"""
        WITH w AS (
            SELECT CAST({customer_key} AS VARCHAR) AS customer_id, sum(coalesce(revenue, 0)) AS spend
            FROM {_key(events_table)}
            WHERE type = 'track' AND event = 'Order Completed' AND ts >= ? AND ts < ?
            GROUP BY 1
        )
        SELECT coalesce(w.spend, 0.0) AS spend, coalesce(CAST(n.segment_id AS VARCHAR), 'all') AS grp
        FROM purchase_summaries s
        LEFT JOIN w USING (customer_id)
        LEFT JOIN customer_needs n USING (customer_id)
        ORDER BY s.customer_id
        """,
        [start, end],
    ).fetchnumpy()
    return np.asarray(got["spend"], dtype=np.float64), np.asarray(got["grp"], dtype=object)


def score_value(
    store: Store,
    *,
    horizon_weeks: float = 52.0,
    discount_rate: float = 0.01,
    model: str = "bgnbd",
    refit: bool = True,
    customer_key: str = "user_id",
    events_table: str = "events",
    policy: ValuePolicy | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fit (or reuse) the value models and write every customer's value traits and tier.

    ``discount_rate`` is per month.  Further settings (margin, costs, tier shares, wallet) are
    those of :class:`ValuePolicy`, given as keywords or as ``policy``.  A store without purchase
    summaries returns ``{"customers": 0, "skipped": <why>}`` and clears ``customer_value``.
    """
    if policy is not None and settings:
        raise ConfigError(
            f"score_value: pass the settings either in `policy` or as keywords, not both "
            f"(keywords given: {', '.join(sorted(settings))})"
        )
    if policy is None:
        policy = ValuePolicy(
            model=model, horizon_weeks=horizon_weeks, discount_rate=discount_rate, **settings
        )
    policy.check()
    key = _key(customer_key)
    data = _summaries(store)
    ids = np.asarray(data["customer_id"], dtype=object)
    n = len(ids)
    if not n:
        with store.transaction() as tx:
            tx.execute("DELETE FROM customer_value")
        return {"customers": 0, "skipped": NO_PURCHASES}

    fit_info: dict[str, Any] | None = None
    wanted = PURCHASE_MODELS[policy.model]
    latest = store.sql(
        "SELECT fit_id FROM value_models WHERE role = 'purchases' AND model = ? "
        "ORDER BY fitted_at DESC, fit_id DESC LIMIT 1", [wanted]
    ).fetchall()
    if refit or not latest:
        fit_info = fit_value_models(store, model=policy.model, data=data)
        fit_id = fit_info["fit_id"]
    else:
        fit_id = str(latest[0][0])
    purchases, spend, fit_id = load_value_models(store, fit_id)

    # Horizon in model time units, cut into whole periods of about a month; the monthly discount
    # rate is converted to that period so the horizon is exact.
    unit_days = float(data["time_unit_days"][0])
    horizon = policy.horizon_weeks * 7.0 / unit_days
    n_periods = max(1, round(policy.horizon_weeks / MONTH_IN_WEEKS))
    period = horizon / n_periods
    period_months = policy.horizon_weeks / n_periods / MONTH_IN_WEEKS
    rate = (1.0 + policy.discount_rate) ** period_months - 1.0

    x = np.asarray(data["frequency"], dtype=np.float64)
    m = np.asarray(data["monetary_value"], dtype=np.float64)
    p_alive = purchases.p_alive(data)
    expected = purchases.expected_purchases(data, horizon)
    det = discounted_purchases(purchases, data, horizon=n_periods, discount_rate=rate, period=period)
    z = _expected_spend(spend, x, m)
    clv = policy.margin * z * det
    years = policy.horizon_weeks / n_periods / (365.25 / 7)
    annuity = sum(years / (1.0 + rate) ** k for k in range(1, n_periods + 1))
    net = clv - policy.cost_per_order * det - policy.cost_per_year * annuity * p_alive
    historic = np.asarray(data["total_spend"], dtype=np.float64) + np.asarray(data["spend_holdout"])

    obs_end = max(np.asarray(data["observation_end"]).astype("datetime64[D]").tolist())
    spend_w, groups = _wallet_inputs(store, key, obs_end, policy.wallet_window_weeks, events_table)
    wallet, source = estimate_wallet(
        spend_w, groups, quantile=policy.wallet_quantile, configured=policy.category_wallet
    )
    share = np.divide(np.maximum(spend_w, 0.0), wallet, out=np.zeros(n), where=wallet > 0)
    headroom = wallet - np.maximum(spend_w, 0.0)
    _check_finite(ids, p_alive=p_alive, expected_purchases=expected, expected_spend=z, clv=clv,
                  net_value=net, historic_spend=historic, wallet=wallet, share_of_wallet=share)
    tiers = assign_tiers(ids, clv, net, headroom, p_alive, policy)

    scored_at = _now()
    run_id = _new_id("run", scored_at)
    table = tier_table(tiers, clv, historic)
    configured = int((source == "configured").sum())
    summary: dict[str, Any] = {
        "run_id": run_id,
        "fit_id": fit_id,
        "customers": n,
        "model": purchases.kind,
        "params": dict(purchases.params_ or {}),
        "spend_params": dict(spend.params_ or {}),
        "horizon_weeks": policy.horizon_weeks,
        "discount_rate_per_month": policy.discount_rate,
        "total_clv": float(clv.sum()),
        "mean_p_alive": float(p_alive.mean()),
        "tiers": table,
        "wallet": {
            "method": "configured" if configured == n else
            ("lookalike-quantile" if not configured else "mixed"),
            "configured_customers": configured,
            "mean_share_of_wallet": float(share.mean()),
            "note": _WALLET_NOTE.format(q=policy.wallet_quantile, w=policy.wallet_window_weeks)
            if configured < n else "category spend per segment as configured (category_wallet)",
        },
        "spend_excluded": int(((x > 0) & (m <= 0)).sum()),
    }
    if fit_info is not None:
        summary["fit"] = {k: fit_info[k] for k in ("purchases", "spend", "spend_excluded")}
    changes: dict[str, int] = {}

    import pyarrow as pa

    rows = pa.table({
        "customer_id": pa.array(ids.astype(str), pa.string()),
        "run_id": pa.array([run_id] * n, pa.string()),
        "p_alive": p_alive, "expected_purchases": expected, "expected_spend": z, "clv": clv,
        "net_value": net, "historic_spend": historic, "spend_12m": spend_w, "wallet": wallet,
        "share_of_wallet": share, "headroom": headroom,
        "wallet_source": pa.array(source.astype(str), pa.string()),
        "tier": pa.array(tiers.astype(str), pa.string()),
        "scored_at": pa.array([scored_at] * n, pa.timestamp("us")),
    })
    cols = ", ".join(rows.column_names)
    with store.transaction() as tx:
        tx.register("new_customer_value", rows)
        changes = _record_trait_changes(tx, policy.churn_alert_p_alive)
        tx.execute("DELETE FROM customer_value")
        tx.execute(f"INSERT INTO customer_value ({cols}) SELECT {cols} FROM new_customer_value")
        tx.execute(
            "INSERT INTO customer_value_history SELECT run_id, customer_id, clv, tier FROM new_customer_value"
        )
        tx.execute(
            "INSERT INTO value_runs VALUES (?, ?, ?, ?, ?)",
            [run_id, fit_id, scored_at, json.dumps(policy.as_dict()), json.dumps(summary)],
        )
        tx.execute(
            "DELETE FROM customer_value_history WHERE run_id NOT IN "
            "(SELECT run_id FROM value_runs ORDER BY scored_at DESC, run_id DESC LIMIT ?)",
            [KEEP_RUNS],
        )
        tx.unregister("new_customer_value")
    summary["trait_changes"] = changes
    return summary


def _record_trait_changes(tx: Any, threshold: float) -> dict[str, int]:
    """Rows in ``trait_changes`` for customers whose tier moved or whose P(alive) crossed
    ``threshold`` since the last scoring (``customer_value`` still holds it); counts by kind."""
    rank = "CASE {} WHEN 'MVC' THEN 0 WHEN 'MGC' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"
    tx.execute(
        f"""
        INSERT INTO trait_changes
        SELECT n.customer_id, n.run_id, 'tier', o.tier, n.tier,
               CASE WHEN {rank.format('n.tier')} < {rank.format('o.tier')} THEN 'up' ELSE 'down' END,
               n.scored_at
        FROM new_customer_value n JOIN customer_value o USING (customer_id)
        WHERE o.tier <> n.tier
        """
    )
    tx.execute(
        """
        INSERT INTO trait_changes
        SELECT n.customer_id, n.run_id, 'p_alive', printf('%.3f', o.p_alive), printf('%.3f', n.p_alive),
               CASE WHEN n.p_alive < ? THEN 'down' ELSE 'up' END, n.scored_at
        FROM new_customer_value n JOIN customer_value o USING (customer_id)
        WHERE (o.p_alive >= ? AND n.p_alive < ?) OR (o.p_alive < ? AND n.p_alive >= ?)
        """,
        [threshold] * 5,
    )
    rows = tx.execute(
        "SELECT trait || ' ' || direction, count(*) FROM trait_changes "
        "WHERE run_id = (SELECT any_value(run_id) FROM new_customer_value) GROUP BY 1"
    ).fetchall()
    return {k: int(v) for k, v in rows}
