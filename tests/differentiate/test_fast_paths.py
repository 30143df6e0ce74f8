"""The fast paths of BG/NBD, Pareto/NBD and Gamma-Gamma give the same numbers as the plain formulas.

Fitting sums the Γ/ψ terms once per distinct frequency and fits identical rows once with their
count; scoring evaluates the 2F1 term once per distinct (x, T). Each is checked here against the
straightforward per-customer computation, on a population drawn from the models themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import digamma, gammaln

from xrm.differentiate import BetaGeoNBD, GammaGamma, ParetoNBD, _paretonbd, discounted_clv
from xrm.differentiate._bgnbd import _compress, _expected, _nll_and_grad, _Rows
from xrm.exceptions import ModelError

TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def _population(n: int, seed: int = 3) -> pd.DataFrame:
    """BG/NBD purchasing and Gamma-Gamma spend, in whole days (so identical rows occur)."""
    rng = np.random.default_rng(seed)
    t_days = rng.integers(26 * 7, 52 * 7 + 1, n)
    T = t_days / 7.0
    lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], n)
    k = rng.geometric(rng.beta(TRUE["a"], TRUE["b"], n))
    arrivals = rng.poisson(lam * T)
    x = np.minimum(arrivals, k)
    last = rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1))
    tx_days = np.where(x > 0, np.clip(np.ceil(last * t_days), 1, t_days), 0)
    nu = rng.gamma(3.74, 1.0 / 15.44, n)
    spend = np.where(x > 0, rng.gamma(6.25 * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1))), 0.0)
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx_days / 7.0, "T": T,
                         "monetary_value": np.maximum(spend, 0.01) * (x > 0)})


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return _population(20_000)


def _plain_bgnbd_ll(p: np.ndarray, d: pd.DataFrame) -> float:
    """FHL (2005) eq. (6) per customer, summed: no compression, no per-x tables."""
    r, alpha, a, b = p
    x, t_x, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(invalid="ignore", divide="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


def test_compression_keeps_every_customer(population):
    x, t_x, T = (population[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    ux, ut, uT, w = _compress(x, t_x, T)
    assert w.sum() == len(x) and len(ux) < len(x)  # day resolution: repeated rows do occur
    expected = pd.DataFrame({"x": x, "t": t_x, "T": T}).value_counts()
    got = pd.Series(w, index=pd.MultiIndex.from_arrays([ux, ut, uT], names=["x", "t", "T"]))
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index().astype(float), check_names=False)


def test_row_codes_survive_hash_collisions(population, monkeypatch):
    """Rows are pooled by a 64-bit hash of their bits; when two different rows share a key, the
    exact (complex-pair) coding takes over, so no two different histories are ever pooled."""
    from xrm.differentiate import _bgnbd

    cols = [population[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    hashed = _bgnbd._row_codes(*cols)
    monkeypatch.setattr(_bgnbd, "_row_hash", lambda *c: np.zeros(len(c[0]), dtype=np.uint64))
    exact = _bgnbd._row_codes(*cols)  # every row collides with every other
    assert hashed.max() == exact.max() and len(np.unique(exact)) < len(exact)
    for codes in (hashed, exact):
        rep = _bgnbd._representatives(codes)[codes]
        assert all(np.array_equal(c, c[rep]) for c in cols)  # one code, one history


def _central_differences(f, p):
    """The gradient of ``f`` at ``p`` by central differences, a relative step of 1e-6 per parameter."""
    numeric = []
    for i in range(len(p)):
        h = 1e-6 * p[i]
        up, dn = p.copy(), p.copy()
        up[i] += h
        dn[i] -= h
        numeric.append((f(up) - f(dn)) / (2 * h))
    return numeric


@pytest.mark.parametrize("p", [[0.243, 4.414, 0.793, 2.426], [1.7, 0.3, 2.5, 0.6]])
def test_bgnbd_likelihood_and_gradient_match_the_plain_formula(population, p):
    p = np.array(p)
    rows = _Rows(*(population[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    value, grad = _nll_and_grad(p, rows, 0.0)
    assert value == pytest.approx(-_plain_bgnbd_ll(p, population), rel=1e-12)
    numeric = _central_differences(lambda q: -_plain_bgnbd_ll(q, population), p)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_bgnbd_fit_recovers_the_population(population):
    m = BetaGeoNBD().fit(population)
    for k, v in TRUE.items():  # 20,000 customers: within a few standard errors of the truth
        se = m.se_[k]
        assert se is not None and abs(m.params_[k] - v) < 4 * se, (k, m.params_[k], v, se)


def test_gamma_gamma_gradient_matches_the_plain_formula(population):
    rep = population[population.frequency > 0]
    x, m = rep.frequency.to_numpy(float), rep.monetary_value.to_numpy(float)

    def plain(params: np.ndarray) -> float:
        p, q, g = params
        px = p * x
        return float(np.sum(gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(g + x * m)))

    gg = GammaGamma().fit(population)
    best = np.array([gg.params_[k] for k in ("p", "q", "gamma")])
    assert gg.log_likelihood_ == pytest.approx(plain(best), rel=1e-12)
    # the plain gradient vanishes at the fitted optimum
    p, q, g = best
    px = p * x
    d_p = np.sum(x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(g + x * m)))
    d_q = np.sum(digamma(px + q) - digamma(q) + np.log(g) - np.log(g + x * m))
    d_g = np.sum(q / g - (px + q) / (g + x * m))
    assert np.abs([d_p, d_q, d_g]).max() < 1e-3 * len(x)


def test_scoring_by_distinct_rows_matches_per_customer(population):
    m = BetaGeoNBD().set_params(**TRUE)
    d = population
    x, T = d["frequency"].to_numpy(float), d["T"].to_numpy(float)
    plain = _expected(m._params(), np.full(len(x), 52.0), x, T) * m.p_alive(d)
    np.testing.assert_allclose(m.expected_purchases(d, 52.0), plain, rtol=1e-13)
    # a horizon per customer takes the direct route: the same numbers
    np.testing.assert_allclose(m.expected_purchases(d, np.full(len(x), 52.0)), plain, rtol=1e-13)
    path = list(m.expected_purchases_path(d, [4.0, 52.0]))
    np.testing.assert_allclose(path[1], plain, rtol=1e-13)
    gg = GammaGamma().set_params(p=6.25, q=3.74, gamma=15.44)
    clv = discounted_clv(m, gg, d, horizon=3, discount_rate=0.01, period=4.345)
    steps = [m.expected_purchases(d, k * 4.345) for k in range(4)]
    by_hand = sum((steps[k] - steps[k - 1]) / 1.01**k for k in (1, 2, 3)) * gg.expected_spend(d)
    np.testing.assert_allclose(clv, by_hand, rtol=1e-12)


def test_horizon_must_not_be_negative(population):
    m = BetaGeoNBD().set_params(**TRUE)
    with pytest.raises(ModelError, match="horizon t must be >= 0"):
        m.expected_purchases(population, -1.0)


def _plain_pnbd_nll(p: np.ndarray, d: pd.DataFrame) -> float:
    """Pareto/NBD per customer by SciPy's 2F1 (the scoring path), summed: no grouping, no series."""
    x, t_x, T = (d[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    return -float(_paretonbd._loglik(p, x, t_x, T).sum())


@pytest.mark.parametrize("p", [[0.553, 10.578, 0.606, 11.669],  # α < β (CDNOW)
                               [0.5, 12.0, 0.6, 3.0],  # α > β
                               [1.3, 2.0, 0.8, 2.0]])  # α = β: A0 needs no series
def test_pareto_nbd_likelihood_and_gradient_match_the_plain_formula(population, p):
    p = np.array(p)
    rows = _paretonbd._Rows(*(population[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    assert len(rows.px) < 2 * len(rows.x)  # customers share (x, t) pairs: fewer series than rows
    value, grad = _paretonbd._nll_and_grad(p, rows, 0.0)
    assert value == pytest.approx(_plain_pnbd_nll(p, population), rel=1e-12)
    assert grad is not None
    numeric = _central_differences(lambda q: _plain_pnbd_nll(q, population), p)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_pareto_nbd_falls_back_to_finite_differences_when_the_series_is_long(population):
    rows = _paretonbd._Rows(*(population[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    p = np.array([0.5, 0.01, 0.6, 50.0])  # z = (β-α)/(β+t) near 1: the series would need > 400 terms
    value, grad = _paretonbd._nll_and_grad(p, rows, 0.0)
    assert grad is None and value == pytest.approx(_plain_pnbd_nll(p, population), rel=1e-12)


def test_pareto_nbd_fit_recovers_its_own_population():
    rng = np.random.default_rng(5)
    n, truth = 20_000, {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
    T = rng.integers(26 * 7, 52 * 7 + 1, n) / 7.0
    lam = rng.gamma(truth["r"], 1.0 / truth["alpha"], n)
    life = rng.exponential(1.0 / rng.gamma(truth["s"], 1.0 / truth["beta"], n))
    alive_for = np.minimum(life, T)
    x = rng.poisson(lam * alive_for).astype(float)
    last = np.where(x > 0, alive_for * rng.beta(np.maximum(x, 1), 1.0), 0.0)  # max of x uniforms
    last_day = np.where(x > 0, np.clip(np.ceil(last * 7), 1, T * 7), 0)  # whole days, as stored
    data = pd.DataFrame({"frequency": x, "recency": last_day / 7, "T": T})
    m = ParetoNBD().fit(data)
    for k, v in truth.items():
        se = m.se_[k]
        assert se is not None and abs(m.params_[k] - v) < 4 * se, (k, m.params_[k], v, se)
