"""Interact: consent, GDPR, contact policy, campaigns and triggers, templates, the outbox,
channels (SMTP, signed webhooks, letters, call lists) and response tracking.

    >>> from xrm.interact import record_consent, run_campaigns, deliver_outbox
"""

from xrm.interact._campaigns import (
    Campaign,
    CampaignRun,
    Offer,
    campaign_from_dict,
    preview,
    run_campaigns,
)
from xrm.interact._channels import (
    DEFAULT_COSTS,
    CallListTransport,
    Channel,
    FakeTransport,
    LetterFileTransport,
    Outbound,
    SendResult,
    SmtpTransport,
    Transport,
    WebhookTransport,
    default_channels,
    sign_webhook,
    verify_webhook,
)
from xrm.interact._consent import (
    CHANNELS,
    PURPOSES,
    Consent,
    consent_eligibility,
    consent_history,
    current_consents,
    has_consent,
    record_consent,
    sync_consents,
)
from xrm.interact._contacts import Contact, load_contacts
from xrm.interact._demo import demo_campaigns, run_demo_campaigns
from xrm.interact._gdpr import apply_suppressions, erase_profile, export_profile
from xrm.interact._outbox import DeliveryReport, deliver_outbox
from xrm.interact._policy import Caps, ContactPolicy
from xrm.interact._results import (
    attribute_conversions,
    campaign_results,
    newcombe_interval,
    wilson_interval,
)
from xrm.interact._schedules import (
    list_schedules,
    parse_interval,
    remove_schedule,
    run_due_schedules,
    schedule_campaign,
    set_schedule_enabled,
)
from xrm.interact._suppression import is_suppressed
from xrm.interact._templates import Template
from xrm.interact._timeline import (
    MAX_TIMELINE_LIMIT,
    TIMELINE_TYPES,
    TimelineItem,
    TimelinePage,
    active_profile,
    profile_view,
    timeline,
)
from xrm.interact._timeline_resolve import IdentifierCache, ResolveSummary, resolve_events
from xrm.interact._tracking import (
    DoubleOptIn,
    confirm_double_opt_in,
    record_call_outcomes,
    record_click,
    record_delivery,
    record_open,
    request_double_opt_in,
    unsubscribe,
)
from xrm.interact._triggers import AbandonedBasket, DueWithin, SqlTrigger, TraitBelow, TraitChanged

__all__ = [
    "CHANNELS",
    "DEFAULT_COSTS",
    "MAX_TIMELINE_LIMIT",
    "PURPOSES",
    "TIMELINE_TYPES",
    "AbandonedBasket",
    "CallListTransport",
    "Campaign",
    "CampaignRun",
    "Caps",
    "Channel",
    "Consent",
    "Contact",
    "ContactPolicy",
    "DeliveryReport",
    "DoubleOptIn",
    "DueWithin",
    "FakeTransport",
    "IdentifierCache",
    "LetterFileTransport",
    "Offer",
    "Outbound",
    "ResolveSummary",
    "SendResult",
    "SmtpTransport",
    "SqlTrigger",
    "Template",
    "TimelineItem",
    "TimelinePage",
    "TraitBelow",
    "TraitChanged",
    "Transport",
    "WebhookTransport",
    "active_profile",
    "apply_suppressions",
    "attribute_conversions",
    "campaign_from_dict",
    "campaign_results",
    "confirm_double_opt_in",
    "consent_eligibility",
    "consent_history",
    "current_consents",
    "default_channels",
    "deliver_outbox",
    "demo_campaigns",
    "erase_profile",
    "export_profile",
    "has_consent",
    "is_suppressed",
    "list_schedules",
    "load_contacts",
    "newcombe_interval",
    "parse_interval",
    "preview",
    "profile_view",
    "record_call_outcomes",
    "record_click",
    "record_consent",
    "record_delivery",
    "record_open",
    "remove_schedule",
    "request_double_opt_in",
    "resolve_events",
    "run_campaigns",
    "run_demo_campaigns",
    "run_due_schedules",
    "schedule_campaign",
    "set_schedule_enabled",
    "sign_webhook",
    "sync_consents",
    "timeline",
    "unsubscribe",
    "verify_webhook",
    "wilson_interval",
]
