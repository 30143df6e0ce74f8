"""Many runs of the bandit bench's headline policy per problem seed, in seconds: the whole simulation
loop compiled (numba), for tuning and for telling policies apart beyond one run's noise.

One run per seed, as ``python -m bench --only bandit`` makes, moves a seed's regret by up to 300
(the policy's own random numbers); this averages ``--runs`` policy seeds per problem seed. It is the
same problem (:func:`bench.bench_bandit.make_problem`: offers, contexts, response draws), the same
prior as :class:`xrm.customize.LogisticThompson` and its compiled Laplace update
(:func:`xrm.customize._decide_kernels.update`, called here), with the policy's
normals from numba's generator (so not the bench's exact decisions), and the draw on the logit or
in probability (``scale``, as ``LogisticThompson``; the probability bound's ``c`` counted from the
pre-update ``p``, the library's from the updated one). Session 8 (docs/customize.md):

    python -m bench._bandit_runs --seeds 0 1 2 --runs 20 --first-run 200
"""

from __future__ import annotations

import argparse
import math

import numba
import numpy as np

from bench.bench_bandit import make_problem
from xrm.customize._decide_kernels import update


@numba.njit(cache=True)
def _sig(s: float) -> float:  # pragma: no cover (compiled)
    s = min(max(s, -35.0), 35.0)
    return 1.0 / (1.0 + math.exp(-s))


@numba.njit(cache=True)
def simulate(bias: np.ndarray, theta: np.ndarray, contexts: np.ndarray, uniforms: np.ndarray, seed: int,
             optimism: float, exploration: float, probability: bool) -> np.ndarray:  # pragma: no cover
    """Cumulative expected regret at 10k, 50k and the last round of one run (prior: intercept
    logit(0.05), precision 1, as the bench's ``XrmThompson``)."""
    np.random.seed(seed)
    n, d0 = theta.shape
    d, rounds = d0 + 1, contexts.shape[0]
    mean, cov = np.zeros((n, d)), np.zeros((n, d, d))
    prior_b, prior_var = math.log(0.05 / 0.95), 0.05 * 0.95
    for a in range(n):
        mean[a, 0] = prior_b
        for i in range(d):
            cov[a, i, i] = 1.0
    seen, counts = np.zeros(n), np.zeros(n)
    x, out = np.ones(d), np.zeros(3)
    precision = np.ones((n, d))  # kept up by update(); unused by the full covariance
    regret = 0.0
    for t in range(rounds):
        x[1:] = contexts[t]
        best, best_score = 0, -1e300
        for a in range(n):
            m, v = 0.0, 0.0
            for i in range(d):
                m += mean[a, i] * x[i]
                v += x[i] * (cov[a, i] @ x)
            v = max(v, 0.0)
            bound = optimism + exploration * np.random.standard_normal()
            if probability:
                c = (seen[a] + prior_var) / (counts[a] + 1.0)
                score = _sig(m / math.sqrt(1 + math.pi * v / 8)) + math.sqrt(c * v) * bound
            else:
                score = m + math.sqrt(v) * bound
            if score > best_score:
                best, best_score = a, score
        p_true = 1.0 / (1.0 + np.exp(-(bias + theta @ contexts[t])))
        regret += p_true.max() - p_true[best]
        reward = 1.0 if uniforms[t, best] < p_true[best] else 0.0
        a = best
        p0 = _sig(float(mean[a] @ x))
        # The product's own Laplace update (MAP score on a line, rank-one covariance step).
        update(mean, cov, precision, True, counts, 1.0, prior_var, probability, a, x, reward, 20)
        seen[a] += p0 * (1.0 - p0)
        counts[a] += 1.0
        if t + 1 == 10_000:
            out[0] = regret
        elif t + 1 == 50_000:
            out[1] = regret
    out[2] = regret
    return out


def runs(seeds: list[int], policy_seeds: list[int], *, optimism: float, exploration: float, scale: str,
         rounds: int = 100_000) -> np.ndarray:
    """``seeds x policy_seeds x 3`` regrets (at 10k, 50k, ``rounds``)."""
    out = np.empty((len(seeds), len(policy_seeds), 3))
    for i, seed in enumerate(seeds):
        pr = make_problem(rounds, seed=seed)
        for j, ps in enumerate(policy_seeds):
            out[i, j] = simulate(pr.bias, pr.theta, pr.contexts, pr.uniforms, ps, optimism, exploration,
                                 scale == "probability")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._bandit_runs", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--first-run", type=int, default=200, help="the first policy seed")
    args = parser.parse_args()
    policy_seeds = list(range(args.first_run, args.first_run + args.runs))
    for scale, opt, exp in (("logit", 1.0, 0.1), ("probability", 0.2, 0.03)):
        r = runs(args.seeds, policy_seeds, optimism=opt, exploration=exp, scale=scale)[:, :, -1]
        cells = " | ".join(f"{v:,.0f}" for v in r.mean(axis=1))
        print(f"| {scale}, optimism {opt:g}, exploration {exp:g} | {cells} | {r.mean():,.0f} |", flush=True)


if __name__ == "__main__":
    main()
