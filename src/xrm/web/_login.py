"""Log in, log out, switch language."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import RedirectResponse

from xrm.web._context import LOGIN_COOKIE, PREFIX, SESSION_COOKIE, Ctx, page
from xrm.web._sessions import SESSION_SECONDS, new_session_id
from xrm.web._users import LANGUAGES, authenticate, set_language

__all__ = ["lang", "login_form", "login_submit", "logout"]


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an absolute URL (open redirect).
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


@page(None)
def login_form(ctx: Ctx) -> Response:
    if ctx.user is not None:
        return RedirectResponse(_safe_next(ctx.query.get("next")), status_code=303)
    return ctx.render("login.html", next=ctx.query.get("next", ""), failed=False)


@page(None)
def login_submit(ctx: Ctx) -> Response:
    user = authenticate(ctx.store, ctx.form.get("username", "").strip().lower(), ctx.form.get("password", ""))
    if user is None:
        return ctx.render("login.html", status=401, next=ctx.form.get("next", ""), failed=True)
    response = RedirectResponse(_safe_next(ctx.form.get("next")), status_code=303)
    # A new session id at login, so a pre-login id planted by someone else is worth nothing.
    cookie = ctx.signer.sign({"u": user.username, "e": user.session_epoch, "s": new_session_id()})
    secure = ctx.request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True, samesite="lax",
                        secure=secure, path=PREFIX)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@page("view")
def logout(ctx: Ctx) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@page("view")
def lang(ctx: Ctx) -> Response:
    wanted = ctx.form.get("lang", "")
    if ctx.user is not None and wanted in LANGUAGES:
        set_language(ctx.store, ctx.user.username, wanted)
    return RedirectResponse(_safe_next(ctx.form.get("back")), status_code=303)
