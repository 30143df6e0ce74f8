"""Frequency caps and Customize's consent hook see a person across all user ids of their profile."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.interact.conftest import add_event
from tests.interact.test_profile_consent import _two_ids_one_person

from xrm.exceptions import InputError
from xrm.interact import Caps, ContactPolicy, consent_eligibility, record_consent
from xrm.interact._policy import Wish, arbitrate, contact_counts

T0 = datetime(2026, 3, 2, 10, 0)


def _message(
    store, mid: str, customer: str, key: str, *, hours_ago: float, purpose: str = "marketing"
) -> None:
    at = T0 - timedelta(hours=hours_ago)
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO messages (message_id, customer, customer_key, channel, purpose, status, "
            "not_before, created_at, sent_at) VALUES (?, ?, ?, 'email', ?, 'sent', ?, ?, ?)",
            [mid, customer, key, purpose, at, at, at],
        )


def test_caps_count_the_messages_of_every_key_of_the_profile(store):
    pid = _two_ids_one_person(store)  # user ids A and B are one profile
    _message(store, "m1", pid, "profile_id", hours_ago=2)  # a profile-keyed campaign today
    _message(store, "m2", "B", "user_id", hours_ago=50)  # the CRM's user id, two days ago
    _message(store, "m3", "A", "user_id", hours_ago=1, purpose="service")  # receipts do not count
    _message(store, "m4", "C", "user_id", hours_ago=1)  # someone else, in no profile
    _message(store, "m5", "A", "profile_id", hours_ago=1)  # profile "A" is not user A: not counted

    by_user = contact_counts(store.con, ["A", "B", "C", "D"], T0)
    for user in ("A", "B"):  # each of the person's user ids sees both marketing messages
        assert by_user[user]["email"] == [1, 2] and by_user[user]["*"] == [1, 2], user
    assert by_user["C"]["*"] == [1, 1]  # a user id without a profile: its own messages
    assert "D" not in by_user
    by_profile = contact_counts(store.con, [pid], T0, customer_key="profile_id")
    assert by_profile[pid]["*"] == [1, 2]

    # The cap is the person's: one e-mail a day is used up by the profile-keyed message, so a
    # user-keyed campaign to B today is capped (before: B's own count was 0 today).
    policy = ContactPolicy(overall=Caps(1, 5))
    wish = Wish("news", "B", "email")
    arbitrate([wish], by_user, policy)
    assert not wish.admitted and wish.reason == "capped"

    with pytest.raises(InputError, match="customer_key"):
        contact_counts(store.con, ["A"], T0, customer_key="email")


def test_eligibility_keyed_by_profile_finds_consent_of_any_user_id(store):
    pid = _two_ids_one_person(store)
    record_consent(store, "A", "email", "marketing", "granted", source="shop form", at=T0 - timedelta(days=5))

    by_profile = consent_eligibility(store, at=T0, customer_key="profile_id")
    assert by_profile(pid, {"offer_id": "o"}, "email")  # granted under user id A
    assert not by_profile(pid, {"offer_id": "o"}, "sms")
    assert not by_profile("999", {"offer_id": "o"}, "email")
    by_user = consent_eligibility(store, at=T0)
    assert by_user("A", {"offer_id": "o"}, "email") and not by_user("B", {"offer_id": "o"}, "email")

    # B (the same person, through the CRM) revokes later: the newest across the profile wins.
    add_event(store, "Consent Updated", "B", T0 + timedelta(minutes=1),
              properties={"channel": "email", "purpose": "marketing", "granted": False})
    later = consent_eligibility(store, at=T0 + timedelta(minutes=2), customer_key="profile_id")
    assert not later(pid, {"offer_id": "o"}, "email")
    assert consent_eligibility(store, at=T0 + timedelta(minutes=2))("A", {"offer_id": "o"}, "email")

    with pytest.raises(InputError, match="customer_key"):
        consent_eligibility(store, customer_key="records")
