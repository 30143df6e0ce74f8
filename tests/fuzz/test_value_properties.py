"""Lifetime-value maths at extreme inputs: finite probabilities in [0, 1], no NaN, or a ModelError.

Hypothesis draws purchase summaries with the awkward shapes real data has: no repeat purchase at
all, one customer, everyone identical, frequency == recency, a huge observation period T, huge
frequencies. Fitting either succeeds with finite positive parameters and sane predictions, or
refuses with :class:`xrm.exceptions.ModelError`; it never returns NaN or a probability outside [0, 1].
Predictions are also checked with published CDNOW parameters for customers far outside the data.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xrm.differentiate import BetaGeoNBD, GammaGamma, ParetoNBD, ShiftedBetaGeometric
from xrm.exceptions import ModelError

T_VALUES = st.one_of(st.floats(0.0, 100.0), st.sampled_from([0.0, 1.0, 1e4, 1e6, 1e9]))


@st.composite
def customer(draw: Any) -> tuple[float, float, float]:
    T = draw(T_VALUES)
    x = draw(st.one_of(st.integers(0, 20), st.sampled_from([0, 1, 1000, 100_000])))
    if x == 0 or T == 0:
        return 0.0, 0.0, T
    shape = draw(st.sampled_from(["any", "end", "equal"]))
    if shape == "end":
        t_x = T
    elif shape == "equal" and x <= T:
        t_x = float(x)  # frequency == recency
    else:
        t_x = draw(st.floats(min(T, 1e-6), T))
    return float(x), t_x, T


@st.composite
def summaries(draw: Any) -> dict[str, np.ndarray]:
    if draw(st.booleans()):
        rows = [draw(customer())] * draw(st.integers(1, 30))  # one customer, or all identical
    else:
        rows = draw(st.lists(customer(), min_size=1, max_size=30))
    x, t_x, T = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    return {"frequency": x, "recency": t_x, "T": T}


def _check_predictions(model: Any, data: dict[str, np.ndarray]) -> None:
    p = model.p_alive(data)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all(), p
    e = model.expected_purchases(data, 52.0)
    assert np.isfinite(e).all() and (e >= 0).all(), e
    assert np.isfinite(model.expected_purchases_new(np.array([0.0, 1.0, 1e6]))).all()


def _fit_or_refuse(model: Any, data: dict[str, np.ndarray]) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a RuntimeWarning (overflow, NaN) is a failure too
            model.fit(data)
    except ModelError as exc:
        assert str(exc), "a refusal says why"
        return None
    assert all(np.isfinite(v) and v > 0 for v in model.params_.values()), model.params_
    return model


FIT = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))


@FIT
@given(data=summaries())
@pytest.mark.parametrize("kind", [BetaGeoNBD, ParetoNBD])
def test_fit_gives_sane_predictions_or_a_model_error(kind: Any, data: dict[str, np.ndarray]) -> None:
    model = _fit_or_refuse(kind(), data)
    if model is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _check_predictions(model, data)
    except ModelError as exc:  # parameters fitted to degenerate data may be refused, with the reason
        assert "penalizer" in str(exc), exc


@settings(max_examples=150, deadline=None)
@given(data=summaries())
def test_published_parameters_give_sane_predictions_at_extremes(data: dict[str, np.ndarray]) -> None:
    bg = BetaGeoNBD().set_params(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005, CDNOW
    pareto = ParetoNBD().set_params(r=0.553, alpha=10.578, s=0.606, beta=11.669)  # Fader-Hardie, CDNOW
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_predictions(bg, data)
        _check_predictions(pareto, data)


@FIT
@given(
    x=st.lists(st.sampled_from([0, 1, 2, 5, 100_000]), min_size=1, max_size=20),
    m=st.lists(st.sampled_from([0.01, 1.0, 20.0, 20.0, 1e7]), min_size=1, max_size=20),
)
def test_gamma_gamma_spend_is_finite_and_positive_or_refused(x: list[int], m: list[float]) -> None:
    n = min(len(x), len(m))
    data = {"frequency": np.array(x[:n], dtype=float), "monetary_value": np.array(m[:n])}
    model = _fit_or_refuse(GammaGamma(), data)
    if model is None:
        return
    try:
        spend = model.expected_spend(data)
    except ModelError:  # q <= 1: infinite mean spend, refused with its reason
        return
    assert np.isfinite(spend).all() and (spend > 0).all(), spend


@FIT
@given(start=st.integers(1, 10**6), drops=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_sbg_survival_and_retention_stay_in_0_1_or_refused(start: int, drops: list[float]) -> None:
    counts = [start]
    for d in drops:
        counts.append(int(counts[-1] * (1 - d)))
    assume(len(counts) >= 2)
    model = _fit_or_refuse(ShiftedBetaGeometric(), counts)
    if model is None:
        return
    t = np.array([0.0, 1.0, 10.0, 1e6])
    s, r = model.survival(t), model.retention_rate(t[1:])
    assert np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all(), s
    assert np.isfinite(r).all() and ((r >= 0) & (r <= 1)).all(), r
