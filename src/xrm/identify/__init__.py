"""Identify: normalised identifiers, the identity graph and profiles with stable ids.

See docs/identify.md for the rules and settings.

    >>> from xrm.identify import resolve_identities
    >>> resolve_identities(store)  # doctest: +SKIP
"""

from xrm.identify._address import NormalizedAddress, normalize_address
from xrm.identify._dates import parse_birth_date
from xrm.identify._email import normalize_email
from xrm.identify._evaluate import load_sample_records, score_clusters, score_profiles
from xrm.identify._explain import (
    LinkStep,
    ProfileExplanation,
    explain_profile,
    lookup_profiles,
    unmerge_profile,
)
from xrm.identify._export import export_records
from xrm.identify._golden import GoldenRules, build_golden_records, golden_record
from xrm.identify._identifiers import normalize_identifier
from xrm.identify._linkage import link_records, train_linkage_parameters
from xrm.identify._linkage_settings import LinkageSettings
from xrm.identify._names import NormalizedName, normalize_name
from xrm.identify._online import resolve_event
from xrm.identify._phone import normalize_phone
from xrm.identify._records import normalize_records
from xrm.identify._resolve import resolve_graph, resolve_identities
from xrm.identify._review import accept_review, decide_review, reject_review, review_items
from xrm.identify._rules import IdentifierRule, IdentityRules
from xrm.identify._text import fold

__all__ = [
    "GoldenRules",
    "IdentifierRule",
    "IdentityRules",
    "LinkStep",
    "LinkageSettings",
    "NormalizedAddress",
    "NormalizedName",
    "ProfileExplanation",
    "accept_review",
    "build_golden_records",
    "decide_review",
    "explain_profile",
    "export_records",
    "fold",
    "golden_record",
    "link_records",
    "load_sample_records",
    "lookup_profiles",
    "normalize_address",
    "normalize_email",
    "normalize_identifier",
    "normalize_name",
    "normalize_phone",
    "normalize_records",
    "parse_birth_date",
    "reject_review",
    "resolve_event",
    "resolve_graph",
    "resolve_identities",
    "review_items",
    "score_clusters",
    "score_profiles",
    "train_linkage_parameters",
    "unmerge_profile",
]
