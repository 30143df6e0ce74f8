"""The bandit benchmark's own machinery: the simulation scores the oracle at zero regret and random
far above a learner, and the off-policy estimate sees a better policy on a log where one exists."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_bandit  # noqa: E402


def test_regret_is_zero_for_the_oracle_and_large_for_random():
    problem = bench_bandit.make_problem(4_000, seed=3)
    oracle = bench_bandit.simulate(problem, bench_bandit.Oracle(problem), "oracle")
    assert oracle.regret[-1] == 0.0 and oracle.expected_rate == oracle.oracle_rate
    random = bench_bandit.simulate(problem, bench_bandit.Random(), "random")
    fixed = bench_bandit.simulate(problem, bench_bandit.FixedBest(problem), "fixed")
    xrm = bench_bandit.simulate(problem, bench_bandit.XrmThompson(full=True, exploration=0.5), "xrm",
                                time_each=True)
    # Random gives up much of the oracle's margin in every round; the learner less and less as it
    # learns, below the fixed best offer once it has.
    assert random.regret[-1] > 0.1 * problem.rounds
    assert fixed.regret[-1] < random.regret[-1]
    per_round = np.diff(np.r_[0.0, xrm.regret])
    assert per_round[-1000:].mean() < 0.5 * per_round[:1000].mean()
    assert per_round[-1000:].mean() < fixed.regret[-1] / problem.rounds
    assert len(xrm.per_decision_us) == problem.rounds and min(xrm.per_update_us) > 0
    # Clicks are drawn from the true probabilities.
    assert abs(oracle.clicks / problem.rounds - oracle.oracle_rate) < 0.03


def test_seed_spread_reruns_each_policy_on_the_other_seeds():
    rounds = 800
    problem = bench_bandit.make_problem(rounds, seed=0)
    first = [bench_bandit.simulate(problem, bench_bandit.headline(), bench_bandit.HEADLINE_NAME),
             bench_bandit.simulate(problem, bench_bandit.XrmThompson(full=True, exploration=0.25),
                                   bench_bandit.PLAIN_TS_NAME),
             bench_bandit.simulate(problem, bench_bandit.DeciderPath(), bench_bandit.DECIDER_NAME)]
    spread = bench_bandit.seed_spread(rounds, first, None)
    assert set(spread) == {bench_bandit.HEADLINE_NAME, bench_bandit.PLAIN_TS_NAME, bench_bandit.DECIDER_NAME}
    for name, values in spread.items():
        assert len(values) == len(bench_bandit.SEEDS)
        assert values[0] == next(r for r in first if r.name == name).regret[-1]
        assert len(set(values)) == len(values) and min(values) > 0  # other problems, other regrets
    assert 0 < bench_bandit.cpu_per_decision(bench_bandit.make_problem(300), bench_bandit.headline) < 5_000


def _synthetic_log(n: int, n_items: int, seed: int):
    """A uniform-random log in the Open Bandit Dataset's layout where the item with the highest
    user-item affinity is the one most often clicked."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    aff = rng.normal(0, 1, (n, n_items))
    item = rng.integers(0, n_items, n)
    p = 1 / (1 + np.exp(-(-3.5 + 1.5 * aff[np.arange(n), item])))
    frame = pd.DataFrame({"timestamp": np.arange(n), "item_id": item, "position": 1,
                          "click": (rng.random(n) < p).astype(int), "propensity_score": 1 / n_items})
    for j in range(n_items):
        frame[f"user-item_affinity_{j}"] = aff[:, j]
    return frame, float(np.mean(1 / (1 + np.exp(-(-3.5 + 1.5 * aff.max(axis=1))))))


def test_off_policy_estimates_see_the_better_policy():
    frame, greedy_truth = _synthetic_log(8_000, 5, seed=2)
    res = bench_bandit.off_policy_obd({"random": frame, "bts": frame}, boot=200)
    logged, _ = res["logged_random"]
    assert greedy_truth > 2 * logged
    for name in ("ips", "snips", "dr"):
        value, (lo, _) = res[name]
        assert abs(value - greedy_truth) < 0.2 * greedy_truth, (name, value, greedy_truth)
        assert lo > logged, (name, lo, logged)
    lines = "\n".join(bench_bandit._obd_lines(res))
    assert "doubly robust" in lines and f"{res['clicks']} clicks" in lines
