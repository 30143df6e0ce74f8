"""Compiled (numba) kernels of one decision and one response: the policy's score moments, the
ranking of a decision's draws with its propensities, and the Laplace update.

Why compiled: a decision works on arrays of 20 offers x 11 features, where every numpy call costs
about a microsecond of overhead whatever it computes; session 6's decision path was some forty
such calls (two ``einsum``, the draws' sigmoid, ``rank_many``, the propensity counts) and the update
about ten, 60 µs on a quiet machine and 210 µs at load 8-18 (BENCHMARKS.md, "Learning"). Here
each is one call of a loop over the offers. The random numbers still come from the caller's
``numpy.random.Generator``, drawn by numpy in the same order as before, so a seeded run makes the
same decisions.

This module imports numba at the top; :mod:`xrm.customize._bandit` imports it on first use, so the
CLI starts without it. The kernels are cached on disk (``cache=True``): a fresh process loads their
machine code (about 0.1-0.3 s); with no cache they compile once (seconds).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["choose", "moments", "rank_decision", "select_top", "spread", "update"]

# The GIL stays held (no ``nogil``): the kernels draw from the caller's Generator and write the
# policy's arrays, which threads share; each runs a few microseconds, too short to gain from it.
_jit = numba.njit(cache=True)


@_jit
def _sigmoid(s: float) -> float:  # pragma: no cover (compiled)
    if s > 35.0:
        s = 35.0
    elif s < -35.0:
        s = -35.0
    return 1.0 / (1.0 + math.exp(-s))


@_jit
def moments(mean: np.ndarray, cov: np.ndarray, precision: np.ndarray, full: bool,
            x: np.ndarray) -> tuple:  # pragma: no cover (compiled)
    """Mean and variance of each offer's score ``w_a . x_a``; ``x`` has one row per offer, or one
    row for all (shape ``1 x d``). ``cov`` (``n x d x d``) is read when ``full``, else ``precision``."""
    n, d = mean.shape
    shared = x.shape[0] == 1
    mu = np.empty(n)
    var = np.empty(n)
    for a in range(n):
        r = 0 if shared else a
        m = 0.0
        v = 0.0
        for i in range(d):
            xi = x[r, i]
            m += mean[a, i] * xi
            if full:
                t = 0.0
                for j in range(d):
                    t += cov[a, i, j] * x[r, j]
                v += xi * t
            else:
                v += xi * xi / precision[a, i]
        mu[a] = m
        var[a] = v if v > 0.0 else 0.0
    return mu, var


@_jit
def _bias_information(cov: np.ndarray, precision: np.ndarray, full: bool,
                      a: int) -> float:  # pragma: no cover (compiled)
    """``(S^-1)[0, 0]`` of offer ``a``: the prior's precision of the bias plus the sum of ``p (1 - p)``
    over the offer's responses (each update adds ``p (1 - p) x x'`` to ``S^-1``, and ``x[0]`` is 1).
    Full form: ``|L^-1 e_0|^2`` with ``S = L L'`` (Cholesky, then one forward substitution)."""
    if not full:
        return precision[a, 0]
    d = cov.shape[1]
    chol = np.zeros((d, d))
    for j in range(d):
        t = cov[a, j, j]
        for k in range(j):
            t -= chol[j, k] * chol[j, k]
        if t <= 0.0:  # rounding left S not quite positive definite: 1 / S[0, 0] is a lower bound
            return 1.0 / cov[a, 0, 0]
        chol[j, j] = math.sqrt(t)
        for i in range(j + 1, d):
            t = cov[a, i, j]
            for k in range(j):
                t -= chol[i, k] * chol[j, k]
            chol[i, j] = t / chol[j, j]
    y = np.zeros(d)
    total = 0.0
    for i in range(d):
        t = 1.0 if i == 0 else 0.0
        for k in range(i):
            t -= chol[i, k] * y[k]
        y[i] = t / chol[i, i]
        total += y[i] * y[i]
    return total


@_jit
def spread(mean: np.ndarray, cov: np.ndarray, precision: np.ndarray, full: bool, n_responses: np.ndarray,
           prior_precision: float, prior_variance: float, probability: bool,
           x: np.ndarray) -> tuple:  # pragma: no cover (compiled)
    """Each offer's centre and spread of the policy's draws ``centre + spread (optimism + exploration z)``.

    On the logit (``probability`` False): the score's mean and standard deviation. In probability:
    the predictive mean (the probit approximation, MacKay 1992, eq. 4.9) and the score's standard
    deviation times ``sqrt(c)``, ``c`` the offer's mean Bernoulli variance ``p (1 - p)`` over its
    responses (with one prior pseudo-response of variance ``prior_variance``): the Laplace posterior's
    spread is about ``1 / sqrt(n c)`` on the logit, so this is about ``1 / sqrt(n)`` in probability
    whatever the offer's rate, as LinUCB's and GLM-UCB's bounds (Filippi et al. 2010), without a
    second ``d x d`` matrix per offer.
    """
    mu, var = moments(mean, cov, precision, full, x)
    n = mu.shape[0]
    centre = np.empty(n)
    sd = np.empty(n)
    for a in range(n):
        if probability:
            centre[a] = _sigmoid(mu[a] / math.sqrt(1.0 + math.pi * var[a] / 8.0))
            seen = _bias_information(cov, precision, full, a) - prior_precision
            c = ((seen if seen > 0.0 else 0.0) + prior_variance) / (n_responses[a] + 1.0)
            sd[a] = math.sqrt(c * var[a])
        else:
            centre[a] = mu[a]
            sd[a] = math.sqrt(var[a])
    return centre, sd


@_jit
def _drawn(centre: float, sd: float, t: float, probability: bool) -> float:  # pragma: no cover (compiled)
    """P(response) of one draw ``centre + sd t``: the sigmoid on the logit, clipped to [0, 1] in
    probability."""
    if not probability:
        return _sigmoid(centre + sd * t)
    p = centre + sd * t
    return 0.0 if p < 0.0 else (1.0 if p > 1.0 else p)


@_jit
def select_top(ev: np.ndarray, codes: np.ndarray, k: int, max_per_category: int, counts: np.ndarray,
               taken: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover (compiled)
    """The ranking walk of one row (:func:`xrm.customize._decide.rank_many`): best first, ties to the
    lower index, expected value above 0, at most ``max_per_category`` per category; ``out`` gets the
    ``k`` offer indices, -1 where fewer are worth making. ``counts`` (one per category code) and
    ``taken`` (one per offer) are scratch space.

    As ``k`` passes of picking the best offer left whose category is not full: the walk skips an
    offer only when its category is full, and a full category stays full.
    """
    n = ev.shape[0]
    counts[:] = 0
    taken[:] = False
    for r in range(k):
        best = -1
        best_ev = 0.0
        for j in range(n):
            if taken[j]:
                continue
            c = codes[j]
            if c >= 0 and counts[c] >= max_per_category:
                continue
            if best < 0 or ev[j] > best_ev:
                best = j
                best_ev = ev[j]
        if best < 0 or not best_ev > 0.0:
            for rest in range(r, k):
                out[rest] = -1
            return
        taken[best] = True
        if codes[best] >= 0:
            counts[codes[best]] += 1
        out[r] = best


@_jit
def choose(mean: np.ndarray, cov: np.ndarray, precision: np.ndarray, full: bool, n_responses: np.ndarray,
           prior_precision: float, prior_variance: float, probability: bool, x: np.ndarray,
           z: np.ndarray, optimism: float, exploration: float) -> int:  # pragma: no cover
    """:meth:`xrm.customize.LogisticThompson.choose`: the offer first by one draw
    ``centre + spread (optimism + exploration z)`` (:func:`spread`), ``z`` one standard normal per offer."""
    centre, sd = spread(mean, cov, precision, full, n_responses, prior_precision, prior_variance,
                        probability, x)
    best = 0
    best_score = -np.inf
    for a in range(centre.shape[0]):
        score = centre[a] + sd[a] * (optimism + exploration * z[a])
        if score > best_score:  # the first of equal maxima, as argmax
            best, best_score = a, score
    return best


@_jit
def rank_decision(
    mean: np.ndarray, cov: np.ndarray, precision: np.ndarray, full: bool, n_responses: np.ndarray,
    prior_precision: float, prior_variance: float, probability: bool, x: np.ndarray,
    value: np.ndarray, cost: np.ndarray, codes: np.ndarray, z: np.ndarray, explored: bool,
    optimism: float, exploration: float, explore: float, k: int, max_per_category: int,
) -> tuple:  # pragma: no cover (compiled)
    """One decision of :func:`xrm.customize._decide.rank_offers`, given its standard normals ``z``
    (``draws x n``; no rows when ``explore`` is 0) and whether it explores.

    (The normals come in as an array: a ``numpy.random.Generator`` passed to a numba function
    costs about 7 µs to unbox, more than drawing them.) Returns the offers ranked (``k``, -1
    padded), each one's propensity, the P(response) ranked by (the first draw's when exploring,
    else the posterior mean) and the posterior mean.
    """
    n = mean.shape[0]
    mu, var = moments(mean, cov, precision, full, x)
    centre, sd = spread(mean, cov, precision, full, n_responses, prior_precision, prior_variance,
                        probability, x)
    p_mean = np.empty(n)
    for a in range(n):
        # probit approximation of the predictive mean (MacKay 1992, eq. 4.9), as mean_probability
        p_mean[a] = _sigmoid(mu[a] / math.sqrt(1.0 + math.pi * var[a] / 8.0))
    n_codes = 1
    for a in range(n):
        if codes[a] + 1 > n_codes:
            n_codes = codes[a] + 1
    counts = np.zeros(n_codes, dtype=np.int64)
    taken = np.zeros(n, dtype=np.bool_)
    ev = np.empty(n)
    m = z.shape[0]
    ranks = np.empty((m, k), dtype=np.int64)
    p_first = np.empty(n)
    for i in range(m):
        for a in range(n):
            p = _drawn(centre[a], sd[a], optimism + exploration * z[i, a], probability)
            if i == 0:
                p_first[a] = p
            ev[a] = p * value[a] - cost[a]
        select_top(ev, codes, k, max_per_category, counts, taken, ranks[i])
    greedy = np.full(k, -1, dtype=np.int64)
    if explore < 1.0:
        for a in range(n):
            ev[a] = p_mean[a] * value[a] - cost[a]
        select_top(ev, codes, k, max_per_category, counts, taken, greedy)
    used = ranks[0].copy() if explored and m > 0 else greedy
    # Propensity: (1 - explore) x [same offer at this rank under the mean] + explore x the share of
    # the draws (the one used included) that put it there; never below 1e-6.
    props = np.zeros(k)
    for r in range(k):
        j = used[r]
        if j < 0:
            break
        same = 1.0 if explore < 1.0 and greedy[r] == j else 0.0
        hits = 0
        for i in range(m):
            if ranks[i, r] == j:
                hits += 1
        share = hits / m if m > 0 else 0.0
        props[r] = max((1.0 - explore) * same + explore * share, 1e-6)
    return used, props, (p_first if explored and m > 0 else p_mean), p_mean


@_jit
def update(mean: np.ndarray, cov: np.ndarray, precision: np.ndarray, full: bool, n_responses: np.ndarray,
           prior_precision: float, prior_variance: float, probability: bool, offer: int,
           x: np.ndarray, reward: float, iterations: int) -> None:  # pragma: no cover (compiled)
    """:meth:`xrm.customize.LogisticThompson.update` for one offer, in place (its docstring says the
    steps): the MAP score by Newton's method on a line, then the rank-one (Sherman-Morrison) step of
    the covariance, or the diagonal precision's."""
    d = x.shape[0]
    sx = np.empty(d)
    for i in range(d):
        if full:
            t = 0.0
            for j in range(d):
                t += cov[offer, i, j] * x[j]
            sx[i] = t
        else:
            sx[i] = x[i] / precision[offer, i]
    v = 0.0
    s0 = 0.0
    for i in range(d):
        v += x[i] * sx[i]
        s0 += mean[offer, i] * x[i]
    s = s0
    for _ in range(iterations):
        p = _sigmoid(s)
        step = (s - s0 + (p - reward) * v) / (1.0 + p * (1.0 - p) * v)
        s -= step
        if abs(step) < 1e-10:
            break
    p = _sigmoid(s)
    for i in range(d):
        mean[offer, i] -= (p - reward) * sx[i]
    c = p * (1.0 - p)
    if full:
        scale = math.sqrt(c / (1.0 + c * v))
        for i in range(d):
            ui = sx[i] * scale
            for j in range(d):
                cov[offer, i, j] -= ui * (sx[j] * scale)
        for i in range(d):
            precision[offer, i] = 1.0 / cov[offer, i, i]
    else:
        for i in range(d):
            precision[offer, i] += x[i] * x[i] * c
