"""The network's vocabulary: party kinds, roles and relationship types, and which way credit flows.

>>> from xrm.network._types import REL_TYPES, credit_flows_to_dst
>>> credit_flows_to_dst("mentions"), credit_flows_to_dst("referred")
(True, False)
"""

from __future__ import annotations

__all__ = [
    "CONVERSATION_TYPES",
    "PARTY_KINDS",
    "REL_TYPES",
    "ROLES",
    "SYMMETRIC_TYPES",
    "credit_flows_to_dst",
]

PARTY_KINDS = ("person", "organisation")
ROLES = ("customer", "prospect", "partner", "supplier", "employee", "influencer", "media")
REL_TYPES = (
    "referred",
    "household",
    "works-for",
    "colleague",
    "follows",
    "replied-to",
    "mentions",
    "supplies",
    "partner-of",
    "co-purchased",
)
# Stored once with src < dst and read in both directions.
SYMMETRIC_TYPES = frozenset({"household", "colleague", "partner-of", "co-purchased"})
CONVERSATION_TYPES = frozenset({"replied-to", "mentions", "follows"})
# 'A referred B': the credit (influence, B's value) goes to A, against the edge.  Every other
# directed type reads 'A endorses/serves B' (A follows B, A replied to B): credit goes to B.
_CREDIT_TO_SRC = frozenset({"referred", "supplies"})


def credit_flows_to_dst(rel_type: str) -> bool:
    """Whether PageRank and attributed value flow along the edge (src -> dst) for this type."""
    return rel_type not in _CREDIT_TO_SRC
