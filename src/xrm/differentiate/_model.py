"""What every value model shares: its own defaults, a fitted state, and a versioned saved form.

A model saves its whole configuration and fit (``to_dict``/``save``) with a format version;
loading refuses another model's file or a format this xrm does not read, with a clear message.

    >>> m = BetaGeoNBD.load("bgnbd.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from xrm.differentiate._mle import MLEResult, Objective, fit_positive
from xrm.exceptions import ModelError

__all__ = ["FORMAT_VERSION", "ValueModel"]

FORMAT_VERSION = 1


class ValueModel:
    """Base of the value models; subclasses set ``kind``, ``param_names`` and ``defaults``."""

    kind: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **config: Any) -> None:
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise ModelError(
                f"{self.kind}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.defaults) or 'none'}"
            )
        self.config: dict[str, Any] = {**self.defaults, **config}
        self.params_: dict[str, float] | None = None
        self.se_: dict[str, float | None] = {}
        self.cov_: list[list[float]] | None = None
        self.log_likelihood_: float | None = None
        self.n_obs_: int = 0
        self.converged_: bool = False
        self.iterations_: int = 0

    # -- fitted state ------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return self.params_ is not None

    def _params(self) -> tuple[float, ...]:
        if self.params_ is None:
            raise ModelError(f"{self.kind}: the model is not fitted; call fit(summary) or load(path)")
        return tuple(self.params_[n] for n in self.param_names)

    def _fit_per_customer(self, objective: Objective, n: float) -> Self:
        """Fit ``objective`` (the negative log-likelihood divided by ``n`` customers, which keeps
        the optimiser's scale sane) from the configured start; store the unscaled result."""
        res = fit_positive(
            objective, np.array(self.config["start"], dtype=np.float64),
            names=self.param_names, model=self.kind,
            max_iter=int(self.config["max_iter"]), tol=float(self.config["tol"]),
        )
        res.log_likelihood *= n
        if res.cov is not None:
            res.cov = res.cov / n
        self._set_fit(res, int(n))
        return self

    def _set_fit(self, res: MLEResult, n_obs: int) -> None:
        self.params_ = {n: float(v) for n, v in zip(self.param_names, res.params, strict=True)}
        if res.cov is not None:
            diag = np.diag(res.cov)
            self.se_ = {
                n: (float(math.sqrt(v)) if v > 0 else None)
                for n, v in zip(self.param_names, diag, strict=True)
            }
            self.cov_ = [[float(c) for c in row] for row in res.cov]
        else:
            self.se_ = dict.fromkeys(self.param_names)
            self.cov_ = None
        self.log_likelihood_ = res.log_likelihood
        self.n_obs_ = n_obs
        self.converged_ = res.converged
        self.iterations_ = res.iterations

    def set_params(self, **params: float) -> Self:
        """Use known parameters (e.g. published ones) without fitting: ``m.set_params(r=0.243, ...)``."""
        missing = [n for n in self.param_names if n not in params]
        extra = sorted(set(params) - set(self.param_names))
        if missing or extra:
            raise ModelError(
                f"{self.kind}: parameters are {', '.join(self.param_names)}; "
                f"missing {missing or 'none'}, unknown {extra or 'none'}"
            )
        bad = {n: v for n, v in params.items() if not (math.isfinite(v) and v > 0)}
        if bad:
            raise ModelError(f"{self.kind}: parameters must be finite and > 0, got {bad}")
        self.params_ = {n: float(params[n]) for n in self.param_names}
        return self

    def summary(self) -> dict[str, Any]:
        """Parameters, standard errors, log-likelihood and fit statistics (what ``--json`` prints)."""
        self._params()
        k = len(self.param_names)
        ll = self.log_likelihood_
        out: dict[str, Any] = {
            "model": self.kind,
            "params": dict(self.params_ or {}),
            "se": dict(self.se_),
            "log_likelihood": ll,
            "n": self.n_obs_,
            "converged": self.converged_,
            "iterations": self.iterations_,
        }
        if ll is not None and self.n_obs_:
            out["aic"] = 2 * k - 2 * ll
            out["bic"] = k * math.log(self.n_obs_) - 2 * ll
        return out

    # -- saving ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        from xrm import __version__

        return {
            "model": self.kind,
            "format_version": FORMAT_VERSION,
            "xrm_version": __version__,
            "config": dict(self.config),
            "fit": None
            if self.params_ is None
            else {
                "params": dict(self.params_),
                "se": dict(self.se_),
                "cov": self.cov_,
                "log_likelihood": self.log_likelihood_,
                "n_obs": self.n_obs_,
                "converged": self.converged_,
                "iterations": self.iterations_,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        kind = data.get("model")
        if kind != cls.kind:
            raise ModelError(f"this is a saved {kind!r} model, not {cls.kind!r}; load it with its own class")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"{cls.kind}: saved with model format v{version} by xrm {data.get('xrm_version')}; "
                f"this xrm reads format v{FORMAT_VERSION}. Refit the model with this xrm, "
                f"or use the xrm version that saved it"
            )
        model = cls(**data.get("config", {}))
        fit = data.get("fit")
        if fit:
            try:
                model.params_ = {n: float(fit["params"][n]) for n in cls.param_names}
            except KeyError as exc:
                raise ModelError(f"{cls.kind}: the saved fit lacks parameter {exc}; refit") from None
            model.se_ = {n: fit.get("se", {}).get(n) for n in cls.param_names}
            model.cov_ = fit.get("cov")
            model.log_likelihood_ = fit.get("log_likelihood")
            model.n_obs_ = int(fit.get("n_obs", 0))
            model.converged_ = bool(fit.get("converged", False))
            model.iterations_ = int(fit.get("iterations", 0))
        return model

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"no saved model at {path}") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path} is not a saved model (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{path} is not a saved model (expected a JSON object)")
        return cls.from_dict(data)

    def __repr__(self) -> str:
        if self.params_ is None:
            return f"{type(self).__name__}(not fitted)"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({shown})"
