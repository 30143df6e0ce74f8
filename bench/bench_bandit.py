"""Learning from responses: bandit regret in a simulation with known response rates, and off-policy
estimates on the Open Bandit Dataset.

Simulation: 20 offers, 10 context features, P(response | z, a) = sigmoid(b_a + theta_a . z) with
seeded parameters, so every policy's expected regret against the oracle (which knows the model)
is computed exactly, round by round, from the true probabilities rather than from the noisy clicks.
Policies: uniform random, the fixed best offer (the single offer with the highest average rate,
chosen with the oracle's knowledge), xrm's :class:`xrm.customize.LogisticThompson`, and the
maintained libraries mabwiser, contextualbandits and vowpalwabbit, each on the same context and
response draws.

Off-policy: the Open Bandit Dataset sample (ZOZOTOWN, CC BY 4.0) ships inside the ``obp`` 0.4.1
wheel; it is fetched with ``pip download`` at run time and read from the zip by path.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench._harness import Section, fetch_wheel, machine_line
from xrm.customize._bandit import EXPLORATION, OPTIMISM, SCALE

__all__ = ["Problem", "make_problem", "run", "simulate"]

N_OFFERS, N_FEATURES = 20, 10


@dataclass(frozen=True)
class Problem:
    """A seeded logistic response model and the context / uniform draws every policy shares."""

    bias: np.ndarray  # n_offers
    theta: np.ndarray  # n_offers x n_features
    contexts: np.ndarray  # rounds x n_features
    uniforms: np.ndarray  # rounds x n_offers: click(a) = uniforms[t, a] < p[t, a]

    @property
    def rounds(self) -> int:
        return len(self.contexts)

    def probabilities(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        z = self.contexts[lo:hi]
        return 1 / (1 + np.exp(-(self.bias + z @ self.theta.T)))


def make_problem(rounds: int, *, seed: int = 0, n_offers: int = N_OFFERS,
                 n_features: int = N_FEATURES) -> Problem:
    """Offers with base rates around 8% whose response depends on the context (logit slopes 0.25)."""
    rng = np.random.default_rng(seed)
    bias = rng.normal(-2.5, 0.5, n_offers)
    theta = rng.normal(0.0, 0.25, (n_offers, n_features))
    contexts = rng.standard_normal((rounds, n_features))
    uniforms = rng.random((rounds, n_offers))
    return Problem(bias, theta, contexts, uniforms)


class Policy(Protocol):
    """Chooses offers for a block of contexts, then learns from the block's responses."""

    block: int

    def choose(self, z: np.ndarray) -> np.ndarray: ...
    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None: ...


@dataclass
class Result:
    name: str
    actions: np.ndarray
    regret: np.ndarray  # cumulative expected regret per round
    expected_rate: float  # mean P(response) of the chosen offers
    oracle_rate: float
    clicks: int
    wall_s: float
    per_decision_us: list[float] = field(default_factory=list)  # choose, single rows
    per_update_us: list[float] = field(default_factory=list)  # learn, single rows
    note: str = ""


def simulate(problem: Problem, policy: Policy, name: str, *, time_each: bool = False) -> Result:
    """Run ``policy`` through every round; per-round times when it decides one context at a time."""
    n = problem.rounds
    actions = np.empty(n, dtype=np.int64)
    rewards = np.empty(n)
    choose_us: list[float] = []
    learn_us: list[float] = []
    start = time.perf_counter()
    for lo in range(0, n, policy.block):
        hi = min(lo + policy.block, n)
        z = problem.contexts[lo:hi]
        t0 = time.perf_counter_ns()
        a = np.asarray(policy.choose(z), dtype=np.int64)
        t1 = time.perf_counter_ns()
        r = (problem.uniforms[np.arange(lo, hi), a] < problem.probabilities(lo, hi)[np.arange(hi - lo), a])
        policy.learn(z, a, r.astype(float))
        t2 = time.perf_counter_ns()
        if time_each and hi - lo == 1:
            choose_us.append((t1 - t0) / 1e3)
            learn_us.append((t2 - t1) / 1e3)
        actions[lo:hi], rewards[lo:hi] = a, r
    wall = time.perf_counter() - start
    p = problem.probabilities()
    chosen = p[np.arange(n), actions]
    best = p.max(axis=1)
    return Result(name, actions, np.cumsum(best - chosen), float(chosen.mean()), float(best.mean()),
                  int(rewards.sum()), wall, choose_us, learn_us)


# --- policies -------------------------------------------------------------------------------------


class Oracle:
    block = 10_000

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def choose(self, z: np.ndarray) -> np.ndarray:
        return np.argmax(1 / (1 + np.exp(-(self.problem.bias + z @ self.problem.theta.T))), axis=1)

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class Random:
    block = 10_000

    def __init__(self, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)

    def choose(self, z: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, N_OFFERS, len(z))

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class FixedBest:
    """The one offer with the highest response rate averaged over contexts (oracle knowledge)."""

    block = 10_000

    def __init__(self, problem: Problem) -> None:
        self.best = int(np.argmax(problem.probabilities().mean(axis=0)))

    def choose(self, z: np.ndarray) -> np.ndarray:
        return np.full(len(z), self.best)

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class XrmThompson:
    """xrm's LogisticThompson, one decision and one update at a time (as the Decider runs it), on one
    feature row shared by every offer (the context and a bias)."""

    block = 1

    def __init__(self, *, full: bool, exploration: float = 1.0, optimism: float = 0.0, scale: str = "logit",
                 seed: int = 2, n_offers: int = N_OFFERS, n_features: int = N_FEATURES) -> None:
        from xrm.customize import LogisticThompson

        self.policy = LogisticThompson.prior(n_offers, d=n_features + 1, slopes=(), full=full,
                                             exploration=exploration, optimism=optimism, scale=scale)
        self.rng = np.random.default_rng(seed)
        self.x = np.empty(n_features + 1)
        self.x[0] = 1.0

    def choose(self, z: np.ndarray) -> np.ndarray:
        self.x[1:] = z[0]
        return np.array([self.policy.choose(self.x, self.rng)])

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.policy.update(int(actions[0]), self.x, float(rewards[0]))


class DeciderPath:
    """The Decider's own decision path in memory: :func:`xrm.customize._decide.rank_offers` on the
    policy as the Decider loads it (``OPTIMISM``, ``EXPLORATION``, ``SCALE``), one feature row per offer, a
    share ``explore`` of decisions ranked by the policy's draw (the rest by the posterior mean),
    every decision's propensities from the draws, and the full-covariance update.  What it leaves
    out is the store: the response's row and the policy's re-read."""

    block = 1

    def __init__(self, *, explore: float = 1.0, seed: int = 2, n_offers: int = N_OFFERS,
                 n_features: int = N_FEATURES) -> None:
        from xrm.customize._bandit import EXPLORATION, OPTIMISM, SCALE, LogisticThompson

        self.policy = LogisticThompson.prior(n_offers, d=n_features + 1, slopes=(), full=True,
                                             exploration=EXPLORATION, optimism=OPTIMISM, scale=SCALE)
        self.explore = explore
        self.rng = np.random.default_rng(seed)
        self.x = np.empty(n_features + 1)
        self.x[0] = 1.0
        self.xs = np.broadcast_to(self.x, (n_offers, n_features + 1))
        self.value, self.cost = np.ones(n_offers), np.zeros(n_offers)
        self.codes = np.full(n_offers, -1, dtype=np.int64)  # no categories: k = 1 anyway
        self.propensities: list[float] = []

    def choose(self, z: np.ndarray) -> np.ndarray:
        from xrm.customize._decide import rank_offers

        self.x[1:] = z[0]
        ranking = rank_offers(self.policy, self.xs, self.value, self.cost, self.codes, k=1,
                              max_per_category=1, explore=self.explore, rng=self.rng)
        self.propensities.append(ranking.propensity[0])
        return np.array(ranking.chosen[:1])

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.policy.update(int(actions[0]), self.x, float(rewards[0]))


class MabwiserLinTS:
    """mabwiser's LinTS, deciding and refitting in blocks (one row at a time costs ~ms each)."""

    def __init__(self, block: int, alpha: float = 1.0, seed: int = 3) -> None:
        from mabwiser.mab import MAB, LearningPolicy

        self.block = block
        self.mab = MAB(list(range(N_OFFERS)), LearningPolicy.LinTS(alpha=alpha), seed=seed)
        self.fitted = False
        self.rng = np.random.default_rng(seed)

    def choose(self, z: np.ndarray) -> np.ndarray:
        if not self.fitted:
            return self.rng.integers(0, N_OFFERS, len(z))
        out = self.mab.predict(z)
        return np.atleast_1d(np.asarray(out))

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self.fitted:
            self.mab.partial_fit(actions, rewards, z)
        else:
            self.mab.fit(actions, rewards, z)
            self.fitted = True


class ContextualBanditsPolicy:
    """contextualbandits' LinUCB, in blocks.  (Its LinTS chose no better than random here, at any
    ``v_sq`` tried, so it is left out.)"""

    def __init__(self, block: int, alpha: float = 1.0, seed: int = 4) -> None:
        from contextualbandits import online

        self.block = block
        self.model = online.LinUCB(N_OFFERS, alpha=alpha, random_state=seed)
        self.fitted = False
        self.rng = np.random.default_rng(seed)

    def choose(self, z: np.ndarray) -> np.ndarray:
        if not self.fitted:
            return self.rng.integers(0, N_OFFERS, len(z))
        return np.asarray(self.model.predict(z)).astype(np.int64)

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self.fitted:
            self.model.partial_fit(z, actions, rewards)
        else:
            self.model.fit(z, actions, rewards)
            self.fitted = True


class VowpalSquareCB:
    """Vowpal Wabbit's contextual bandit (``--cb_explore_adf --squarecb``), fully online.

    Shared context features, one action-indicator feature per offer, crossed (``-q sa``) so each
    offer has its own weights over the context; cost = -reward.
    """

    block = 1

    def __init__(self, seed: int = 5) -> None:
        import vowpalwabbit

        self.vw = vowpalwabbit.Workspace(
            f"--cb_explore_adf --squarecb -q sa --quiet --random_seed {seed}"
        )
        self.rng = np.random.default_rng(seed)
        self.actions = [f"|a o{j}" for j in range(N_OFFERS)]
        self.pmf: list[float] = []

    def _lines(self, z: np.ndarray) -> list[str]:
        shared = "shared |s " + " ".join(f"f{i}:{v:.5f}" for i, v in enumerate(z))
        return [shared, *self.actions]

    def choose(self, z: np.ndarray) -> np.ndarray:
        self.lines = self._lines(z[0])
        pmf = np.asarray(self.vw.predict(self.lines), dtype=float)
        self.pmf = (pmf / pmf.sum()).tolist()
        return np.array([int(self.rng.choice(N_OFFERS, p=self.pmf))])

    def learn(self, z: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        a = int(actions[0])
        lines = list(self.lines)
        lines[1 + a] = f"0:{-float(rewards[0])}:{self.pmf[a]:.6f} {lines[1 + a]}"
        self.vw.learn(lines)


# --- the regret section ---------------------------------------------------------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _single_row_timing(policy: Policy, problem: Problem, n: int = 500) -> tuple[list[float], list[float]]:
    """Choose + learn on one row at a time, ``n`` times, on a trained policy (microseconds)."""
    choose_us, learn_us = [], []
    for t in range(n):
        z = problem.contexts[t : t + 1]
        t0 = time.perf_counter_ns()
        a = np.asarray(policy.choose(z), dtype=np.int64)
        t1 = time.perf_counter_ns()
        policy.learn(z, a, np.array([float(problem.uniforms[t, a[0]] < 0.1)]))
        t2 = time.perf_counter_ns()
        choose_us.append((t1 - t0) / 1e3)
        learn_us.append((t2 - t1) / 1e3)
    return choose_us, learn_us


# xrm's headline policy: Thompson draws (spread ``exploration``) around an upper confidence bound
# (``optimism`` posterior standard deviations, in probability scaled by the offer's Bernoulli spread),
# so every offer keeps a propensity above 0: the values in xrm.customize._bandit, which the Decider
# ranks with too.
HEADLINE_NAME = (f"**xrm LogisticThompson, full covariance, bound in {SCALE}, optimism {OPTIMISM:g}, "
                 f"exploration {EXPLORATION:g}** (online)")
LOGIT_NAME = "xrm LogisticThompson, full covariance, bound on the logit, optimism 1, exploration 0.1 " \
             "(session 7's headline; online)"


def headline() -> XrmThompson:
    return XrmThompson(full=True, exploration=EXPLORATION, optimism=OPTIMISM, scale=SCALE)


def logit_headline() -> XrmThompson:
    return XrmThompson(full=True, exploration=0.1, optimism=1.0)


PLAIN_TS_NAME = "xrm LogisticThompson, full covariance, exploration 0.25 (plain Thompson sampling; online)"
DECIDER_NAME = ("**xrm Decider path**, explore 1 (the server's default: every decision ranked by the "
                "headline policy's draw, propensities from 64 draws; online)")
SEEDS = (0, 1, 2, 3, 4, 5, 6)
TUNED = (0, 1, 2)  # the seeds optimism and exploration were picked on; the rest are held out


def _peers(block: int) -> list[tuple[str, str, Callable[[], Any], bool]]:
    """(module, row name, factory, online) of each library policy."""
    return [
        ("vowpalwabbit", "vowpalwabbit --cb_explore_adf --squarecb (online)", VowpalSquareCB, True),
        ("mabwiser", f"mabwiser LinTS, alpha 1 (default; blocks of {block})", lambda: MabwiserLinTS(block),
         False),
        ("mabwiser", f"mabwiser LinTS, alpha 0.25 (blocks of {block})",
         lambda: MabwiserLinTS(block, alpha=0.25), False),
        ("contextualbandits", f"contextualbandits LinUCB, alpha 1 (default; blocks of {block})",
         lambda: ContextualBanditsPolicy(block), False),
        ("contextualbandits", f"contextualbandits LinUCB, alpha 0.25 (blocks of {block})",
         lambda: ContextualBanditsPolicy(block, alpha=0.25), False),
    ]


def regret_side_by_side(rounds: int, *, seed: int = 0, block: int = 100) -> list[Result]:
    problem = make_problem(rounds, seed=seed)
    results = [
        simulate(problem, Oracle(problem), "oracle (knows the model)"),
        simulate(problem, Random(), "random"),
        simulate(problem, FixedBest(problem), "fixed best offer"),
        simulate(problem, headline(), HEADLINE_NAME, time_each=True),
        simulate(problem, logit_headline(), LOGIT_NAME, time_each=True),
        simulate(problem, XrmThompson(full=True, exploration=0.25), PLAIN_TS_NAME, time_each=True),
        simulate(problem, XrmThompson(full=True), "xrm LogisticThompson, full covariance, exploration 1 "
                 "(the exact posterior; online)", time_each=True),
        simulate(problem, XrmThompson(full=False), "xrm LogisticThompson, diagonal, exploration 1 "
                 "(online; the Decider's policy until session 4)", time_each=True),
        simulate(problem, DeciderPath(), DECIDER_NAME, time_each=True),
        simulate(problem, DeciderPath(explore=0.1), "xrm Decider path, explore 0.1 (a tenth of decisions "
                 "the policy's draw, the rest the posterior mean; online)", time_each=True),
    ]
    peers = _peers(block)
    for module, name, make, online in peers:
        if not _installed(module):
            missing = f"`{module}` is not installed (`pip install .[bench]`)"
            results.append(Result(name, np.zeros(0, np.int64), np.zeros(0), float("nan"), float("nan"), 0,
                                  0.0, note=missing))
            continue
        policy = make()
        res = simulate(problem, policy, name, time_each=online)
        if not online:
            # Per-decision cost: the trained model, asked about one context at a time.
            policy.block = 1
            res.per_decision_us, res.per_update_us = _single_row_timing(policy, problem)
        results.append(res)
    return results


def cpu_per_decision(problem: Problem, make: Callable[[], Policy]) -> float:
    """CPU microseconds per single-row choose + learn, averaged over the problem's rounds (CPU time:
    less at the mercy of a loaded machine than the wall-clock medians)."""
    policy = make()
    probs = problem.probabilities()
    cpu = 0.0
    for t in range(problem.rounds):
        z = problem.contexts[t : t + 1]
        t0 = time.process_time()
        a = np.asarray(policy.choose(z), dtype=np.int64)
        reward = float(problem.uniforms[t, a[0]] < probs[t, a[0]])
        policy.learn(z, a, np.array([reward]))
        cpu += time.process_time() - t0
    return cpu / problem.rounds * 1e6


def seed_spread(rounds: int, first: list[Result], peer: str | None, *,
                block: int = 100) -> dict[str, list[float]]:
    """Final regret per seed in :data:`SEEDS` (the first from ``first``, the seed-0 run) for xrm's
    headline, plain Thompson sampling and the library ``peer`` (a row name): one seed can flatter
    a policy by a third (a bandit that settles early on a wrong offer in one problem)."""
    makers: dict[str, Callable[[], Policy]] = {
        HEADLINE_NAME: headline,
        PLAIN_TS_NAME: lambda: XrmThompson(full=True, exploration=0.25),
        DECIDER_NAME: DeciderPath,
    }
    for _, name, make, _ in _peers(block):
        if name == peer:
            makers[name] = make
    out = {}
    for name, make in makers.items():
        out[name] = [next(r for r in first if r.name == name).regret[-1]]
        for seed in SEEDS[1:]:
            out[name].append(simulate(make_problem(rounds, seed=seed), make(), name).regret[-1])
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _regret_table(results: list[Result], checkpoints: list[int]) -> str:
    head = ("| policy | " + " | ".join(f"regret @{c // 1000}k" for c in checkpoints)
            + " | click rate / oracle | choose µs median / p99 | learn µs median / p99 | wall s |")
    lines = [head, "|---|" + "---:|" * (len(checkpoints) + 4)]
    for r in results:
        if r.note:
            lines.append(f"| {r.name} | " + " | ".join("—" for _ in checkpoints) + f" | {r.note} | | | |")
            continue
        regrets = " | ".join(f"{r.regret[c - 1]:,.0f}" for c in checkpoints)
        timing = (f"{statistics.median(r.per_decision_us):.0f} / {_pct(r.per_decision_us, 99):.0f} | "
                  f"{statistics.median(r.per_update_us):.0f} / {_pct(r.per_update_us, 99):.0f}"
                  if r.per_decision_us else "— | —")
        lines.append(f"| {r.name} | {regrets} | {r.expected_rate / r.oracle_rate:.1%} | {timing} | "
                     f"{r.wall_s:.1f} |")
    return "\n".join(lines)


# --- off-policy evaluation on the Open Bandit Dataset ---------------------------------------------

_OBP_WHEEL = "obp==0.4.1"
_OBD_MEMBER = "obp/dataset/obd/{policy}/all/all.csv"


def read_obd(folder: Path) -> dict[str, Any]:
    """The 'all' campaign's logs of both logging policies (uniform random and Bernoulli TS)."""
    import pandas as pd

    wheel = fetch_wheel(_OBP_WHEEL, folder)
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for policy in ("random", "bts"):
            with z.open(_OBD_MEMBER.format(policy=policy)) as f:
                out[policy] = pd.read_csv(f, index_col=0)
    return out


def _affinity_rows(frame: Any, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Per logged row, feature rows ``[1, user-item affinity]`` for every item (``n x items x 2``),
    and the logged item."""
    aff = frame[[f"user-item_affinity_{j}" for j in range(n_items)]].to_numpy(dtype=float)
    aff = (aff - aff.mean()) / (aff.std() + 1e-12)
    x = np.stack([np.ones_like(aff), aff], axis=2)
    return x, frame["item_id"].to_numpy()


def off_policy_obd(logs: dict[str, Any], *, seed: int = 0, boot: int = 2000) -> dict[str, Any]:
    """IPS, SNIPS and DR estimates, on the uniform-random log, of the greedy policy of an xrm
    LogisticThompson fitted on the other half of that log (two folds, cross-fitted)."""
    from xrm.customize import LogisticThompson, doubly_robust, ips, snips

    frame = logs["random"].sort_values("timestamp", kind="stable").reset_index(drop=True)
    n_items = int(frame["item_id"].max()) + 1
    x, logged = _affinity_rows(frame, n_items)
    clicks, pi0 = frame["click"].to_numpy(dtype=float), frame["propensity_score"].to_numpy(dtype=float)
    half = len(frame) // 2
    folds = [(np.arange(half), np.arange(half, len(frame))), (np.arange(half, len(frame)), np.arange(half))]
    parts: list[np.ndarray] = []  # per fold: rows of (reward, pi_e, pi_0, q(logged), q(chosen))
    base_rate = float(clicks.mean())
    for train, test in folds:
        policy = LogisticThompson.prior(n_items, [max(base_rate, 1e-3)] * n_items, d=2, slopes=(0.0,),
                                        full=True)
        for i in train:
            policy.update(int(logged[i]), x[i, logged[i]], clicks[i])
        q = np.stack([policy.mean_probability(x[i]) for i in test])  # test rows x items
        choice, t = q.argmax(axis=1), np.arange(len(test))
        pi_e = (choice == logged[test]).astype(float)
        parts.append(np.c_[clicks[test], pi_e, pi0[test], q[t, logged[test]], q[t, choice]])
    table = np.concatenate(parts)
    estimators: dict[str, Callable[[np.ndarray], float]] = {
        "ips": lambda m: ips(m[:, 0], m[:, 1], m[:, 2]),
        "snips": lambda m: snips(m[:, 0], m[:, 1], m[:, 2]),
        "dr": lambda m: doubly_robust(m[:, 0], m[:, 1], m[:, 2], m[:, 3], m[:, 4]),
        "logged": lambda m: float(m[:, 0].mean()),
    }
    rng = np.random.default_rng(seed)
    resamples = [table[rng.integers(0, len(table), len(table))] for _ in range(boot)]
    est = {}
    for name, fn in estimators.items():
        lo, hi = np.percentile([fn(m) for m in resamples], [2.5, 97.5])
        est[name] = (fn(table), (float(lo), float(hi)))
    return {
        "rows": len(frame), "items": n_items, "clicks": int(clicks.sum()), "matched": int(table[:, 1].sum()),
        "logged_random": est["logged"], "ips": est["ips"], "snips": est["snips"], "dr": est["dr"],
        "logged_bts": (float(logs["bts"]["click"].mean()), len(logs["bts"])),
    }


def _obd_lines(res: dict[str, Any]) -> list[str]:
    def fmt(v: tuple[float, tuple[float, float]]) -> str:
        return f"{v[0]:.4f} | {v[1][0]:.4f}–{v[1][1]:.4f}"

    bts_rate, bts_rows = res["logged_bts"]
    return [
        f"Open Bandit Dataset sample (`{_OBP_WHEEL}` wheel, fetched at run time; ZOZOTOWN, CC BY 4.0), "
        f"campaign 'all', uniform-random logging policy: {res['rows']:,} impressions, {res['items']} items, "
        f"{res['clicks']} clicks. Evaluated policy: greedy on an xrm `LogisticThompson` (full covariance; "
        "features: bias and the logged user-item affinity), fitted on one chronological half of the log "
        "and evaluated on the other, both ways (cross-fitted); the DR reward model is that same fitted "
        f"model. Only {res['matched']} impressions match the evaluated policy's choice, so the "
        "intervals (bootstrap, 2,000 resamples, 95%) are wide.",
        "",
        "| policy value (click rate) | estimate | 95% interval |",
        "|---|---:|---:|",
        f"| logged uniform-random policy, observed | {fmt(res['logged_random'])} |",
        f"| xrm greedy policy, IPS | {fmt(res['ips'])} |",
        f"| xrm greedy policy, SNIPS | {fmt(res['snips'])} |",
        f"| xrm greedy policy, doubly robust | {fmt(res['dr'])} |",
        f"| ZOZOTOWN's Bernoulli TS policy, observed on its own log ({bts_rows:,} impressions) | "
        f"{bts_rate:.4f} | — |",
    ]


def run(quick: bool) -> Section:
    rounds = 20_000 if quick else 100_000
    checkpoints = [c for c in (10_000, 50_000, 100_000) if c <= rounds] or [rounds]
    results = regret_side_by_side(rounds)
    oracle = results[0]
    ours = next(r for r in results if r.name == HEADLINE_NAME)
    libraries = ("mabwiser", "contextualbandits", "vowpalwabbit")
    peers = [r for r in results if r.note == "" and any(k in r.name for k in libraries)]
    best = min(peers, key=lambda r: r.regret[-1]) if peers else None
    both_us = statistics.median(np.add(ours.per_decision_us, ours.per_update_us).tolist())
    cpu_us = cpu_per_decision(make_problem(20_000, seed=0), headline)
    spread = seed_spread(rounds, results, best.name if best else None)
    spread_lines = ["| policy | " + " | ".join(f"regret @{rounds // 1000}k, seed {s}"
                                              + ("" if s in TUNED else " (held out)") for s in SEEDS)
                    + " | mean |", "|---|" + "---:|" * (len(SEEDS) + 1)]
    spread_lines += [f"| {name} | " + " | ".join(f"{v:,.0f}" for v in vals) + f" | {np.mean(vals):,.0f} |"
                     for name, vals in spread.items()]
    timing = (f"xrm's median choose + learn is {both_us:.0f} µs wall "
              f"({'under' if both_us < 100 else '**over**'} 100 µs on this machine at its load), "
              f"{cpu_us:.0f} µs of CPU (mean of 20,000 decisions)")
    if best is not None:
        ours_mean, best_mean = float(np.mean(spread[HEADLINE_NAME])), float(np.mean(spread[best.name]))
        gap = ours_mean / best_mean - 1
        held = [i for i, seed in enumerate(SEEDS) if seed not in TUNED]
        ours_held = float(np.mean([spread[HEADLINE_NAME][i] for i in held]))
        best_held = float(np.mean([spread[best.name][i] for i in held]))
        held_gap = ours_held / best_held - 1

        def met(g: float) -> str:
            return f"met ({g:+.0%})" if g <= 0.05 else f"**not met**, {g:+.0%}"

        verdict = (
            f"Target (the best library's regret at under 100 µs per decision): xrm's mean regret at "
            f"{rounds // 1000}k over seeds {SEEDS[0]}-{SEEDS[-1]} is {ours_mean:,.0f} against "
            f"{best_mean:,.0f} for the best library on seed 0 ({best.name}), "
            f"{met(gap)}; on the seeds held out "
            f"from tuning alone ({', '.join(str(SEEDS[i]) for i in held)}) {ours_held:,.0f} against "
            f"{best_held:,.0f}, {met(held_gap)}; {timing}."
        )
    else:
        verdict = f"No peer library installed: no target comparison; {timing}."
    path = next(r for r in results if r.name == DECIDER_NAME)
    path_us = statistics.median(np.add(path.per_decision_us, path.per_update_us).tolist())
    path_cpu = cpu_per_decision(make_problem(20_000, seed=0), DeciderPath)
    verdict += (
        f" The server's Decider on its own path (`rank_offers` on the headline policy, expected value, "
        f"propensities from 64 draws, the same update): mean regret {np.mean(spread[DECIDER_NAME]):,.0f} "
        f"over seeds {SEEDS[0]}-{SEEDS[-1]} ({path.regret[-1]:,.0f} on seed 0), median choose + learn "
        f"{path_us:.0f} µs wall, {path_cpu:.0f} µs of CPU "
        f"({'under' if path_us < 100 else '**over**'} 100 µs; the store's writes per response not counted)."
    )
    body = [
        f"Simulation: {N_OFFERS} offers, {N_FEATURES} context features z ~ N(0, I), "
        "P(response | z, a) = sigmoid(b_a + theta_a · z) with b_a ~ N(-2.5, 0.5²), theta_a ~ N(0, 0.25²) "
        f"(seed 0); {rounds:,} decisions, the same contexts and response draws for every policy. "
        f"Oracle click rate {oracle.oracle_rate:.3f}. Regret = cumulative expected regret "
        "(sum over rounds of the best offer's P(response) minus the chosen one's). One run each.",
        "",
        _regret_table(results, checkpoints),
        "",
        "Final regret over seeds (each seed its own offers, contexts and response draws):",
        "",
        *spread_lines,
        "",
        "Times are per single decision (one context) in this Python process: for the online "
        "policies measured in every round of the run; for the block policies on 500 single-row "
        "calls after the run. Choose = pick an offer, learn = fold one response in. xrm's optimism and "
        f"exploration were picked on seeds {', '.join(map(str, TUNED))} of this simulation among a few "
        "values (session 8, the bound in probability: 0.15-0.4 and 0.03-0.1, 8-20 runs of each seed), "
        "as the libraries' alpha 0.25 was on seed 0: tuned here, as "
        "theirs is. The p99 figures "
        "mostly measure the machine's load (other processes preempting this one), not the policies.",
        "",
        verdict,
        "",
        f"Machine: {machine_line()}.",
        "",
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            logs = read_obd(Path(tmp))
        body += _obd_lines(off_policy_obd(logs))
    except (OSError, subprocess.SubprocessError) as exc:
        body.append(f"Off-policy section not run: fetching `{_OBP_WHEEL}` failed ({exc}).")
    return Section("Learning (bandit regret, off-policy)", "\n".join(body))
