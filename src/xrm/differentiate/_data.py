"""Checking per-customer summaries before a model sees them: every problem in one report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from xrm.exceptions import ModelError

__all__ = ["Arrays", "columns", "rfm_arrays"]

Arrays = dict[str, npt.NDArray[np.float64]]


def columns(data: Any, names: tuple[str, ...], *, model: str) -> Arrays:
    """Float arrays for ``names`` from a DataFrame, a mapping of arrays or an Ibis/pyarrow table."""
    if hasattr(data, "to_pandas") and not isinstance(data, Mapping):
        data = data.to_pandas()
    have = list(data.columns) if hasattr(data, "columns") else list(data)
    missing = [n for n in names if n not in have]
    if missing:
        raise ModelError(
            f"{model}: the data has no column(s) {', '.join(missing)} "
            f"(existing: {', '.join(map(str, have)) or 'none'}); pass a purchase summary "
            f"(xrm.differentiate.purchase_summary) or a mapping with {', '.join(names)}"
        )
    out: Arrays = {}
    for n in names:
        try:
            out[n] = np.asarray(data[n], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{model}: column {n!r} is not numeric ({exc})") from None
    sizes = {len(v) for v in out.values()}
    if len(sizes) > 1:
        raise ModelError(f"{model}: columns {', '.join(names)} differ in length ({sorted(sizes)})")
    return out


def _problem(mask: Any, rule: str, values: npt.NDArray[Any]) -> str | None:
    n = int(mask.sum())
    if not n:
        return None
    first = int(np.flatnonzero(mask)[0])
    return f"{n} customer(s) {rule} (first at row {first}: {values[first]!r})"


def rfm_arrays(data: Any, *, model: str, allow_empty: bool = False) -> Arrays:
    """``frequency``, ``recency``, ``T`` checked against the rules of the buy-till-you-die models."""
    a = columns(data, ("frequency", "recency", "T"), model=model)
    x, t_x, T = a["frequency"], a["recency"], a["T"]
    if not len(x) and not allow_empty:
        raise ModelError(f"{model}: there are no customers to fit; load `Order Completed` events first")
    finite = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)
    rep = x > 0
    masks = [  # mask, rule, what the message shows of the first offending row (None: all three)
        (~finite, "have a missing or infinite value", None),
        ((x < 0) | (x != np.floor(x)), "have a frequency that is not a whole number >= 0", x),
        (t_x < 0, "have a negative recency", t_x),
        (t_x > T * (1 + 1e-9) + 1e-12, "have recency > T (last purchase after the end)", None),
        (~rep & (t_x != 0), "have no repeat purchase but a recency other than 0", None),
        (rep & (t_x == 0), "have repeat purchases but recency 0", None),
    ]
    if any(mask.any() for mask, _, _ in masks):  # the rows for the message only when there is one
        rows = np.stack([x, t_x, T], axis=1) if len(x) else np.empty((0, 3))
        problems = [
            p for mask, rule, shown in masks
            if (p := _problem(mask, rule, rows if shown is None else shown))
        ]
        raise ModelError(
            f"{model}: the purchase summary breaks the model's rules:\n  - "
            + "\n  - ".join(problems)
            + "\nRecompute it with xrm.differentiate.purchase_summary, or drop those rows."
        )
    return {"frequency": x, "recency": np.minimum(t_x, T), "T": T}
