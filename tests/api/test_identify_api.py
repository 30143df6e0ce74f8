"""The review queue and golden records over HTTP, against the real app (uvicorn, real DuckDB file),
mounted behind an admin key by ``create_app``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xrm.config import Settings
from xrm.identify import IdentityRules, resolve_identities

from .live import KEY, Live, bearer, serve_in_thread


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = Settings(store_path=tmp_path / "xrm.duckdb", memory_limit="1GB", threads=1,
                        write_keys={KEY: "webshop"})
    yield from serve_in_thread(settings)  # the app as `xrm serve` builds it: /v1/identify included


def _grey(live: Live) -> None:
    """Same e-mail, nothing else known of the newsletter record: grey zone at a strict bar."""
    store = live.app.state.store
    store.sql("INSERT INTO records (record_id, source, source_key, first_name, last_name, email, account_id, "
              "updated_at) VALUES ('webshop:1', 'webshop', '1', 'Eva', 'Roth', 'eva.roth@gmx.de', 'E1', "
              "TIMESTAMP '2023-01-01')")
    store.sql("INSERT INTO records (record_id, source, source_key, email, updated_at) VALUES "
              "('newsletter:1', 'newsletter', '1', 'Eva.Roth@gmx.de ', TIMESTAMP '2023-02-01')")
    strict = {"linkage": {"link_probability": 1.0, "review_probability": 0.1}}
    resolve_identities(store, IdentityRules.from_mapping(strict))


def _profile(live: Live, record_id: str) -> int:
    (pid,), = live.rows("SELECT profile_id FROM profile_records WHERE record_id = ?", [record_id])
    return int(pid)


def test_review_accept_links_and_golden_record_shows_lineage(live: Live) -> None:
    _grey(live)
    admin = bearer(live.new_key("steward", "admin"))
    assert live.client.get("/v1/identify/review").status_code == 401  # no key, no personal data
    items = live.client.get("/v1/identify/review", headers=admin).json()["items"]
    assert [(i["record_a"], i["record_b"]) for i in items] == [("newsletter:1", "webshop:1")]
    assert items[0]["a"]["email"] == "eva.roth@gmx.de" and items[0]["weights"]["email"] > 0
    assert _profile(live, "webshop:1") != _profile(live, "newsletter:1")

    pair = {"record_a": "webshop:1", "record_b": "newsletter:1", "reason": "same e-mail, checked by phone"}
    r = live.client.post("/v1/identify/review/accept", json=pair, headers=admin)
    assert r.status_code == 200 and r.json()["decision"] == "accepted"
    pid = _profile(live, "webshop:1")
    assert _profile(live, "newsletter:1") == pid
    (by, reason), = live.rows("SELECT decided_by, reason FROM review_queue")
    assert by == "api:steward" and reason == pair["reason"]
    assert live.client.get("/v1/identify/review", headers=admin).json()["items"] == []

    golden = live.client.get(f"/v1/identify/profiles/{pid}/golden", headers=admin).json()
    assert golden["profile_id"] == pid
    assert golden["attributes"]["first_name"]["value"] == "Eva"
    assert golden["attributes"]["first_name"]["record_id"] == "webshop:1"
    actions = {a for (a,) in live.rows("SELECT action FROM api_audit")}
    assert {"identify.review.read", "identify.review.accepted", "identify.golden.read"} <= actions


def test_reject_and_bad_input_get_clear_errors(live: Live) -> None:
    _grey(live)
    admin = bearer(live.new_key("steward", "admin"))
    pair = {"record_a": "webshop:1", "record_b": "newsletter:1", "reason": "two people"}
    assert live.client.post("/v1/identify/review/reject", json=pair, headers=admin).status_code == 200
    assert _profile(live, "webshop:1") != _profile(live, "newsletter:1")

    r = live.client.post("/v1/identify/review/accept", json={**pair, "record_b": "nope:9"}, headers=admin)
    assert r.status_code == 404 and "nope:9" in r.json()["message"]
    r = live.client.post("/v1/identify/review/accept", json={**pair, "reason": ""}, headers=admin)
    assert r.status_code == 400 and "reason" in r.json()["message"]
    r = live.client.get("/v1/identify/review", params={"status": "maybe"}, headers=admin)
    assert r.status_code == 400 and "status" in r.json()["message"]
    r = live.client.get("/v1/identify/profiles/999/golden", headers=admin)
    assert r.status_code == 404 and "999" in r.json()["message"]
