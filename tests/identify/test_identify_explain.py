"""Explain, look up, unmerge (with its override surviving reruns) and online resolution."""

from __future__ import annotations

import datetime as dt

import pytest

import xrm.identify
from xrm.exceptions import InputError
from xrm.identify import (
    explain_profile,
    lookup_profiles,
    resolve_event,
    resolve_identities,
    unmerge_profile,
)


def _wrong_merge(seed):
    """A shop-floor card handed to a second customer glues two people together."""
    seed.record("web:1", first_name="Anna", account_id="A1", loyalty_card="L1", email="anna@web.de",
                updated_at=dt.datetime(2023, 1, 1))
    seed.record("pos:1", first_name="Anna", loyalty_card="L1", updated_at=dt.datetime(2023, 2, 1))
    seed.record("pos:2", first_name="Karl", loyalty_card="L1", phone="0171 1234567",
                updated_at=dt.datetime(2023, 3, 1))
    seed.event("e1", "2024-01-01", "identify", user_id="U1", anonymous_id="c1",
               traits={"account_id": "A1", "email": "anna@web.de"})


def test_explain_gives_the_chain_with_rules(store, seed):
    _wrong_merge(seed)
    resolve_identities(store)
    pid = seed.profile_of("web:1")
    ex = explain_profile(store, pid)
    assert ex.root == ("user_id", "U1") and ex.status == "active"
    reached = {(s.to_type, s.to_value) for s in ex.chain}
    expected = {("account_id", "A1"), ("loyalty_card", "L1"), ("record", "pos:2"), ("anonymous_id", "c1")}
    assert expected <= reached
    card = next(s for s in ex.chain if s.to_value == "L1")
    assert card.via_value == "A1" and card.occurrence == "record:web:1"
    assert "loyalty_card glues on its own (priority 3, limit 2 per profile)" in card.rule
    assert [r["record_id"] for r in ex.records] == ["pos:1", "pos:2", "web:1"]
    text = ex.to_text()
    assert f"profile {pid} (active): 3 records" in text and "- loyalty_card L1: with account_id A1" in text
    assert ex.to_dict()["profile_id"] == pid


def test_lookup_by_any_identifier(store, seed):
    _wrong_merge(seed)
    resolve_identities(store)
    pid = seed.profile_of("web:1")
    assert lookup_profiles(store, "loyalty_card", " l1 ") == [pid]
    assert lookup_profiles(store, "email", "ANNA@web.de") == [pid]
    assert lookup_profiles(store, "phone", "+49 171 1234567") == [pid]
    assert lookup_profiles(store, "record", "pos:2") == [pid]
    assert lookup_profiles(store, "user_id", "nobody") == []
    with pytest.raises(InputError, match=r"cannot look up email 'test@test\.com'.*blocked"):
        lookup_profiles(store, "email", "test@test.com")


def test_unmerge_keeps_the_id_for_the_rest_and_survives_reruns(store, seed):
    _wrong_merge(seed)
    resolve_identities(store)
    pid = seed.profile_of("web:1")
    out = unmerge_profile(store, pid, [("record", "pos:2")], "Karl got Anna's card at the till",
                          decided_by="service desk")
    karl = out["new_profile_id"]
    assert seed.profile_of("pos:2") == karl and seed.profile_of("web:1") == pid == seed.profile_of("pos:1")
    log = store.sql(
        "SELECT action, profile_id, other_profile_id, reason FROM merge_log ORDER BY log_id"
    ).fetchall()
    assert log[0] == ("unmerge", karl, pid, "unmerged: Karl got Anna's card at the till")
    ex = explain_profile(store, pid)
    assert any("override #1" in d["reason"] for d in ex.dropped)
    assert any(h["action"] == "unmerge" for h in ex.history)
    # A later run with new data obeys the decision and keeps both ids.
    seed.record("pos:3", first_name="Karl", loyalty_card="L1", updated_at=dt.datetime(2024, 1, 1))
    resolve_identities(store)
    assert seed.profile_of("pos:2") == karl and seed.profile_of("web:1") == pid


def test_unmerge_refuses_bad_requests(store, seed):
    _wrong_merge(seed)
    resolve_identities(store)
    pid = seed.profile_of("web:1")
    with pytest.raises(InputError, match="needs a reason"):
        unmerge_profile(store, pid, [("record", "pos:2")], " ")
    with pytest.raises(InputError, match=r"does not hold record 'nope'; it holds: .*account_id A1"):
        unmerge_profile(store, pid, [("record", "nope")], "x")
    with pytest.raises(InputError, match="does not exist"):
        unmerge_profile(store, 999, [("record", "pos:2")], "x")


def test_online_event_resolution(store, seed):
    _wrong_merge(seed)
    resolve_identities(store)
    anna = seed.profile_of("web:1")
    # A known identifier resolves to its profile in the same call.
    assert resolve_event(store, {"type": "track", "userId": "U1", "messageId": "o1"}) == anna
    assert seed.event_profile("o1") == anna
    # An unknown visitor gets a new profile; logging in later joins it to the known one.
    visitor = resolve_event(store, {"type": "page", "anonymousId": "new-cookie", "messageId": "o2"})
    assert visitor not in (anna,)
    assert resolve_event(store, {"type": "identify", "userId": "U1", "anonymousId": "new-cookie",
                                 "messageId": "o3", "traits": {"email": "Anna@Web.de"}}) == anna
    assert store.sql("SELECT status, merged_into FROM profiles WHERE profile_id = ?",
                     [visitor]).fetchall() == [("merged", anna)]
    assert seed.event_profile("o2") == anna  # events follow the merge
    # A second user on the same device is refused by the user_id limit.
    other = resolve_event(store, {"type": "identify", "userId": "U7", "anonymousId": "new-cookie"})
    assert other != anna
    assert lookup_profiles(store, "anonymous_id", "new-cookie") == [anna]
    with pytest.raises(InputError, match="no usable identifier"):
        resolve_event(store, {"type": "track", "userId": "undefined", "messageId": "bad"})


def test_online_ids_survive_the_next_batch(store, seed):
    _wrong_merge(seed)
    resolve_identities(store)
    pid = resolve_event(store, {"type": "identify", "userId": "U9", "anonymousId": "c9", "messageId": "o9"})
    seed.event("o9", "2024-05-01", "identify", user_id="U9", anonymous_id="c9")
    resolve_identities(store)
    assert seed.event_profile("o9") == pid


def test_public_surface():
    assert sorted(xrm.identify.__all__) == [
        "GoldenRules", "IdentifierRule", "IdentityRules", "LinkStep", "LinkageSettings",
        "NormalizedAddress", "NormalizedName", "ProfileExplanation", "accept_review",
        "build_golden_records", "decide_review", "explain_profile", "export_records", "fold",
        "golden_record",
        "link_records", "load_sample_records", "lookup_profiles", "normalize_address",
        "normalize_email", "normalize_identifier", "normalize_name", "normalize_phone",
        "normalize_records", "parse_birth_date", "reject_review", "resolve_event", "resolve_graph",
        "resolve_identities", "review_items", "score_clusters", "score_profiles",
        "train_linkage_parameters", "unmerge_profile",
    ]
    for name in xrm.identify.__all__:
        assert getattr(xrm.identify, name).__doc__, f"{name} needs a docstring"
