"""The compiled many-runs driver of the bandit bench: seeded, and its two scales differ."""

from __future__ import annotations

import numpy as np

from bench import _bandit_runs


def test_runs_are_seeded_and_the_scale_matters():
    kw = {"optimism": 0.2, "exploration": 0.03, "rounds": 3000}
    once = _bandit_runs.runs([0], [1, 2], scale="probability", **kw)
    np.testing.assert_array_equal(once, _bandit_runs.runs([0], [1, 2], scale="probability", **kw))
    assert once.shape == (1, 2, 3) and (once[..., -1] > 0).all() and once[0, 0, -1] != once[0, 1, -1]
    assert not np.array_equal(once, _bandit_runs.runs([0], [1, 2], scale="logit", **kw))
