"""The console: a web UI for customer managers, served by ``xrm serve`` under ``/console``.

    >>> from xrm.web import console_router
    >>> app.include_router(console_router(settings))  # doctest: +SKIP

Server-rendered Jinja2 pages with a little vanilla JavaScript; every asset (styles, scripts, the
Vega chart libraries) is served from the package. Users have roles (admin, marketer, viewer) and a
language (de, en); sessions are signed cookies; every form POST carries a CSRF token.
FastAPI is imported only when the router is built, never by ``import xrm``. See docs/console.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xrm._lazy import lazy_exports

if TYPE_CHECKING:
    from xrm.web._customers import warm_console
    from xrm.web._passwords import hash_password, verify_password
    from xrm.web._router import console_router
    from xrm.web._users import (
        LANGUAGES,
        PERMISSIONS,
        ROLES,
        User,
        add_user,
        authenticate,
        can,
        ensure_demo_user,
        get_user,
        list_users,
        set_language,
        set_password,
    )

_WHERE = {
    "console_router": "_router",
    "warm_console": "_customers",
    "hash_password": "_passwords",
    "verify_password": "_passwords",
    **{name: "_users" for name in (
        "LANGUAGES", "PERMISSIONS", "ROLES", "User", "add_user", "authenticate", "can",
        "ensure_demo_user", "get_user", "list_users", "set_language", "set_password",
    )},
}

__all__ = [
    "LANGUAGES",
    "PERMISSIONS",
    "ROLES",
    "User",
    "add_user",
    "authenticate",
    "can",
    "console_router",
    "ensure_demo_user",
    "get_user",
    "hash_password",
    "list_users",
    "set_language",
    "set_password",
    "verify_password",
    "warm_console",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
