"""Events that carry the same identifiers are one occurrence of the graph (issue 9, task `scale`):
counts, first sightings, link evidence and every event's profile stay those of one event each."""

from __future__ import annotations

from xrm.identify import resolve_identities


def _one(store, sql, params=()):
    rows = store.sql(sql, list(params)).fetchall()
    assert len(rows) == 1, rows
    return rows[0]


def test_alike_events_count_once_each_and_keep_their_first_sighting(store, seed):
    seed.record("crm:1", user_id="u1", email="anna.berg@web.de")
    # Four events with the same signature (u1 + cookie c1); the earliest two share a ts, so the
    # message id decides which is the link's evidence.
    seed.event("m3", "2024-01-03 10:00:00", user_id="u1", anonymous_id="c1")
    seed.event("m2", "2024-01-01 09:00:00", user_id="u1", anonymous_id="c1")
    seed.event("m1", "2024-01-01 09:00:00", user_id="u1", anonymous_id="c1")
    seed.event("m4", "2024-01-05 12:00:00", user_id="u1", anonymous_id="c1")
    # Same user without a cookie (NULL in the signature) and an identify call with an e-mail trait.
    seed.event("m5", "2024-01-02 08:00:00", user_id="u1")
    seed.event("m6", "2024-01-02 08:30:00", type="identify", anonymous_id="c1",
               traits={"email": "Anna.Berg@web.de"})
    seed.event("m7", "2024-01-02 08:31:00", type="identify", anonymous_id="c1",
               context={"traits": {"email": "anna.berg@web.de"}})
    # An invalid trait value, seen twice, is rejected with both sightings counted.
    seed.event("m8", "2024-01-04 08:00:00", type="identify", anonymous_id="c2",
               traits={"email": "not-an-email"})
    seed.event("m9", "2024-01-04 09:00:00", type="identify", anonymous_id="c2",
               traits={"email": "not-an-email"})
    resolve_identities(store)

    pid = seed.profile_of("crm:1")
    for m in ("m1", "m2", "m3", "m4", "m5", "m6", "m7"):
        assert seed.event_profile(m) == pid
    assert seed.event_profile("m8") == seed.event_profile("m9") != pid

    # n_seen counts events (and the record), first/last seen are the events' extremes.
    n, first, last = _one(store, "SELECT n_seen, first_seen, last_seen FROM identifiers "
                                 "WHERE id_type = 'anonymous_id' AND id_value = 'c1'")
    assert n == 6
    assert str(first) == "2024-01-01 09:00:00" and str(last) == "2024-01-05 12:00:00"
    (n,) = _one(store, "SELECT n_seen FROM identifiers WHERE id_type = 'user_id' AND id_value = 'u1'")
    assert n == 6  # five events and the record
    (n,) = _one(store, "SELECT n_seen FROM profile_evidence WHERE profile_id = ? AND id_type = 'email'",
                [pid])
    assert n == 3  # the record and two identify events
    (n,) = _one(store, "SELECT n_seen FROM rejected_identifiers WHERE id_value = 'not-an-email'")
    assert n == 2

    # The link user id - cookie is evidenced by the first event that made it: the earliest ts,
    # then the smallest message id.
    (occ, ts) = _one(
        store,
        "SELECT occurrence, ts FROM identity_links WHERE status = 'linked' AND "
        "((value_a = 'u1' AND value_b = 'c1') OR (value_a = 'c1' AND value_b = 'u1'))",
    )
    assert occ == "event:m1" and str(ts) == "2024-01-01 09:00:00"


def test_events_without_identifiers_get_no_profile(store, seed):
    seed.record("crm:1", user_id="u1")
    seed.event("m1", "2024-01-01 09:00:00", user_id="u1")
    seed.event("m2", "2024-01-01 09:00:00")  # no identifier at all
    resolve_identities(store)
    assert store.sql("SELECT message_id FROM event_profiles ORDER BY 1").fetchall() == [("m1",)]
