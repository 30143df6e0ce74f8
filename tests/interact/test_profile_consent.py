"""Campaigns keyed by Identify profile: consent and address come through the identity graph."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.interact.conftest import add_event

from xrm.identify import IdentifierRule, IdentityRules, LinkageSettings, resolve_identities
from xrm.interact import (
    Campaign,
    Channel,
    FakeTransport,
    Offer,
    Template,
    deliver_outbox,
    preview,
    record_consent,
    run_campaigns,
)

T0 = datetime(2026, 3, 2, 10, 0)  # a Monday, 11:00 in Berlin: outside quiet hours
TPL = Template("Hallo {{ customer.first_name }}", subject="Für Sie")


def _two_ids_one_person(store) -> str:
    """A shop account (user A) and a CRM contact (user B) sharing a loyalty card: one profile."""
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO records (record_id, source, source_key, first_name, last_name, email, "
            "loyalty_card, user_id, updated_at) VALUES (?, ?, ?, 'Anna', 'Beispiel', ?, "
            "'LC-778812', ?, ?)",
            [("shop:A", "shop", "A", "anna.beispiel@web.de", "A", datetime(2026, 1, 1)),
             ("crm:B", "crm", "B", None, "B", datetime(2026, 1, 2))],
        )
    # Two user ids may share a profile here (the default allows one per profile).
    types = {**IdentityRules().types, "user_id": IdentifierRule(glue=True, limit=2, priority=1)}
    resolve_identities(store, IdentityRules(types=types, linkage=LinkageSettings(enabled=False)))
    rows = store.sql(
        "SELECT DISTINCT CAST(profile_id AS VARCHAR) FROM identifiers WHERE id_type = 'user_id' "
        "AND id_value IN ('A', 'B')"
    ).fetchall()
    assert len(rows) == 1, rows  # the premise: both user ids resolved to one profile
    return str(rows[0][0])


def test_profile_campaign_uses_consent_and_address_of_any_user_id(store):
    pid = _two_ids_one_person(store)
    record_consent(store, "A", "email", "marketing", "granted", source="shop form",
                   at=T0 - timedelta(days=5))
    campaign = Campaign("winback", "Win back", "email", TPL,
                        audience=f"SELECT '{pid}' AS customer", offer=Offer("o", "Gratisversand"),
                        control_share=0.0, customer_key="profile_id")

    run = run_campaigns(store, [campaign], now=T0)[0]
    assert run.outcomes == {"queued": 1}
    to, key = store.sql(
        "SELECT address, customer_key FROM messages WHERE customer = ?", [pid]
    ).fetchall()[0]
    assert (to, key) == ("anna.beispiel@web.de", "profile_id")
    assert preview(store, campaign, pid, now=T0)["permission"] == "ok"

    # Keyed by user id, B has no consent of its own: the profile keying is what lets it through.
    by_user = Campaign("u", "U", "email", TPL, audience="SELECT 'B' AS customer",
                       offer=Offer("o", "x"), control_share=0.0)
    assert run_campaigns(store, [by_user], now=T0, dry_run=True)[0].outcomes == {"no_consent": 1}

    # B revokes through the CRM after the message was queued: the send-time gate stops it.
    add_event(store, "Consent Updated", "B", T0 + timedelta(minutes=1),
              properties={"channel": "email", "purpose": "marketing", "granted": False})
    transport = FakeTransport()
    report = deliver_outbox(store, {"email": Channel("email", transport)},
                            now=T0 + timedelta(minutes=2))
    assert report.blocked == {"no_consent": 1} and transport.sent == []
    assert preview(store, campaign, pid, now=T0 + timedelta(minutes=2))["permission"] == "no_consent"
    later = Campaign("winback2", "Win back", "email", TPL, audience=f"SELECT '{pid}' AS customer",
                     offer=Offer("o", "Gratisversand"), control_share=0.0,
                     customer_key="profile_id")
    assert run_campaigns(store, [later], now=T0 + timedelta(minutes=3),
                         dry_run=True)[0].outcomes == {"no_consent": 1}

    # A grants again, newest decision across the profile's ids wins.
    record_consent(store, "A", "email", "marketing", "granted", source="shop form",
                   at=T0 + timedelta(minutes=4))
    assert run_campaigns(store, [later], now=T0 + timedelta(minutes=5),
                         dry_run=True)[0].outcomes == {"dry_run": 1}


def test_profile_with_consent_only_elsewhere_is_not_contacted(store):
    pid = _two_ids_one_person(store)
    record_consent(store, "someone-else", "email", "marketing", "granted", source="form",
                   at=T0 - timedelta(days=5))
    campaign = Campaign("winback", "Win back", "email", TPL,
                        audience=f"SELECT '{pid}' AS customer", offer=Offer("o", "Gratisversand"),
                        control_share=0.0, customer_key="profile_id")
    assert run_campaigns(store, [campaign], now=T0, dry_run=True)[0].outcomes == {"no_consent": 1}
