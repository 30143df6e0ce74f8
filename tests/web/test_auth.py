"""Passwords, sessions, roles and CSRF: the console refuses what it must refuse."""

from __future__ import annotations

import time
from typing import Any

import pytest

from xrm.config import Settings
from xrm.exceptions import InputError
from xrm.store import Store
from xrm.web import (
    PERMISSIONS,
    add_user,
    authenticate,
    can,
    ensure_demo_user,
    hash_password,
    set_password,
    verify_password,
)
from xrm.web._sessions import Signer

from .conftest import PASSWORD, csrf_of, login


def test_password_hashes_are_salted_scrypt_and_verify() -> None:
    a, b = hash_password("a long password"), hash_password("a long password")
    assert a != b and a.startswith("scrypt$") and "a long password" not in a
    assert verify_password("a long password", a) and verify_password("a long password", b)
    assert not verify_password("a long passworD", a)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "scrypt$1$2")


def test_signed_cookie_refuses_tampering_and_age() -> None:
    signer = Signer(b"k" * 32)
    token = signer.sign({"u": "anna", "e": 0, "s": "sid"}, now=1000)
    assert signer.unsign(token, max_age=60, now=1030) == {"u": "anna", "e": 0, "s": "sid"}
    assert signer.unsign(token, max_age=60, now=1100) is None  # too old
    body, stamp, mac = token.split(".")
    assert signer.unsign(f"{body}.{int(stamp) + 50}.{mac}", max_age=60, now=1060) is None  # re-dated
    assert signer.unsign(token, max_age=60, now=1030) is not None
    assert Signer(b"o" * 32).unsign(token, max_age=60, now=1030) is None  # other key
    assert signer.check_csrf("sid", signer.csrf_token("sid")) and not signer.check_csrf("sid", "x")
    assert not signer.check_csrf("other", signer.csrf_token("sid"))


def test_user_rules_are_reported_together(store: Store) -> None:
    with pytest.raises(InputError) as err:
        add_user(store, "Bad Name", "short", role="boss", lang="fr")
    text = str(err.value)
    assert "username = 'Bad Name'" in text and "at least 10" in text and "role = 'boss'" in text
    assert "lang = 'fr'" in text
    add_user(store, "anna", PASSWORD, role="marketer")
    with pytest.raises(InputError, match="exists already"):
        add_user(store, "anna", PASSWORD)
    assert authenticate(store, "anna", PASSWORD).role == "marketer"  # type: ignore[union-attr]
    assert authenticate(store, "anna", "wrong password!") is None
    assert authenticate(store, "nobody", PASSWORD) is None
    assert set_password(store, "anna", "another long one").session_epoch == 1
    assert authenticate(store, "anna", PASSWORD) is None


def test_roles_matrix() -> None:
    assert can("viewer", "view") and not any(can("viewer", a) for a in ("export", "erase", "launch"))
    assert can("marketer", "launch") and can("marketer", "export") and not can("marketer", "erase")
    assert all(can("admin", a) for a in PERMISSIONS)
    with pytest.raises(InputError):
        can("admin", "fly")


def test_demo_user_is_an_admin_with_a_fresh_password(store: Store) -> None:
    name, pw1 = ensure_demo_user(store)
    _, pw2 = ensure_demo_user(store)
    assert name == "demo" and pw1 != pw2
    assert authenticate(store, name, pw1) is None
    user = authenticate(store, name, pw2)
    assert user is not None and user.role == "admin"


def test_pages_need_a_login(client: Any) -> None:
    r = client.get("/console/customers?q=x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    assert login(client, "viewer", "wrong password!").status_code == 401
    r = login(client, "viewer")
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    assert "httponly" in r.headers["set-cookie"].lower()
    assert client.get("/console/", follow_redirects=False).status_code == 200


def test_login_never_redirects_off_site(client: Any) -> None:
    token = csrf_of(client.get("/console/login").text)
    r = client.post("/console/login", data={"username": "viewer", "password": PASSWORD, "csrf": token,
                                             "next": "https://evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/console/"


def test_login_needs_the_forms_csrf_token(client: Any) -> None:
    client.get("/console/login")
    r = client.post("/console/login", data={"username": "viewer", "password": PASSWORD, "csrf": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403 and "xrm_session" not in r.headers.get("set-cookie", "")


def test_post_without_or_with_a_foreign_csrf_token_is_refused(client: Any, users_store: Settings) -> None:
    login(client, "admin")
    page = client.get("/console/")
    for data in ({"lang": "de", "back": "/console/"}, {"lang": "de", "csrf": "x" * 24}):
        r = client.post("/console/lang", data=data, follow_redirects=False)
        assert r.status_code == 403 and "form has expired" in r.text
    # a token of another session (the viewer's) does not pass either
    from .conftest import test_client

    other = test_client(client.app)  # another browser on the same server (its lifespan runs once)
    login(other, "viewer")
    foreign = csrf_of(other.get("/console/").text)
    r = client.post("/console/lang", data={"lang": "de", "csrf": foreign}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/console/lang", data={"lang": "de", "csrf": csrf_of(page.text), "back": "/console/"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "Überblick" in client.get("/console/").text


@pytest.mark.parametrize(("role", "allowed"), [("viewer", False), ("marketer", True)])
def test_viewer_cannot_export_erase_or_launch(client: Any, role: str, allowed: bool) -> None:
    login(client, role)
    token = csrf_of(client.get("/console/").text)
    r = client.get("/console/customers/1/export")
    assert (r.status_code == 403) is not allowed
    for url in ("/console/campaigns/x/launch", "/console/customers/1/erase", "/console/quality/review"):
        r = client.post(url, data={"csrf": token, "reason": "test"})
        refused = r.status_code == 403 and "may not do this" in r.text
        expected = not allowed or url.endswith("/erase")  # erasing is for admins only
        assert refused is expected, (role, url, r.status_code)


def test_password_change_ends_open_sessions(client: Any, users_store: Settings) -> None:
    login(client, "marketer")
    assert client.get("/console/", follow_redirects=False).status_code == 200
    set_password(client.app.state.store, "marketer", "a brand new password")  # the server's own store
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_logins_take_the_same_time_for_unknown_users(store: Store) -> None:
    add_user(store, "anna", PASSWORD)
    authenticate(store, "ghost", "x" * 12)  # warm the dummy hash
    t0 = time.perf_counter()
    authenticate(store, "anna", "wrong password!")
    known = time.perf_counter() - t0
    t0 = time.perf_counter()
    authenticate(store, "ghost", "wrong password!")
    unknown = time.perf_counter() - t0
    assert unknown > known / 4  # both pay for one scrypt hash
