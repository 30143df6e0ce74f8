"""Value models: edge cases, saving and loading, the sBG worked example, CLV."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import xrm.differentiate as diff
from xrm.differentiate import (
    BetaGeoNBD,
    GammaGamma,
    ParetoNBD,
    ShiftedBetaGeometric,
    discounted_clv,
    score_customers,
)
from xrm.exceptions import ModelError

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}

# Fader & Hardie (2007), Table 1: customers of 1,000 still active after 0..7 years.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def _edge_cases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "frequency": [0, 1, 5, 40, 2, 0, 400],
            "recency": [0.0, 10.0, 38.0, 39.0, 39.0, 0.0, 38.5],  # recency = age for some
            "T": [39.0, 39.0, 39.0, 39.0, 39.0, 0.0, 39.0],       # and a customer of age 0
            "monetary_value": [0.0, 20.0, 35.0, 50.0, 10.0, 0.0, 12.0],
        }
    )


def test_public_surface():
    assert sorted(diff.__all__) == sorted(set(diff.__all__))
    for name in diff.__all__:
        assert getattr(diff, name) is not None
    with pytest.raises(AttributeError):
        _ = diff.NoSuchModel


@pytest.mark.parametrize(("cls", "params"), [(BetaGeoNBD, BGNBD), (ParetoNBD, PNBD)])
def test_predictions_are_finite_and_sane_on_edge_cases(cls, params):
    m = cls().set_params(**params)
    data = _edge_cases()
    alive = m.p_alive(data)
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()
    assert alive[0] == pytest.approx(1.0) if cls is BetaGeoNBD else alive[0] < 1
    assert alive[3] > alive[1]  # a frequent buyer seen at the end is more surely alive
    short, long = m.expected_purchases(data, 10.0), m.expected_purchases(data, 52.0)
    assert np.isfinite(long).all() and (long >= short).all() and (short >= 0).all()
    assert long[6] > long[3] > long[1]  # the 400-purchase customer does not overflow
    assert np.isfinite(m.log_likelihood(data)).all()
    assert m.expected_purchases(data.iloc[:0], 10.0).shape == (0,)


def test_bgnbd_expectation_is_continuous_at_a_equal_one():
    data = _edge_cases()
    values = [
        BetaGeoNBD().set_params(r=0.5, alpha=5.0, a=a, b=2.0).expected_purchases(data, 20.0)
        for a in (1 - 1e-3, 1.0, 1 + 1e-3)
    ]
    np.testing.assert_allclose(values[1], 0.5 * (values[0] + values[2]), rtol=1e-5)


def test_pareto_nbd_expectation_is_continuous_at_s_equal_one():
    data = _edge_cases()
    values = [
        ParetoNBD().set_params(r=0.5, alpha=5.0, s=s, beta=8.0).expected_purchases(data, 20.0)
        for s in (1 - 1e-6, 1.0, 1 + 1e-6)
    ]
    np.testing.assert_allclose(values[1], values[0], rtol=1e-5)
    np.testing.assert_allclose(values[1], values[2], rtol=1e-5)


@pytest.mark.parametrize("cls", [BetaGeoNBD, ParetoNBD])
def test_fitting_refuses_what_it_cannot_estimate(cls):
    with pytest.raises(ModelError, match="no customers to fit"):
        cls().fit(pd.DataFrame({"frequency": [], "recency": [], "T": []}))
    with pytest.raises(ModelError, match="none of the 3 customers has a repeat purchase"):
        cls().fit(pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0] * 3, "T": [5.0, 6.0, 7.0]}))
    with pytest.raises(ModelError, match="too few"):
        cls().fit(pd.DataFrame({"frequency": [3], "recency": [20.0], "T": [30.0]}))


def test_bad_summaries_are_reported_together():
    bad = pd.DataFrame(
        {
            "frequency": [1, -1, 0, 2.5, 1],
            "recency": [5.0, 1.0, 3.0, 2.0, 9.0],
            "T": [4.0, 9.0, 9.0, 9.0, np.nan],
        }
    )
    with pytest.raises(ModelError) as err:
        BetaGeoNBD().fit(bad)
    text = str(err.value)
    for rule in ("missing or infinite", "whole number", "recency > T", "no repeat purchase but a recency"):
        assert rule in text
    with pytest.raises(ModelError, match=r"no column.*recency"):
        BetaGeoNBD().fit({"frequency": [1], "T": [3.0]})


def test_gamma_gamma_refuses_non_positive_spend_and_names_the_fix():
    data = _edge_cases()
    data.loc[1, "monetary_value"] = 0.0
    data.loc[2, "monetary_value"] = -12.0
    with pytest.raises(ModelError, match=r"2 of 5 repeat customers have an average spend <= 0.*Exclude them"):
        GammaGamma().fit(data)
    with pytest.raises(ModelError, match="exclude them"):
        GammaGamma().set_params(**GG).expected_spend(data)
    with pytest.raises(ModelError, match="1 customer"):
        GammaGamma().fit(pd.DataFrame({"frequency": [2, 0], "monetary_value": [10.0, 0.0]}))
    heavy = GammaGamma().set_params(p=2.0, q=0.8, gamma=3.0)
    with pytest.raises(ModelError, match=r"q = 0\.8 <= 1"):
        heavy.expected_spend(_edge_cases())


def test_gamma_gamma_shrinks_towards_the_population_mean():
    g = GammaGamma().set_params(**GG)
    data = pd.DataFrame({"frequency": [0, 1, 2, 50], "monetary_value": [0.0, 100.0, 100.0, 100.0]})
    z = g.expected_spend(data)
    assert z[0] == pytest.approx(g.mean_spend())
    assert g.mean_spend() < z[1] < z[2] < z[3] < 100.0


@pytest.mark.parametrize(("cls", "params"), [(BetaGeoNBD, BGNBD), (ParetoNBD, PNBD), (GammaGamma, GG)])
def test_save_and_load_round_trip(tmp_path, cls, params):
    m = cls(penalizer=0.001).set_params(**params)
    path = m.save(tmp_path / "model.json")
    back = cls.load(path)
    assert back.params_ == m.params_ and back.config == m.config
    saved = json.loads(path.read_text())
    assert saved["model"] == cls.kind and saved["format_version"] == diff.FORMAT_VERSION

    saved["format_version"] = diff.FORMAT_VERSION + 1
    path.write_text(json.dumps(saved))
    with pytest.raises(ModelError, match=r"format v2 .*this xrm reads format v1.*Refit"):
        cls.load(path)
    other = ShiftedBetaGeometric().set_params(alpha=1.0, beta=2.0).save(tmp_path / "sbg.json")
    with pytest.raises(ModelError, match="not"):
        cls.load(other)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ModelError, match="is not a saved model"):
        cls.load(tmp_path / "junk.json")
    with pytest.raises(ModelError, match="unknown setting"):
        cls(learning_rate=0.1)
    with pytest.raises(ModelError, match="not fitted"):
        cls().summary()


def test_fitted_model_saves_its_fit(tmp_path, cdnow_published):
    m = BetaGeoNBD().fit(cdnow_published)
    back = BetaGeoNBD.load(m.save(tmp_path / "bg.json"))
    assert back.summary() == m.summary()
    np.testing.assert_array_equal(back.p_alive(cdnow_published), m.p_alive(cdnow_published))


@pytest.mark.parametrize(
    ("cohort", "alpha", "beta"), [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)]
)
def test_sbg_reproduces_fader_hardie_2007(cohort, alpha, beta):
    m = ShiftedBetaGeometric().fit(cohort)
    assert m.params_["alpha"] == pytest.approx(alpha, abs=6e-4)
    assert m.params_["beta"] == pytest.approx(beta, abs=6e-4)
    # The fitted curve follows the 7 calibration years closely (the paper's Figure 3).
    fitted = 1000 * m.survival(np.arange(8))
    assert np.abs(fitted - np.array(cohort)).max() < 20
    assert (np.diff(m.retention_rate(np.arange(1, 13))) > 0).all()
    assert m.se_["alpha"] is not None and m.se_["alpha"] > 0


def test_sbg_high_end_log_likelihood():
    # Fader & Hardie (2007) appendix: the high-end spreadsheet reaches LL = -1611.2 (1,000 customers).
    assert ShiftedBetaGeometric().fit(HIGH_END).log_likelihood_ == pytest.approx(-1611.2, abs=0.06)


def test_sbg_derl_equals_the_discounted_sum_of_survival():
    m = ShiftedBetaGeometric().fit(REGULAR)
    d, k = 0.1, np.arange(1, 5000)
    for renewals in (0, 4):
        # The imminent renewal is paid now (undiscounted), later ones are discounted per period.
        direct = (m.survival(renewals + k) / m.survival(renewals) / (1 + d) ** (k - 1)).sum()
        assert m.discounted_expected_residual_lifetime(d, renewals) == pytest.approx(direct, rel=1e-6)
    with pytest.raises(ModelError, match=r"α = 0\.704.* <= 1, so the expected lifetime is infinite"):
        m.expected_lifetime()


def test_sbg_pools_cohorts_and_refuses_bad_counts():
    both = ShiftedBetaGeometric().fit([REGULAR, REGULAR[:4]])
    assert both.n_obs_ == 2000
    with pytest.raises(ModelError, match="survivors rise from 468 to 500 at period 3"):
        ShiftedBetaGeometric().fit([1000, 631, 468, 500])
    with pytest.raises(ModelError, match="no customer of any cohort churned"):
        ShiftedBetaGeometric().fit([100, 100, 100])
    with pytest.raises(ModelError, match="no cohort counts"):
        ShiftedBetaGeometric().fit([])


def test_clv_telescopes_without_discounting_and_shrinks_with_it():
    bg, gg = BetaGeoNBD().set_params(**BGNBD), GammaGamma().set_params(**GG)
    data = _edge_cases()
    plain = discounted_clv(bg, gg, data, horizon=12, discount_rate=0.0, period=4.0)
    expected = bg.expected_purchases(data, 48.0) * gg.expected_spend(data)
    np.testing.assert_allclose(plain, expected, rtol=1e-10)
    discounted = discounted_clv(bg, gg, data, horizon=12, discount_rate=0.01, period=4.0, margin=0.3)
    assert (discounted < 0.3 * plain + 1e-12).all() and (discounted > 0).all()
    with pytest.raises(ModelError, match="discount_rate = -2"):
        discounted_clv(bg, gg, data, discount_rate=-2)


def test_score_customers_on_cdnow(cdnow_published):
    bg = BetaGeoNBD().fit(cdnow_published)
    gg = GammaGamma().fit(cdnow_published)
    data = cdnow_published.assign(customer_id=cdnow_published["ID"].astype(str))
    scores = score_customers(bg, gg, data, horizon=12, discount_rate=0.01)
    assert list(scores.columns) == ["customer_id", "p_alive", "expected_purchases", "expected_spend", "clv"]
    assert len(scores) == 2357 and np.isfinite(scores.drop(columns="customer_id").to_numpy()).all()
    # A single customer is scored like in the crowd.
    one = score_customers(bg, gg, data.iloc[[5]], horizon=12)
    assert one["clv"].iloc[0] == pytest.approx(scores["clv"].iloc[5])
    with pytest.raises(ModelError, match="no customers to score"):
        score_customers(bg, gg, data.iloc[:0])


def _lifetimes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import lifetimes
        except ImportError:
            pytest.skip("lifetimes is not installed")
    return lifetimes


def test_predictions_match_lifetimes(cdnow_published):
    """Same parameters, same per-customer predictions as the `lifetimes` library (a peer)."""
    lt = _lifetimes()
    x, t_x, T = cdnow_published["frequency"], cdnow_published["recency"], cdnow_published["T"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lt.BetaGeoFitter()
        peer.params_ = pd.Series(BGNBD)
        peer_e = peer.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
        peer_a = peer.conditional_probability_alive(x, t_x, T)
        pp = lt.ParetoNBDFitter()
        pp.params_ = pd.Series(PNBD)
        pp_e = pp.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
        pp_a = pp.conditional_probability_alive(x, t_x, T)
    bg, pn = BetaGeoNBD().set_params(**BGNBD), ParetoNBD().set_params(**PNBD)
    np.testing.assert_allclose(bg.expected_purchases(cdnow_published, 52), peer_e, rtol=1e-6)
    np.testing.assert_allclose(bg.p_alive(cdnow_published), peer_a, rtol=1e-9)
    np.testing.assert_allclose(pn.expected_purchases(cdnow_published, 52), pp_e, rtol=1e-6)
    np.testing.assert_allclose(pn.p_alive(cdnow_published), pp_a, rtol=1e-6)
