"""Console users: roles, languages, hashed passwords (table ``console_users``).

    >>> add_user(store, "anna", "a-long-password", role="marketer", lang="de")  # doctest: +SKIP
    >>> authenticate(store, "anna", "a-long-password").role                      # doctest: +SKIP
    'marketer'
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from xrm.exceptions import InputError, NotFound
from xrm.web._passwords import hash_password, verify_password

__all__ = [
    "LANGUAGES",
    "PERMISSIONS",
    "ROLES",
    "User",
    "add_user",
    "authenticate",
    "can",
    "ensure_demo_user",
    "get_user",
    "list_users",
    "set_language",
    "set_password",
]

ROLES = ("admin", "marketer", "viewer")
LANGUAGES = ("de", "en")
MIN_PASSWORD = 10
DEMO_USER = "demo"

# What each role may do; every page is readable by every role ("view").
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "campaign": frozenset({"admin", "marketer"}),  # create, preview, dry run
    "launch": frozenset({"admin", "marketer"}),
    "decide": frozenset({"admin", "marketer"}),  # identity review, next best action
    "export": frozenset({"admin", "marketer"}),
    "erase": frozenset({"admin"}),
}

_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class User:
    username: str
    role: str
    lang: str
    session_epoch: int
    disabled: bool = False

    def can(self, action: str) -> bool:
        return can(self.role, action)


def can(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action`` (a key of :data:`PERMISSIONS`)."""
    if action not in PERMISSIONS:
        raise InputError(f"action {action!r} is not known; use one of {', '.join(PERMISSIONS)}")
    return role in PERMISSIONS[action]


def _check(username: str, password: str | None, role: str | None, lang: str | None) -> None:
    problems = []
    if not _NAME.fullmatch(username):
        problems.append(
            f"username = {username!r}: use 1 to 64 lower-case letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    if password is not None and len(password) < MIN_PASSWORD:
        problems.append(f"password: at least {MIN_PASSWORD} characters (got {len(password)})")
    if role is not None and role not in ROLES:
        problems.append(f"role = {role!r}: use one of {', '.join(ROLES)}")
    if lang is not None and lang not in LANGUAGES:
        problems.append(f"lang = {lang!r}: use one of {', '.join(LANGUAGES)}")
    if problems:
        raise InputError("console user: " + "; ".join(problems))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def add_user(store: Any, username: str, password: str, *, role: str = "viewer", lang: str = "de") -> User:
    """Create a user; :class:`InputError` if the name is taken or a value breaks a rule."""
    _check(username, password, role, lang)
    if store.sql("SELECT 1 FROM console_users WHERE username = ?", [username]).fetchall():
        raise InputError(
            f"console user {username!r} exists already; change the password with `xrm users passwd`"
        )
    now = _now()
    store.sql(
        "INSERT INTO console_users (username, password_hash, role, lang, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [username, hash_password(password), role, lang, now, now],
    )
    return User(username, role, lang, 0)


def get_user(store: Any, username: str) -> User:
    rows = store.sql(
        "SELECT username, role, lang, session_epoch, disabled FROM console_users WHERE username = ?",
        [username],
    ).fetchall()
    if not rows:
        raise NotFound(f"no console user {username!r}; create one with `xrm users add {username}`")
    return User(*rows[0])


def list_users(store: Any) -> list[User]:
    rows = store.sql(
        "SELECT username, role, lang, session_epoch, disabled FROM console_users ORDER BY username"
    ).fetchall()
    return [User(*r) for r in rows]


def set_password(store: Any, username: str, password: str) -> User:
    """Change a password; sessions opened with the old one end."""
    _check(username, password, None, None)
    get_user(store, username)
    store.sql(
        "UPDATE console_users SET password_hash = ?, session_epoch = session_epoch + 1, "
        "updated_at = ? WHERE username = ?",
        [hash_password(password), _now(), username],
    )
    return get_user(store, username)


def set_language(store: Any, username: str, lang: str) -> User:
    _check(username, None, None, lang)
    store.sql("UPDATE console_users SET lang = ?, updated_at = ? WHERE username = ?",
              [lang, _now(), username])
    return get_user(store, username)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def authenticate(store: Any, username: str, password: str) -> User | None:
    """The user if the password is right and the user is not disabled, else None."""
    rows = store.sql(
        "SELECT password_hash FROM console_users WHERE username = ? AND NOT disabled", [username]
    ).fetchall()
    if not rows:
        # Hash anyway, so a wrong name takes as long as a wrong password.
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, rows[0][0]):
        return None
    return get_user(store, username)


def ensure_demo_user(store: Any) -> tuple[str, str]:
    """``make demo``'s login: an admin ``demo`` with a new random password each call."""
    password = secrets.token_urlsafe(12)
    if store.sql("SELECT 1 FROM console_users WHERE username = ?", [DEMO_USER]).fetchall():
        set_password(store, DEMO_USER, password)
        store.sql("UPDATE console_users SET role = 'admin', disabled = false WHERE username = ?",
                  [DEMO_USER])
    else:
        add_user(store, DEMO_USER, password, role="admin", lang="de")
    return DEMO_USER, password
