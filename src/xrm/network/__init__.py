"""Network: parties and typed relationships, graph analytics, conversations, Return on Network.

Relationships are loaded from files and derived from events, records, orders and posts; metrics
(PageRank, eigenvector, k-core, Leiden communities, betweenness, reach) and network values are
written to ``network_traits``.  See docs/network.md.

    >>> from xrm.network import build_network
    >>> build_network(store)  # doctest: +SKIP
"""

from xrm.network._analyse import analyse_network
from xrm.network._conversations import conversation_report, key_phrases
from xrm.network._derive import IDENTITY_MODES, derive_handles, derive_relationships
from xrm.network._economics import RelationshipEconomics
from xrm.network._evaluate import score_relationships
from xrm.network._files import LoadReport
from xrm.network._graph import PartyGraph, graph_from_edges, load_graph
from xrm.network._load import load_handles, load_parties, load_relationships
from xrm.network._metrics import network_metrics
from xrm.network._posts import load_posts
from xrm.network._query import communities_summary, neighbourhood, party_network, top_influencers
from xrm.network._report import build_network, ron_html, ron_markdown
from xrm.network._sentiment import detect_language, sentiment
from xrm.network._types import PARTY_KINDS, REL_TYPES, ROLES, SYMMETRIC_TYPES
from xrm.network._value import return_on_network

__all__ = [
    "IDENTITY_MODES",
    "PARTY_KINDS",
    "REL_TYPES",
    "ROLES",
    "SYMMETRIC_TYPES",
    "LoadReport",
    "PartyGraph",
    "RelationshipEconomics",
    "analyse_network",
    "build_network",
    "communities_summary",
    "conversation_report",
    "derive_handles",
    "derive_relationships",
    "detect_language",
    "graph_from_edges",
    "key_phrases",
    "load_graph",
    "load_handles",
    "load_parties",
    "load_posts",
    "load_relationships",
    "neighbourhood",
    "network_metrics",
    "party_network",
    "return_on_network",
    "ron_html",
    "ron_markdown",
    "score_relationships",
    "sentiment",
    "top_influencers",
]
