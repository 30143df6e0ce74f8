"""The deterministic identity graph on a real store: glue, rules, stable ids, merge audit."""

from __future__ import annotations

import datetime as dt

from xrm.identify import IdentityRules, resolve_identities
from xrm.identify._components import Override, solve_with_rules
from xrm.store import Store


def _family(seed):
    """Anna and Ben Schmidt: one household, one tablet, one family e-mail."""
    seed.record("web:1", first_name="Anna", last_name="Schmidt", account_id="A1", user_id="U1",
                email="schmidts@web.de", updated_at=dt.datetime(2023, 1, 1))
    seed.record("loy:1", first_name="Anna", last_name="Schmidt", loyalty_card="L1", account_id="A1",
                updated_at=dt.datetime(2023, 2, 1))
    seed.record("crm:1", first_name="Anna", last_name="Schmidt", loyalty_card="L1", phone="030 1234567",
                updated_at=dt.datetime(2023, 3, 1))
    seed.record("web:2", first_name="Ben", last_name="Schmidt", account_id="A2", user_id="U2",
                email="Schmidts@web.de ", phone="030/1234567", updated_at=dt.datetime(2023, 1, 5))
    seed.event("e1", "2024-01-01", "identify", user_id="U1", anonymous_id="tablet")
    seed.event("e2", "2024-01-02", "identify", user_id="U2", anonymous_id="tablet")
    seed.event("e3", "2024-01-03", "page", anonymous_id="tablet")
    seed.event("e4", "2024-01-04", "track", user_id="U1", anonymous_id="phone-anna")


def test_transitive_linking_records_and_events(store, seed):
    _family(seed)
    summary = resolve_identities(store)
    anna = seed.profile_of("web:1")
    assert seed.profile_of("loy:1") == anna and seed.profile_of("crm:1") == anna  # A1 -> L1 -> crm
    assert seed.event_profile("e1") == anna and seed.event_profile("e4") == anna
    assert summary["records"] == 4 and summary["profiles_with_records"] == 2


def test_family_email_and_phone_are_evidence_not_glue(store, seed):
    _family(seed)
    resolve_identities(store)
    anna, ben = seed.profile_of("web:1"), seed.profile_of("web:2")
    assert anna != ben
    shared = store.sql(
        "SELECT list(profile_id ORDER BY profile_id) FROM profile_evidence WHERE id_type = 'email' "
        "AND id_value = 'schmidts@web.de'"
    ).fetchall()[0][0]
    assert shared == sorted([anna, ben])


def test_shared_tablet_does_not_merge_parent_and_child(store, seed):
    _family(seed)
    resolve_identities(store)
    anna, ben = seed.profile_of("web:1"), seed.profile_of("web:2")
    assert seed.event_profile("e2") == ben and seed.event_profile("e3") == anna  # first seen with U1
    (status, reason), = store.sql(
        "SELECT status, reason FROM identity_links WHERE value_a = 'U2' AND value_b = 'tablet'"
    ).fetchall()
    assert status == "dropped" and "user_id limit 1 per profile would be broken" in reason


def test_blocked_values_never_glue(store, seed):
    rules = IdentityRules.from_mapping({"types": {"loyalty_card": {"blocked": ["FILIALE-01"]}}})
    seed.record("pos:1", first_name="A", loyalty_card="Filiale-01")
    seed.record("pos:2", first_name="B", loyalty_card="filiale 01")
    seed.record("pos:3", first_name="C", loyalty_card="0000000")
    seed.record("pos:4", first_name="D", loyalty_card="0000000")
    seed.event("x1", "2024-01-01", user_id="undefined", anonymous_id="c1")
    seed.event("x2", "2024-01-01", user_id="undefined", anonymous_id="c2")
    resolve_identities(store, rules)
    profiles = {seed.profile_of(f"pos:{i}") for i in range(1, 5)}
    assert len(profiles) == 4
    assert seed.event_profile("x1") != seed.event_profile("x2")
    rejected = dict(store.sql("SELECT id_value, n_seen FROM rejected_identifiers").fetchall())
    assert rejected == {"FILIALE01": 2, "0000000": 2, "undefined": 2}


def test_priority_decides_which_link_is_dropped(store, seed):
    seed.record("web:1", account_id="A1", loyalty_card="L1", updated_at=dt.datetime(2023, 1, 1))
    # Later a record with another account claims the same card: the card (lower priority) is left out.
    seed.record("web:2", account_id="A2", loyalty_card="L1", updated_at=dt.datetime(2023, 2, 1))
    resolve_identities(store)
    p1, p2 = seed.profile_of("web:1"), seed.profile_of("web:2")
    assert p1 != p2
    owner = store.sql("SELECT profile_id FROM identifiers WHERE id_value = 'L1'").fetchall()[0][0]
    assert owner == p1
    (reason,), = store.sql(
        "SELECT reason FROM identity_links WHERE status = 'dropped' AND value_a = 'A2'"
    ).fetchall()
    assert "account_id limit 1" in reason


def test_limit_is_configurable(store, seed):
    for i in range(3):
        seed.event(f"s{i}", f"2024-01-0{i + 1}", user_id="U1", anonymous_id=f"cookie{i}")
    rules = IdentityRules.from_mapping({"types": {"anonymous_id": {"limit": 2}}})
    resolve_identities(store, rules)
    owners = dict(store.sql("SELECT id_value, profile_id FROM identifiers").fetchall())
    assert owners["U1"] == owners["cookie0"] == owners["cookie1"] != owners["cookie2"]
    assert seed.event_profile("s2") == owners["U1"]  # the event follows its most trusted identifier


def test_stable_ids_and_merge_audit_across_runs(store, seed):
    _family(seed)
    first = resolve_identities(store)
    anna, ben = seed.profile_of("web:1"), seed.profile_of("web:2")
    seed.record("shop:9", first_name="Carla", account_id="A9", loyalty_card="L9",
                updated_at=dt.datetime(2024, 2, 1))
    seed.record("pos:9", first_name="Carla", loyalty_card="L9b", updated_at=dt.datetime(2024, 2, 2))
    second = resolve_identities(store)
    assert (seed.profile_of("web:1"), seed.profile_of("web:2")) == (anna, ben)
    carla, carla_b = seed.profile_of("shop:9"), seed.profile_of("pos:9")
    assert carla != carla_b and min(carla, carla_b) > max(anna, ben)
    assert second["new_profiles"] == 2 and first["new_profiles"] == 2
    # An event ties the two cards together: the larger profile's id survives, the merge is logged.
    seed.event("m1", "2024-03-01", "identify", user_id=None, anonymous_id="c9",
               traits={"loyalty_card": "L9", "account_id": None})
    seed.event("m2", "2024-03-02", "identify", anonymous_id="c9", traits={"loyalty_card": "L9b"})
    third = resolve_identities(store)
    assert seed.profile_of("pos:9") == seed.profile_of("shop:9") == carla
    assert third["merges"] == 1
    (action, into, absorbed, reason), = store.sql(
        "SELECT action, profile_id, other_profile_id, reason FROM merge_log WHERE action = 'merge'"
    ).fetchall()
    assert (action, into, absorbed) == ("merge", carla, carla_b)
    assert "seen together in event:m2" in reason
    assert store.sql("SELECT status, merged_into FROM profiles WHERE profile_id = ?",
                     [carla_b]).fetchall() == [("merged", carla)]
    fourth = resolve_identities(store)  # nothing new: nothing changes
    assert fourth["new_profiles"] == 0 and "merges" not in fourth


def test_same_data_gives_same_ids(tmp_path, settings, seed):
    Seed = type(seed)
    ids = []
    for name in ("a", "b"):
        with Store.open(settings.model_copy(update={"store_path": tmp_path / f"{name}.duckdb"})) as s:
            seed = Seed(s)
            _family(seed)
            resolve_identities(s)
            ids.append(s.sql("SELECT * FROM profile_records ORDER BY 1").fetchall())
    assert ids[0] == ids[1]


def test_rule_pass_replays_in_time_order_and_respects_overrides():
    # nodes: 0,1 user ids (type 0, limit 1); 2 a cookie (type 1); 3 a record (no type)
    occs = [("e1", 1, [0, 2]), ("e2", 2, [1, 2]), ("r1", 3, [1, 3])]
    roots, links = solve_with_rules(occs, {0: 0, 1: 0, 2: 1, 3: -1}, {0: ("user_id", 1)}, [])
    assert roots[0] == roots[2] != roots[1] == roots[3]
    assert [lk.status for lk in links] == ["linked", "dropped", "linked"]
    apart = Override(1, frozenset({3}), frozenset({1}), "two people")
    roots, links = solve_with_rules(occs, {0: 0, 1: 0, 2: 1, 3: -1}, {0: ("user_id", 1)}, [apart])
    assert roots[3] != roots[1] and "override #1" in links[-1].reason


def test_no_data_and_records_without_identifiers(store, seed):
    empty = resolve_identities(store)
    assert empty["profiles"] == 0 and empty["records"] == 0
    seed.record("nl:1", email="a@b.de")
    seed.record("nl:2", email="a@b.de")
    seed.record("nl:3")
    # The deterministic graph alone: e-mail is evidence, never glue (fuzzy linkage may join them).
    resolve_identities(store, IdentityRules.from_mapping({"linkage": {"enabled": False}}))
    assert len({seed.profile_of(f"nl:{i}") for i in (1, 2, 3)}) == 3


def test_first_run_insert_and_later_sync_write_the_same_tables(tmp_path, settings, seed):
    """A first run fills the empty tables with plain INSERTs (issue 9); a later run syncs them row
    by row. Both must leave the same rows: here the later run repairs rows removed and altered."""
    Seed = type(seed)
    tables = {"identifiers": "id_type, id_value", "profile_records": "record_id",
              "event_profiles": "message_id", "profile_evidence": "profile_id, id_type, id_value"}
    contents = []
    for name, rerun in (("once", False), ("twice", True)):
        with Store.open(settings.model_copy(update={"store_path": tmp_path / f"{name}.duckdb"})) as s:
            seed = Seed(s)
            _family(seed)
            resolve_identities(s)
            if rerun:
                s.sql("DELETE FROM event_profiles WHERE message_id = 'e2'")
                s.sql("INSERT INTO event_profiles VALUES ('gone', 999)")
                s.sql("UPDATE profile_records SET profile_id = 999 WHERE record_id = 'crm:1'")
                s.sql("DELETE FROM profile_evidence WHERE id_type = 'phone'")
                assert s.count("event_profiles") == 4
                resolve_identities(s)
            contents.append({t: s.sql(f"SELECT * FROM {t} ORDER BY {k}").fetchall()
                             for t, k in tables.items()})
    assert contents[0] == contents[1]
    assert len(contents[0]["event_profiles"]) == 4 and contents[0]["profile_evidence"]
