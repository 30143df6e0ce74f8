"""Share of wallet: each customer's spend with us against an estimate of their category spend.

    >>> wallet, source = estimate_wallet(spend, groups, quantile=0.9)  # doctest: +SKIP

Without survey data nobody knows a customer's true wallet.  xrm estimates the *realistic*
wallet of Perlich, Rosset, Lawrence & Zadrozny (2007), "High-quantile modeling for customer
wallet estimation and other applications" (KDD '07, §2): the spend a customer could reach,
taken as a high quantile (default 0.9) of what look-alike customers spend with us.  Look-alikes
are the customers of the same needs segment (all customers when there are no segments).  A
customer who already spends more than that has a wallet equal to their spend (share 1).  The
estimate therefore measures spend against our best comparable customers, not against the
market; where the category spend per segment is known (market research, a wallet survey) it is
passed in ``configured`` and used instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_LOOKALIKES", "estimate_wallet"]

Array = npt.NDArray[np.float64]
MIN_LOOKALIKES = 20  # fewer buying look-alikes give no stable quantile: fall back to everyone


def estimate_wallet(
    spend: Array,
    groups: npt.NDArray[np.object_],
    *,
    quantile: float = 0.9,
    configured: Mapping[str, float] | None = None,
) -> tuple[Array, npt.NDArray[np.object_]]:
    """Each customer's wallet for the window of ``spend`` and where it came from.

    ``groups`` labels each customer's look-alike group (the needs segment).  ``configured`` maps a
    group (or ``"*"``) to a known category spend per customer.  Returns the wallets (never below
    the customer's own spend, never NaN) and, per customer, ``"configured"`` or
    ``"lookalike-quantile"``.
    """
    spend = np.maximum(np.asarray(spend, dtype=np.float64), 0.0)
    groups = np.asarray(groups, dtype=object)
    configured = dict(configured or {})
    buyers = spend[spend > 0]
    overall = float(np.quantile(buyers, quantile)) if len(buyers) else 0.0
    base = np.full(len(spend), overall)
    source = np.full(len(spend), "lookalike-quantile", dtype=object)
    for g in np.unique(groups):
        member = groups == g
        known = configured.get(str(g), configured.get("*"))
        if known is not None:
            base[member] = float(known)
            source[member] = "configured"
            continue
        own = spend[member & (spend > 0)]
        if len(own) >= MIN_LOOKALIKES:
            base[member] = float(np.quantile(own, quantile))
    return np.maximum(base, spend), source
