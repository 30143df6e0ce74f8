"""POST /v1/decide on a live server (uvicorn in a thread) over a real store with orders and offers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xrm.config import Settings
from xrm.customize import Offer, add_offers, build_recommendations
from xrm.interact import record_consent
from xrm.store import Store

from .live import KEY, Live, bearer, serve_in_thread

T0 = datetime(2026, 1, 1)


def _shop(settings: Settings) -> None:
    """Twelve customers: even ones buy espresso beans every 5 weeks, odd ones green tea."""
    events, lines = [], []
    for c in range(12):
        for b in range(6):
            mid = f"m-{c}-{b}"
            when = T0 + timedelta(days=35 * b)
            events.append((mid, "track", "Order Completed", f"u{c}", when, f"o{c}-{b}"))
            product = "beans" if c % 2 == 0 else "tea"
            name = {"beans": "espresso beans", "tea": "green tea"}[product]
            lines.append((mid, 0, f"o{c}-{b}", product, name, 4.0, 1.0))
    with Store.open(settings) as store:
        with store.transaction() as tx:
            tx.executemany("INSERT INTO events (message_id, type, event, user_id, ts, order_id) "
                           "VALUES (?, ?, ?, ?, ?, ?)", events)
            tx.executemany("INSERT INTO order_lines (message_id, line_no, order_id, product_id, name, price, "
                           "quantity) VALUES (?, ?, ?, ?, ?, ?, ?)", lines)
        build_recommendations(store, k=4)
        add_offers(store, [
            Offer("espresso", "product", "Espresso beans 1 kg", 4.10, category="coffee",
                  product_ids=("beans",)),
            Offer("tea", "product", "Green tea", 3.0, category="tea", product_ids=("tea",)),
            Offer("guide", "content", "Brewing guide", 0.8, category="content", channels=("web",),
                  consent_purpose=None),
        ])
        record_consent(store, "u0", "email", "marketing", "granted", source="test", at=T0)


def _as_reader(live: Live) -> Live:
    """Decisions read a profile: every call of this client carries a key of scope read."""
    live.client.headers.update(bearer(live.new_key("decider", "read")))
    return live


@pytest.fixture
def shop(api_settings: Settings) -> Iterator[Live]:
    _shop(api_settings)
    for live in serve_in_thread(api_settings):
        yield _as_reader(live)


def _decide(live: Live, **body: Any) -> dict[str, Any]:
    r = live.client.post("/v1/decide", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _track(live: Live, user: str, event: str, properties: dict[str, Any]) -> None:
    r = live.client.post("/v1/track", json={"userId": user, "event": event, "properties": properties},
                         auth=(KEY, ""))
    assert r.status_code == 200, r.text


def test_decide_ranks_offers_with_explanations_and_logs_the_decision(shop: Live) -> None:
    d = _decide(shop, userId="u0", context={"channel": "web", "placement": "home"}, limit=3)
    assert d["customer"] == {"key": "user_id", "id": "u0", "known": True, "profileId": None,
                             "matchedBy": "userId"}
    top = d["offers"][0]
    assert top["offerId"] == "espresso"
    assert "bought espresso beans every 5 weeks" in top["explanation"]
    assert top["expectedValue"] == pytest.approx(top["pResponse"] * top["value"] - top["cost"], abs=1e-5)
    assert 0 < top["propensity"] <= 1
    # Logged within the flush interval, with the same ranking.
    for _ in range(100):
        rows = shop.rows("SELECT offer_id FROM decision_items WHERE decision_id = ? ORDER BY rank",
                         [d["decisionId"]])
        if rows:
            break
        time.sleep(0.05)
    assert [r[0] for r in rows] == [o["offerId"] for o in d["offers"]]
    (customer, placement), = shop.rows("SELECT customer, placement FROM decisions WHERE decision_id = ?",
                                       [d["decisionId"]])
    assert (customer, placement) == ("u0", "home")


def test_a_response_event_with_the_decision_id_changes_the_next_decision(shop: Live) -> None:
    first = _decide(shop, userId="u2", context={"channel": "web"}, limit=3)
    offer = next(o for o in first["offers"] if o["offerId"] == "espresso")
    for _ in range(3):
        _track(shop, "u2", "Offer Purchased", {"decision_id": first["decisionId"], "offer_id": "espresso"})
    # Applied before the track calls were answered: the very next decision sees it.
    after = _decide(shop, userId="u2", context={"channel": "web"}, limit=3)
    again = next(o for o in after["offers"] if o["offerId"] == "espresso")
    assert again["pMean"] > offer["pMean"]
    assert shop.rows("SELECT count(*) FROM responses WHERE decision_id = ?", [first["decisionId"]]) == [(3,)]
    (n_responses,), = shop.rows("SELECT n_responses FROM bandit_state WHERE offer_id = 'espresso'")
    assert n_responses == 3


def test_consent_withdrawn_means_the_offer_is_no_longer_returned(shop: Live) -> None:
    before = _decide(shop, userId="u0", context={"channel": "email"}, limit=3)
    assert "espresso" in {o["offerId"] for o in before["offers"]}
    _track(shop, "u0", "Consent Updated", {"channel": "email", "purpose": "marketing", "granted": False})
    after = _decide(shop, userId="u0", context={"channel": "email"}, limit=3)
    assert after["offers"] == []
    assert after["ineligible"]["espresso"] == "no valid email consent for marketing"
    # Without any consent, e-mail offers are not made; web placements need none.
    assert _decide(shop, userId="u4", context={"channel": "email"})["offers"] == []
    assert _decide(shop, userId="u4", context={"channel": "web"})["offers"]


def test_an_unknown_customer_gets_the_new_customer_path(shop: Live) -> None:
    d = _decide(shop, anonymousId="visitor-1", context={"channel": "web"}, limit=2)
    assert d["customer"]["known"] is False
    assert d["customer"]["id"] == "anonymous_id:visitor-1"
    assert d["offers"], "popular offers for a stranger"
    assert any("new customer; bought by 50% of customers" in o["explanation"] for o in d["offers"])


def test_a_bad_body_is_a_400_in_the_one_error_shape(live: Live) -> None:
    anonymous = live.client.post("/v1/decide", json={"userId": "u0", "context": {"channel": "web"}})
    assert anonymous.status_code == 401  # a decision reads a profile: it needs a key of scope read
    writer = live.client.post("/v1/decide", json={"userId": "u0", "context": {"channel": "web"}},
                              auth=(KEY, ""))
    assert writer.status_code in (401, 403) and "code" in writer.json()
    _as_reader(live)
    for body, words in [
        ({"context": {"channel": "web"}}, "no identifier: give one of userId"),
        ({"userId": "u0"}, "context: Field required"),
        ({"userId": "u0", "context": {"channel": "web"}, "limit": 0}, "limit: Input should be greater than"),
        ({"userId": "u0", "context": {"channel": "web"}, "colour": "red"}, "colour: Extra inputs are not"),
        ({"profileId": "seven", "context": {"channel": "web"}}, "profileId: Input should be a valid integer"),
    ]:
        r = live.client.post("/v1/decide", json=body)
        assert r.status_code == 400, body
        assert r.json()["code"] == "invalid_request"
        assert words in r.json()["message"], r.json()
    # An empty store is no error either: nobody is known and there is nothing to offer yet.
    body = {"email": "neu@kaffee-kunde.de", "context": {"channel": "web"}}
    d = live.client.post("/v1/decide", json=body).json()
    assert (d["customer"]["known"], d["offers"]) == (False, [])


def test_the_gate_reads_consent_as_interact_does(api_settings: Settings) -> None:
    """Property: for random consent histories (ties, expiries, several user ids), the gate's
    in-memory answer equals Interact's query, and a new entry is seen by the next check."""
    import random

    from xrm.api._decide import Gate, Identities, Who
    from xrm.interact._consent import valid_customers

    rng = random.Random(11)
    at = T0 + timedelta(days=30)
    with Store.open(api_settings) as store:
        gate = Gate(store, Identities())
        cur = store.con.cursor()
        # Profiles 1 and 2 hold several user ids: the newest entry under any of them counts.
        cur.executemany("INSERT INTO identifiers (id_type, id_value, profile_id) VALUES ('user_id', ?, ?)",
                        [("c1", 1), ("c2", 1), ("c3", 2), ("c4", 2), ("c5", 2)])
        for n in range(60):
            user = f"c{rng.randrange(8)}"
            given = T0 + timedelta(days=rng.choice([1, 5, 5, 20, 40]))
            expires = rng.choice([None, None, T0 + timedelta(days=rng.choice([10, 29, 60]))])
            status = rng.choice(["granted", "granted", "denied", "revoked", "pending"])
            record_consent(store, user, rng.choice(["email", "sms"]), "marketing", status, source="t",
                           at=given, expires_at=expires)
            if n % 6:
                continue
            for who, pid in ((["c0"], None), (["c1", "c2"], 1), (["c3", "c4", "c5"], 2), (["c7"], None)):
                for channel in ("email", "sms"):
                    gate.refusal(cur, Who(who[0], True, None, tuple(who), "userId"), channel, at)
                    expected = bool(valid_customers(cur, who, channel, "marketing", at) if pid is None
                                    else valid_customers(cur, [str(pid)], channel, "marketing", at,
                                                         customer_key="profile_id"))
                    assert gate.consented(who, channel, "marketing", at) == expected, (who, channel)
        cur.close()


def _wait_rows(live: Live, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows written by the decision-log flush (at most FLUSH_EVERY_S after): poll that and more."""
    from xrm.api._decide import FLUSH_EVERY_S

    for _ in range(int(FLUSH_EVERY_S / 0.05) + 100):
        rows = live.rows(sql, params)
        if rows:
            return rows
        time.sleep(0.05)
    return []


def test_a_decision_is_audited_with_the_key_and_the_profile(api_settings: Settings) -> None:
    _shop(api_settings)
    with Store.open(api_settings) as store:  # u0 belongs to profile 7 (another id of theirs: u0-app)
        store.sql("INSERT INTO profiles (profile_id, status, created_at, updated_at) "
                  "VALUES (7, 'active', now(), now())")
        store.sql("INSERT INTO identifiers (id_type, id_value, profile_id) VALUES "
                  "('user_id', 'u0', 7), ('user_id', 'u0-app', 7)")
    for live in serve_in_thread(api_settings):
        _as_reader(live)
        r = live.client.post("/v1/decide", json={"userId": "u0", "context": {"channel": "web"}},
                             headers={"X-Xrm-Purpose": "homepage offers"})
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["customer"]["profileId"] == 7
        rows = _wait_rows(live, "SELECT key_name, action, target, purpose, method, path FROM api_audit "
                          "WHERE action = 'profile.decide'", [])
        assert rows == [("decider", "profile.decide", "7", "homepage offers", "POST", "/v1/decide")]
        # Written in the same transaction as the decision it audits.
        assert live.rows("SELECT count(*) FROM decisions WHERE decision_id = ?", [d["decisionId"]]) == [(1,)]
        # A stranger's identifier is not written to the audit log (it may be personal data).
        _decide(live, email="neu@kaffee-kunde.de", context={"channel": "web"})
        rows = _wait_rows(live, "SELECT target FROM api_audit WHERE action = 'profile.decide' "
                          "ORDER BY audit_id OFFSET 1", [])
        assert rows == [(None,)]


def test_writes_from_any_path_are_seen_by_the_very_next_decision(shop: Live) -> None:
    """Consent, caps and suppression are held in memory: a write committed through the store
    directly (not the event API: a console or campaign path) still decides the next call."""
    from xrm.interact._suppression import suppress

    store: Store = shop.app.state.store
    email = {"userId": "u6", "context": {"channel": "email"}}
    assert _decide(shop, **email)["offers"] == []  # no consent yet; the gate's memory is warm
    for round_ in range(3):
        record_consent(store, "u6", "email", "marketing", "granted", source="console")
        assert "espresso" in {o["offerId"] for o in _decide(shop, **email)["offers"]}, round_
        record_consent(store, "u6", "email", "marketing", "revoked", source="console")
        after = _decide(shop, **email)
        assert after["offers"] == [] and "no valid email consent" in after["ineligible"]["espresso"]
    record_consent(store, "u6", "email", "marketing", "granted", source="console")
    sent = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
    store.sql("INSERT INTO messages (message_id, customer, channel, purpose, status, not_before, created_at, "
              "sent_at) VALUES ('m-u6', 'u6', 'email', 'marketing', 'sent', ?, ?, ?)", [sent, sent, sent])
    capped = _decide(shop, **email)
    assert capped["offers"] == []
    assert capped["ineligible"]["espresso"] == "contact policy: email cap of 1 in 24 hours reached"
    with store.transaction() as tx:
        suppress(tx, {"customer": ["u8"]}, reason="erasure", at=sent, region=store.settings.default_region)
    record_consent(store, "u8", "email", "marketing", "granted", source="console")
    gone = _decide(shop, userId="u8", context={"channel": "email"})
    assert gone["offers"] == [] and gone["ineligible"]["espresso"].startswith("suppressed")


def test_the_write_stamp_moves_with_every_commit_and_only_then(api_settings: Settings) -> None:
    from pathlib import Path

    from xrm.api._decide import _file_stamp

    with Store.open(api_settings) as store:
        path = Path(store.path)
        seen = {_file_stamp(path)}
        for n in range(40):
            record_consent(store, f"c{n}", "email", "marketing", "granted", source="t")
            now = _file_stamp(path)
            assert now not in seen, n  # each commit: a new stamp, never an old one again
            seen.add(now)
            store.sql("SELECT count(*) FROM consents").fetchall()
            assert _file_stamp(path) == now  # reading moves nothing
        store.sql("CHECKPOINT")
        assert _file_stamp(path) not in seen


def test_a_read_right_after_the_stamp_moved_is_not_trusted_alone(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit's log is written before the commit is visible: a read that began within SETTLE_S
    of the stamp's first sighting may have missed it, so the next decision reads again."""
    from xrm.api._decide import SETTLE_S, Gate, Identities

    with Store.open(api_settings) as store:
        gate = Gate(store, Identities())
        cur = store.con.cursor()
        record_consent(store, "u1", "email", "marketing", "granted", source="t")
        gate.fresh(cur)  # the stamp is new: read, but not settled
        reads: list[int] = []
        real = gate._sync

        def counted(c: Any) -> None:
            reads.append(1)
            real(c)

        monkeypatch.setattr(gate, "_sync", counted)
        assert not gate._settled
        gate.fresh(cur)
        assert len(reads) == 1  # not trusted alone: read again
        time.sleep(SETTLE_S)
        gate.fresh(cur)  # began SETTLE_S after the first sighting (if the last one did not): settled
        assert gate._settled
        n = len(reads)
        gate.fresh(cur)
        gate.fresh(cur)
        assert len(reads) == n  # settled and nothing committed since: no read
        record_consent(store, "u1", "email", "marketing", "revoked", source="t")
        gate.fresh(cur)
        assert len(reads) == n + 1 and not gate._settled
        assert not gate.consented(["u1"], "email", "marketing", datetime(2100, 1, 1))
        cur.close()


def test_the_identity_cache_is_bounded_and_reads_what_it_dropped(api_settings: Settings) -> None:
    """Issue 10: the decide path's identity graph holds at most ``limit`` entries a map however many
    people there are; one dropped (or never loaded) is read from the store and decided the same."""
    from xrm.api._decide import DecideRequest, Identities, _find, _State
    from xrm.customize import Decider

    _shop(api_settings)
    n, limit = 40, 8
    with Store.open(api_settings) as store:
        with store.transaction() as tx:  # p0..p39: profile 100 + i, with a user id and an e-mail each
            tx.executemany(
                "INSERT INTO profiles (profile_id, status, merged_into, created_at, updated_at) "
                "VALUES (?, ?, ?, now(), now())",
                [(100 + i, "merged" if i == n - 1 else "active", 100 if i == n - 1 else None)
                 for i in range(n)])
            tx.executemany("INSERT INTO identifiers (id_type, id_value, profile_id) VALUES ('user_id', ?, ?)",
                           [(f"p{i}", 100 + i) for i in range(n)] + [("u3", 103), ("zz1", 101)])
            tx.executemany("INSERT INTO profile_evidence (profile_id, id_type, id_value) "
                           "VALUES (?, 'email', ?)", [(100 + i, f"p{i}@kunde.de") for i in range(n)])
        decider = Decider(store, check_every=None)
        settings = store.settings
        store.settings = settings.model_copy(update={"api_decide_cache": 77})
        assert _State(store).ids.limit == 77  # the setting sizes the server's
        store.settings = settings
        state = _State(store)
        state.ids = state.gate.ids = Identities(limit)
        state.decider = decider
        try:
            def who(**ident: Any) -> Any:
                state.gate.fresh(state.cur)
                body = DecideRequest.model_validate({**ident, "context": {"channel": "web"}})
                return _find(state, decider, body)

            for _ in range(2):  # the second round finds what the first one's later people pushed out
                for i in range(n - 1):
                    # Consent is kept under each user id: none may be missing (zz1 is past the first load).
                    mine = {1: ("p1", "zz1"), 3: ("p3", "u3")}.get(i, (f"p{i}",))
                    w = who(userId=f"p{i}")
                    assert (w.profile_id, w.user_ids, w.matched) == (100 + i, mine, "userId"), i
                    assert who(email=f"P{i}@kunde.de").profile_id == 100 + i
                    assert who(profileId=100 + i).user_ids == mine
                # A merged profile points on to its survivor, read from the store when not held.
                assert who(profileId=100 + n - 1).profile_id == 100
                # A customer the decider knows (u3) is audited under their profile, held or not.
                assert who(userId="u3").profile_id == 103
            ids = state.ids
            maps = ("pid_of", "glue", "evidence", "users", "status")
            sizes = {name: len(getattr(ids, name)) for name in maps}
            assert max(sizes.values()) <= limit and not ids.complete, sizes
            # Strangers are remembered while no identifier is added; a new one is seen at once.
            assert who(email="neu@kunde.de").profile_id is None
            assert ("email", "neu@kunde.de") in ids.strangers
            store.sql("INSERT INTO profile_evidence (profile_id, id_type, id_value) VALUES (101, 'email', "
                      "'neu@kunde.de')")
            assert who(email="neu@kunde.de").profile_id == 101
            # New people arriving by events (the writer's hook) do not grow it either.
            ids.reread(state.cur, user_ids=[f"p{i}" for i in range(n)])
            assert max(len(getattr(ids, m)) for m in ("pid_of", "glue", "users", "status")) <= limit
        finally:
            state.executor.shutdown()
            state.cur.close()


def test_the_fast_path_keeps_the_routes_contract(shop: Live) -> None:
    """/v1/decide is answered before FastAPI's routing (xrm.api._decide_asgi): still documented in
    the OpenAPI, the purpose from the query audited, limits and other methods answered as before."""
    spec = shop.client.get("/openapi.json").json()
    assert "DecideRequest" in str(spec["paths"]["/v1/decide"]["post"]["requestBody"])
    d = shop.client.post("/v1/decide?purpose=newsletter%20offers", json={"userId": "u0", "context": {
        "channel": "web"}})
    assert d.status_code == 200 and d.headers["content-type"] == "application/json"
    rows = _wait_rows(shop, "SELECT purpose, path FROM api_audit WHERE action = 'profile.decide'", [])
    assert rows == [("newsletter offers", "/v1/decide")]
    long = shop.client.post("/v1/decide", json={"userId": "u0", "context": {"channel": "web"}},
                            headers={"X-Xrm-Purpose": "x" * 1000})
    assert (long.status_code, long.json()["code"]) == (400, "invalid_request")
    assert "purpose: 1000 characters" in long.json()["message"]
    padded = {"userId": "u0", "context": {"channel": "web", "pad": "x" * 40_000}}
    big = shop.client.post("/v1/decide", json=padded)
    assert (big.status_code, big.json()["code"]) == (413, "payload_too_large")
    broken = shop.client.post("/v1/decide", content=b"{not json",
                              headers={"Content-Type": "application/json"})
    assert (broken.status_code, broken.json()["code"]) == (400, "invalid_request")
    assert shop.client.get("/v1/decide").status_code == 405  # not POST: FastAPI answers, as before
