"""The one place that decides whether a message may leave: consent and suppression at send time.

Every path to a customer (the outbox worker, campaign runs, previews that would send) asks
:func:`permission` here; nothing else in xrm talks to a transport.

    >>> verdicts = permission(cur, [Candidate("m1", "u1", "email", "marketing", "a@b.de")], now)
    ... # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from xrm.interact._consent import sync_consents, valid_customers
from xrm.interact._suppression import hash_identifier, salt, suppressed_hashes

__all__ = ["Candidate", "permission"]

# Which suppression kind an address on each channel is.
_ADDRESS_KIND = {"email": "email", "sms": "phone", "phone": "phone"}


@dataclass(frozen=True)
class Candidate:
    key: str  # message id, or customer for a decision
    customer: str
    channel: str
    purpose: str
    address: str | None
    customer_key: str = "user_id"  # or "profile_id": consent of all the profile's user ids


def permission(
    cur: duckdb.DuckDBPyConnection,
    candidates: Sequence[Candidate],
    at: datetime,
    *,
    region: str = "DE",
    sync: bool = True,
) -> dict[str, str]:
    """``key -> 'ok' | 'no_consent' | 'suppressed' | 'no_address'`` for each candidate at ``at``.

    New `Consent Updated` events are imported first, so a revocation that has just arrived
    stops a message queued before it.
    """
    if sync:
        sync_consents(cur)
    by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for c in candidates:
        by_key[(c.channel, c.purpose, c.customer_key)].append(c.customer)
    valid = {
        key: valid_customers(cur, customers, key[0], key[1], at, customer_key=key[2])
        for key, customers in by_key.items()
    }
    s = salt(cur)
    hashes: dict[str, list[str]] = {}
    for c in candidates:
        hs = [hash_identifier(s, "customer", c.customer, region=region)]
        kind = _ADDRESS_KIND.get(c.channel)
        if kind and c.address:
            hs.append(hash_identifier(s, kind, c.address, region=region))
        hashes[c.key] = hs
    blocked = suppressed_hashes(cur, [h for hs in hashes.values() for h in hs])
    out = {}
    for c in candidates:
        if any(h in blocked for h in hashes[c.key]):
            out[c.key] = "suppressed"
        elif c.customer not in valid[(c.channel, c.purpose, c.customer_key)]:
            out[c.key] = "no_consent"
        elif not c.address:
            out[c.key] = "no_address"
        else:
            out[c.key] = "ok"
    return out
