from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from tests.interact.conftest import add_event, add_person

from xrm.exceptions import InputError
from xrm.interact import (
    Campaign,
    Channel,
    FakeTransport,
    Template,
    apply_suppressions,
    deliver_outbox,
    erase_profile,
    export_profile,
    is_suppressed,
    record_consent,
    run_campaigns,
)

T0 = datetime(2026, 3, 2, 10, 0)
EMAIL, PHONE, USER, ANON = "zora.quux@example.org", "+49 171 9876543", "cust-77431", "anon-5e1f9"


def _person(store):
    add_person(store, USER, email=EMAIL, phone=PHONE, first_name="Zora", last_name="Quux")
    add_person(store, USER, email=EMAIL.upper(), source="loyalty")
    add_person(store, "cust-other", email="other@example.org", phone="+49 30 1234567")
    add_event(
        store,
        "Page Viewed",
        None,
        T0,
        anonymous_id=ANON,
        context={"ip": "203.0.113.9", "userAgent": "Firefox"},
        type_="page",
    )
    add_event(store, "alias", USER, T0, type_="alias")
    store.sql("UPDATE events SET previous_id = ? WHERE type = 'alias'", [ANON]).fetchall()
    add_event(
        store,
        "Order Completed",
        USER,
        T0,
        revenue=42.0,
        properties={"order_id": "o-1", "revenue": 42.0, "email": EMAIL},
        traits={"email": EMAIL, "name": "Zora Quux"},
    )
    add_event(
        store,
        "Order Completed",
        "cust-other",
        T0,
        revenue=10.0,
        properties={"order_id": "o-2", "note": f"gift for {EMAIL}"},
    )
    record_consent(
        store,
        USER,
        "email",
        "marketing",
        "granted",
        source="form",
        at=T0,
        proof={"ip": "203.0.113.9", "email": EMAIL},
    )
    record_consent(store, "cust-other", "email", "marketing", "granted", source="form", at=T0)
    # Another capability's table that names the person (e.g. Customize's recommendations).
    store.sql("CREATE TABLE IF NOT EXISTS scratch_scores (customer VARCHAR, payload JSON)").fetchall()
    store.sql(
        "INSERT INTO scratch_scores VALUES (?, NULL), ('cust-other', ?), ('x', ?)",
        [USER, json.dumps({"email": "other@example.org"}), json.dumps({"emails": [EMAIL]})],
    ).fetchall()
    camp = Campaign(
        "news",
        "News",
        "email",
        Template("Hi {{ customer.first_name }}", subject="Hi"),
        audience=[USER, "cust-other"],
        control_share=0.0,
    )
    run_campaigns(store, [camp], now=T0 + timedelta(hours=1))
    deliver_outbox(store, {"email": Channel("email", FakeTransport())}, now=T0 + timedelta(hours=1))


def _search(store, needles):
    """Every text, JSON and list column of every table, searched for each needle."""
    cols = store.sql(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND (data_type IN ('VARCHAR', 'JSON') OR data_type LIKE '%[]')"
    ).fetchall()
    hits = []
    for table, col in cols:
        for needle in needles:
            n = store.sql(
                f'SELECT count(*) FROM "{table}" WHERE contains(lower(CAST("{col}" AS VARCHAR)), ?)',
                [needle.lower()],
            ).fetchall()[0][0]
            if n:
                hits.append((table, col, needle, n))
    return hits


def test_export_has_everything(store):
    _person(store)
    data = export_profile(store, USER)
    json.dumps(data)  # JSON-able
    assert set(data["identifiers"]["emails"]) == {EMAIL, EMAIL.upper()}
    assert ANON in data["identifiers"]["anonymous_ids"]
    t = data["tables"]
    assert len(t["records"]) == 2 and len(t["consents"]) == 1 and len(t["messages"]) == 1
    assert {e["event"] for e in t["events"]} >= {"Page Viewed", "Order Completed", "Email Sent"}
    assert t["consents"][0]["proof"]["ip"] == "203.0.113.9"  # JSON parsed
    assert any(r["customer"] == USER for r in t["scratch_scores"])
    with pytest.raises(InputError, match="nothing in the store"):
        export_profile(store, "nobody")


def test_erase_leaves_no_trace_and_suppresses(store):
    _person(store)
    before = _search(store, [USER, EMAIL, "171 9876543", ANON])
    assert {h[0] for h in before} >= {"records", "events", "consents", "messages", "scratch_scores"}
    report = erase_profile(store, USER, reason="art. 17 request #114", at=T0 + timedelta(days=1))
    assert report["rows"]["records"] == 2 and report["suppression_entries_added"] >= 4
    assert _search(store, [USER, EMAIL, "171 9876543", "+491719876543", ANON, "Zora"]) == []
    # Others are untouched; anonymised events still count for aggregates.
    assert store.sql("SELECT count(*) FROM records WHERE user_id = 'cust-other'").fetchall()[0][0] == 1
    assert store.sql("SELECT sum(revenue) FROM events WHERE event = 'Order Completed'").fetchall() == [
        (52.0,)
    ]
    assert store.sql("SELECT count(*) FROM messages").fetchall()[0][0] == 2  # counts kept
    assert is_suppressed(store, email=" Zora.Quux@Example.org ")
    assert is_suppressed(store, phone="0171 9876543")  # same number, national form
    assert not is_suppressed(store, email="other@example.org")
    assert not store.sql("SELECT * FROM suppressions WHERE hash LIKE '%zora%'").fetchall()


def test_a_later_load_neither_recreates_nor_recontacts(store):
    _person(store)
    erase_profile(store, USER, reason="request", at=T0 + timedelta(days=1))
    # The same source file is loaded again, and a consent event for the person comes in.
    add_person(store, USER, email=EMAIL, phone=PHONE, first_name="Zora", last_name="Quux")
    add_event(
        store,
        "Consent Updated",
        USER,
        T0 + timedelta(days=2),
        properties={"channel": "email", "purpose": "marketing", "granted": True},
    )
    # A campaign run before the clean-up still cannot reach them: the gate checks the hashes.
    camp = Campaign(
        "again", "Again", "email", Template("Hi", subject="Hi"), audience=[USER], control_share=0.0
    )
    run = run_campaigns(store, [camp], now=T0 + timedelta(days=2, hours=1))[0]
    assert run.outcomes == {"suppressed": 1}
    out = apply_suppressions(store, at=T0 + timedelta(days=2, hours=2))
    assert out["re_erased"] == 1
    assert _search(store, [USER, EMAIL, ANON]) == []


def test_a_reloaded_shared_phone_re_erases_everyone_holding_it(store):
    """A suppressed phone found again on two customers' records re-erases both, as a suppressed
    e-mail does (and as the Spark engine step does); before, only one of them was chosen."""
    _person(store)
    erase_profile(store, USER, reason="request", at=T0 + timedelta(days=1))
    add_person(store, "cust-a", phone=PHONE, first_name="Ada", last_name="Quux")
    add_person(store, "cust-b", phone=PHONE, first_name="Ben", last_name="Quux")
    out = apply_suppressions(store, at=T0 + timedelta(days=2))
    assert out["re_erased"] == 2
    assert _search(store, ["cust-a", "cust-b"]) == []


def test_export_of_several_keys_is_each_keys_own_export(store):
    from xrm.interact import export_profiles

    _person(store)
    both = export_profiles(store, [USER, ANON, USER])  # a key given twice is exported once

    def same(d):
        return {k: v for k, v in d.items() if k != "exported_at"}

    assert list(both) == [USER, ANON]
    for key in (USER, ANON):
        assert same(both[key]) == same(export_profile(store, key))
    assert both[ANON]["customer"] == ANON and USER in both[ANON]["identifiers"]["user_ids"]
    with pytest.raises(InputError, match="'nobody'"):
        export_profiles(store, [USER, "nobody"])
