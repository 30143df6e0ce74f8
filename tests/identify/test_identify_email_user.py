"""The e-mail comparison's 'same user part, other domain' level: only a user part with more than
letters counts; one of letters alone is the name, which namesakes share."""

from __future__ import annotations

import json

from xrm.identify import IdentityRules, resolve_identities

# Keep every scored pair, however weak, to read its e-mail weight.
ALL_PAIRS = IdentityRules.from_mapping({"linkage": {"review_probability": 1e-6}})


def _christines(seed, user_a: str, user_b: str) -> None:
    """Two undated women of one name in two houses of one city, each with her own address."""
    common = {"first_name": "Christine", "last_name": "Schneider", "city": "Köln", "postcode": "50667"}
    seed.record("webshop:C1", email=f"{user_a}@gmail.com", street="Lindenweg", house_number="3",
                account_id="C1", **common)
    seed.record("loyalty:C2", email=f"{user_b}@web.de", street="Birkenstraße", house_number="58",
                loyalty_card="L2", **common)


def _email_weight(store) -> tuple[float, str]:
    (weights, status), = store.sql("SELECT weights, status FROM linkage_pairs").fetchall()
    return json.loads(weights)["email"], status


def test_a_name_as_user_part_on_two_domains_is_no_evidence(store, seed):
    _christines(seed, "christine.schneider", "christine.schneider")
    resolve_identities(store, ALL_PAIRS)
    # Scored as two different addresses: before, 'same user, other domain' gave about +9.6 bits
    # and joined such namesakes of other houses (106 of 400 wrong links at 100k sample records).
    weight, status = _email_weight(store)
    assert weight < 0 and status != "linked"
    assert seed.profile_of("webshop:C1") != seed.profile_of("loyalty:C2")


def test_a_user_part_with_digits_on_two_domains_still_agrees(store, seed):
    _christines(seed, "christine.schneider71", "christine.schneider71")
    resolve_identities(store, ALL_PAIRS)
    weight, _ = _email_weight(store)
    assert weight > 5
