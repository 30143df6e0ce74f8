"""Off-policy evaluation: what a new policy would have earned, from decisions logged with propensities.

    >>> ips(rewards, target_probs, logging_probs)     # doctest: +SKIP

``logging_probs[i]`` is the probability the logging policy gave to the action it took in round
``i`` (the ``propensity`` xrm logs with every decision), ``target_probs[i]`` the probability the
evaluated policy gives to that same action in the same context.
"""

from __future__ import annotations

import numpy as np

from xrm.exceptions import InputError

__all__ = ["doubly_robust", "ips", "snips"]


def _weights(target_probs: np.ndarray, logging_probs: np.ndarray) -> np.ndarray:
    target = np.asarray(target_probs, dtype=float)
    logging = np.asarray(logging_probs, dtype=float)
    if target.shape != logging.shape:
        raise InputError(f"target_probs {target.shape} and logging_probs {logging.shape} differ in shape")
    if (logging <= 0).any() or (logging > 1).any():
        bad = logging[(logging <= 0) | (logging > 1)][0]
        raise InputError(
            f"a logged propensity is {bad}; propensities must be in (0, 1] (log them with every "
            f"decision: a policy that explores never gives an action probability 0)"
        )
    return target / logging


def ips(rewards: np.ndarray, target_probs: np.ndarray, logging_probs: np.ndarray) -> float:
    """Inverse propensity scoring: mean of r * pi_e / pi_0 (Horvitz & Thompson 1952, eq. 1)."""
    w = _weights(target_probs, logging_probs)
    return float(np.mean(np.asarray(rewards, dtype=float) * w))


def snips(rewards: np.ndarray, target_probs: np.ndarray, logging_probs: np.ndarray) -> float:
    """Self-normalised IPS: sum(r w) / sum(w) (Swaminathan & Joachims 2015, NIPS, eq. 3)."""
    w = _weights(target_probs, logging_probs)
    total = w.sum()
    return float((np.asarray(rewards, dtype=float) * w).sum() / total) if total > 0 else 0.0


def doubly_robust(
    rewards: np.ndarray, target_probs: np.ndarray, logging_probs: np.ndarray,
    q_logged: np.ndarray, q_target: np.ndarray,
) -> float:
    """Doubly robust: mean of E_pi_e[q(x, .)] + w (r - q(x, a)) (Dudík, Langford & Li 2011, eq. 2).

    ``q_logged[i]`` is a reward model's prediction for the logged action, ``q_target[i]`` its
    expectation under the evaluated policy in context ``i``.
    """
    w = _weights(target_probs, logging_probs)
    r = np.asarray(rewards, dtype=float)
    return float(np.mean(np.asarray(q_target) + w * (r - np.asarray(q_logged))))
