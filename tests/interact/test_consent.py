from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.interact.conftest import add_event, add_person

from xrm.exceptions import ConfigError, InputError
from xrm.interact import (
    Campaign,
    Channel,
    FakeTransport,
    Template,
    confirm_double_opt_in,
    consent_eligibility,
    consent_history,
    current_consents,
    deliver_outbox,
    has_consent,
    record_consent,
    request_double_opt_in,
    run_campaigns,
    unsubscribe,
)
from xrm.interact._tokens import secret_of, sign_token, verify_token

T0 = datetime(2026, 3, 2, 10, 0)


def test_record_and_validity_with_expiry_and_revocation(store):
    record_consent(
        store,
        "u1",
        "email",
        "marketing",
        "granted",
        source="web form",
        at=T0,
        expires_at=T0 + timedelta(days=30),
        proof={"ip": "192.0.2.1"},
    )
    assert has_consent(store, "u1", "email", "marketing", at=T0 + timedelta(days=1))
    assert not has_consent(store, "u1", "email", "marketing", at=T0 - timedelta(seconds=1))
    assert not has_consent(store, "u1", "email", "marketing", at=T0 + timedelta(days=31))
    assert not has_consent(store, "u1", "sms", "marketing", at=T0 + timedelta(days=1))
    assert not has_consent(store, "u1", "email", "profiling", at=T0 + timedelta(days=1))
    record_consent(
        store, "u1", "email", "marketing", "revoked", source="preference centre", at=T0 + timedelta(days=2)
    )
    assert not has_consent(store, "u1", "email", "marketing", at=T0 + timedelta(days=3))
    assert has_consent(store, "u1", "email", "marketing", at=T0 + timedelta(days=1))  # history
    # Every change is also a `Consent Updated` event on the timeline.
    rows = store.sql(
        "SELECT count(*) FROM events WHERE event = 'Consent Updated' AND user_id = 'u1'"
    ).fetchall()
    assert rows[0][0] == 2


def test_tie_goes_to_refusal(store):
    record_consent(store, "u1", "sms", "marketing", "granted", source="a", at=T0)
    record_consent(store, "u1", "sms", "marketing", "revoked", source="b", at=T0)
    record_consent(store, "u1", "sms", "marketing", "granted", source="c", at=T0)
    assert not has_consent(store, "u1", "sms", "marketing", at=T0)
    assert current_consents(store, "u1", at=T0)[("sms", "marketing")].status == "revoked"


def test_derived_from_ingested_events(store):
    add_event(
        store,
        "Consent Updated",
        "u2",
        T0,
        properties={
            "channel": "email",
            "purpose": "marketing",
            "granted": True,
            "expires_at": "2027-01-01T00:00:00",
        },
    )
    add_event(
        store,
        "Consent Updated",
        "u2",
        T0 + timedelta(days=1),
        properties={"channel": "email", "purpose": "marketing", "granted": False},
    )
    add_event(
        store,
        "Consent Updated",
        "u3",
        T0,
        properties={"channel": "sms", "purpose": "marketing", "granted": False},
    )
    add_event(
        store,
        "Consent Updated",
        "u4",
        T0,
        properties={"channel": "fax", "purpose": "marketing", "granted": True},
    )
    hist = consent_history(store, "u2")
    assert [c.status for c in hist] == ["granted", "revoked"]
    assert hist[0].expires_at == datetime(2027, 1, 1)
    assert hist[0].proof and hist[0].proof["event"] == hist[0].event_message_id
    assert [c.status for c in consent_history(store, "u3")] == ["denied"]
    assert consent_history(store, "u4") == []  # unknown channel: not a consent
    assert has_consent(store, "u2", "email", "marketing", at=T0 + timedelta(hours=1))
    assert not has_consent(store, "u2", "email", "marketing", at=T0 + timedelta(days=2))
    assert store.count("consents") == 3  # syncing twice adds nothing


def test_bad_values_are_refused_with_the_rule(store):
    with pytest.raises(InputError, match=r"channel = 'fax'.*purpose = 'sales'"):
        record_consent(store, "u1", "fax", "sales", "granted", source="x")
    with pytest.raises(InputError, match="source is empty"):
        record_consent(store, "u1", "email", "marketing", "granted", source="")


def test_double_opt_in(store):
    doi = request_double_opt_in(
        store, "u5", "Eva@Example.com", source="newsletter form", at=T0, proof={"ip": "198.51.100.7"}
    )
    assert doi.url.startswith("https://xrm.example.com/consent/confirm?token=")
    assert not has_consent(store, "u5", "email", "marketing", at=T0 + timedelta(minutes=5))
    # The confirmation mail itself may go (service purpose, until the link expires).
    assert has_consent(store, "u5", "email", "service", at=T0 + timedelta(minutes=5))
    assert not has_consent(store, "u5", "email", "service", at=T0 + timedelta(days=3))
    with pytest.raises(InputError, match="signature does not match"):
        confirm_double_opt_in(store, doi.token[:-2] + "xx", at=T0 + timedelta(hours=1))
    with pytest.raises(InputError, match="expired"):
        confirm_double_opt_in(store, doi.token, at=T0 + timedelta(hours=49))
    c = confirm_double_opt_in(store, doi.token, at=T0 + timedelta(hours=1))
    assert c.status == "granted" and c.source == "double opt-in"
    assert c.proof and c.proof["email"] == "eva@example.com" and c.proof["method"] == "double opt-in"
    assert has_consent(store, "u5", "email", "marketing", at=T0 + timedelta(hours=2))


def test_tokens_are_bound_to_their_kind(isettings):
    secret = secret_of(isettings)
    t = sign_token(secret, "open", {"m": "1"})
    with pytest.raises(InputError):
        verify_token(secret, t, "unsubscribe")
    assert verify_token(secret, t, "open") == {"m": "1"}
    with pytest.raises(ConfigError, match="XRM_SECRET_KEY"):
        secret_of(isettings.model_copy(update={"secret_key": None}))


def test_one_click_unsubscribe_stops_queued_messages(store):
    for u in ("u1", "u2"):
        add_person(store, u, email=f"{u}@example.com")
        record_consent(store, u, "email", "marketing", "granted", source="form", at=T0)
    camp = Campaign(
        "news", "News", "email", Template("Hi", subject="News"), audience=["u1", "u2"], control_share=0.0
    )
    run_campaigns(store, [camp], now=T0 + timedelta(hours=1))
    fake = FakeTransport()
    deliver_outbox(store, {"email": Channel("email", fake)}, now=T0 + timedelta(hours=1), limit=1)
    sent = fake.sent[0]
    assert sent.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = sent.headers["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    # The other customer unsubscribes via a link from an earlier message of the same campaign.
    other = "u2" if sent.customer == "u1" else "u1"
    from xrm.interact._tracking import links_for

    links = links_for(store.settings, "earlier", other, "email", "marketing", "news", T0)
    c = unsubscribe(store, links.unsubscribe_url.rsplit("/", 1)[1], at=T0 + timedelta(hours=1, minutes=1))
    assert c.status == "revoked" and c.proof == {"message_id": "earlier"}
    report = deliver_outbox(store, {"email": Channel("email", fake)}, now=T0 + timedelta(hours=2))
    assert report.sent == 0 and report.blocked == {"no_consent": 1}
    assert len(fake.sent) == 1
    assert unsubscribe(store, token, at=T0 + timedelta(hours=3)).customer == sent.customer
    events = store.sql("SELECT count(*) FROM events WHERE event = 'Unsubscribed'").fetchall()
    assert events[0][0] == 2


def test_eligibility_hook_for_customize(store):
    record_consent(store, "u1", "email", "marketing", "granted", source="form", at=T0)
    record_consent(store, "u1", "sms", "service", "granted", source="form", at=T0)
    eligible = consent_eligibility(store, at=T0 + timedelta(days=1))
    assert eligible("u1", {"offer_id": "o"}, "email")
    assert not eligible("u1", {"offer_id": "o"}, "sms")
    assert eligible("u1", {"offer_id": "o", "consent_purpose": "service"}, "sms")
    assert not eligible("u2", {"offer_id": "o"}, "email")
    assert eligible("u2", {"offer_id": "o"}, "web")  # a web placement needs no contact consent
