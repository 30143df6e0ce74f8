"""Maximum likelihood for positive parameters: optimise on the log scale, standard errors from the
Hessian of the negative log-likelihood on the natural scale (the observed information matrix)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from xrm.exceptions import ModelError

__all__ = ["MLEResult", "fit_positive", "hessian"]

Vector = npt.NDArray[np.float64]
# The objective returns the total negative log-likelihood and, optionally, its gradient in the
# natural parameters (None: finite differences are used).
Objective = Callable[[Vector], tuple[float, Vector | None]]

_BOUND = 1e8  # parameters beyond [1/_BOUND, _BOUND] mean the likelihood has no interior maximum


@dataclass
class MLEResult:
    params: Vector
    log_likelihood: float
    cov: Vector | None  # inverse Hessian of the total negative log-likelihood
    converged: bool
    iterations: int
    message: str


def _numeric_grad(f: Callable[[Vector], float], p: Vector) -> Vector:
    g = np.empty_like(p)
    for i in range(len(p)):
        h = 1e-6 * max(abs(p[i]), 1e-3)
        up, dn = p.copy(), p.copy()
        up[i] += h
        dn[i] -= h
        g[i] = (f(up) - f(dn)) / (2 * h)
    return g


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Found once: looking up the loaded BLAS libraries costs ~0.15 s, which each fit paid."""
    return ThreadpoolController()


def hessian(objective: Objective, p: Vector) -> Vector:
    """Central differences of the gradient (analytic when the objective gives one)."""

    def grad(q: Vector) -> Vector:
        _, g = objective(q)
        return g if g is not None else _numeric_grad(lambda z: objective(z)[0], q)

    n = len(p)
    h_mat = np.empty((n, n))
    for j in range(n):
        h = 1e-4 * max(abs(p[j]), 1e-3)
        up, dn = p.copy(), p.copy()
        up[j] += h
        dn[j] -= h
        h_mat[:, j] = (grad(up) - grad(dn)) / (2 * h)
    return 0.5 * (h_mat + h_mat.T)


def fit_positive(
    objective: Objective,
    start: Vector,
    *,
    names: tuple[str, ...],
    model: str,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> MLEResult:
    """Minimise ``objective`` over positive parameters starting at ``start``."""

    def on_log(theta: Vector) -> tuple[float, Vector]:
        p = np.exp(theta)
        value, g = objective(p)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        if g is None:
            g = _numeric_grad(lambda z: objective(z)[0], p)
        return value, g * p  # chain rule: d/dlog p = p d/dp

    theta0 = np.log(np.asarray(start, dtype=np.float64))
    value0, _ = on_log(theta0)
    if not np.isfinite(value0) or value0 >= 1e300:
        raise ModelError(f"{model}: the log-likelihood is not finite at the starting values {start}")
    # L-BFGS-B's own vector steps call BLAS on vectors of length 3 or 4: one BLAS thread, since
    # waking OpenBLAS's pool for each costs milliseconds (tens on a loaded machine), per iteration.
    # scipy.optimize costs ~0.3 s to import; imported here so that scoring alone never pays it.
    from scipy.optimize import minimize

    with _blas_controller().limit(limits=1, user_api="blas"):
        res = minimize(
            on_log, theta0, jac=True, method="L-BFGS-B",
            bounds=[(-np.log(_BOUND), np.log(_BOUND))] * len(theta0),
            options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-8},
        )
    params = np.exp(res.x)
    at_bound = [n for n, v in zip(names, params, strict=True) if v >= _BOUND / 10 or v <= 10 / _BOUND]
    if at_bound:
        raise ModelError(
            f"{model}: the likelihood has no interior maximum for these data "
            f"({', '.join(at_bound)} ran off to {params.round(6).tolist()}); the data are too few "
            f"or too uniform for this model: fit on more customers, or set a penalizer"
        )
    value, _ = objective(params)
    cov: Vector | None = None
    h_mat = hessian(objective, params)
    if np.all(np.isfinite(h_mat)):
        try:
            np.linalg.cholesky(h_mat)
            cov = np.asarray(np.linalg.inv(h_mat), dtype=np.float64)
        except np.linalg.LinAlgError:
            cov = None
    if cov is None:
        # A maximum where the likelihood is flat in some direction: the data do not pin the
        # parameters down, and predictions from them would be arbitrary.
        raise ModelError(
            f"{model}: the likelihood is flat at its maximum "
            f"({dict(zip(names, params.round(6).tolist(), strict=True))}), "
            f"so these data are too few to identify the parameters; fit on more customers, "
            f"or set a penalizer"
        )
    return MLEResult(
        params=params,
        log_likelihood=-float(value),
        cov=cov,
        converged=bool(res.success),
        iterations=int(res.nit),
        message=str(res.message),
    )
