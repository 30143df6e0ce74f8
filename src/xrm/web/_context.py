"""One console request: its user, language, CSRF token and store; the ``page`` wrapper that
checks login, role and CSRF before a handler runs and turns errors into pages.

    >>> @page("launch")
    ... def launch(ctx: Ctx) -> Response: ...  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from xrm.exceptions import InputError, NotFound, NotYetImplemented, XrmError
from xrm.web._i18n import translate
from xrm.web._render import render_page
from xrm.web._sessions import SESSION_SECONDS, Signer, console_key, new_session_id
from xrm.web._users import PERMISSIONS, User, get_user

__all__ = ["LOGIN_COOKIE", "PREFIX", "SESSION_COOKIE", "Ctx", "page"]

PREFIX = "/console"
SESSION_COOKIE = "xrm_session"
LOGIN_COOKIE = "xrm_login"  # a pre-session id, so the login form has a CSRF token too
MAX_FORM_BYTES = 64 * 1024
# Everything comes from the console itself; Vega compiles its expressions ('unsafe-eval').
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")

Handler = Callable[["Ctx"], Response]


@dataclass
class Ctx:
    request: Request
    store: Any
    signer: Signer
    session_id: str
    user: User | None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        if self.user is not None:
            return self.user.lang
        wanted = self.request.query_params.get("lang")
        return wanted if wanted in ("de", "en") else "de"

    @property
    def csrf(self) -> str:
        return self.signer.csrf_token(self.session_id)

    @property
    def query(self) -> Any:
        return self.request.query_params

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def t(self, key: str, **values: Any) -> str:
        return translate(self.lang, key, **values)

    def render(self, template: str, status: int = 200, **data: Any) -> HTMLResponse:
        data.setdefault("flash", self.query.get("flash"))
        data.setdefault("currency", self.store.settings.currency)
        html = render_page(template, lang=self.lang, data={
            "user": self.user, "csrf": self.csrf, "prefix": PREFIX, "path": self.request.url.path,
            **data,
        })
        return HTMLResponse(html, status_code=status)

    def redirect(self, path: str, flash: str | None = None) -> RedirectResponse:
        url = f"{PREFIX}{path}"
        if flash:
            url += ("&" if "?" in url else "?") + "flash=" + quote(flash)
        return RedirectResponse(url, status_code=303)

    def error(self, status: int, title_key: str, message: str) -> HTMLResponse:
        return self.render("error.html", status=status, title=self.t(title_key), message=message)


def _signer(request: Request, store: Any) -> Signer:
    signer = getattr(request.app.state, "console_signer", None)
    if signer is None:
        signer = Signer(console_key(store))
        request.app.state.console_signer = signer
    return signer


def _session_user(store: Any, signer: Signer, request: Request) -> tuple[User | None, str | None]:
    payload = signer.unsign(request.cookies.get(SESSION_COOKIE), max_age=SESSION_SECONDS)
    if not payload:
        return None, None
    try:
        user = get_user(store, str(payload.get("u")))
    except NotFound:
        return None, None
    if user.disabled or user.session_epoch != payload.get("e"):
        return None, None
    return user, str(payload.get("s"))


def _handle(fn: Handler, action: str | None, request: Request, form: dict[str, str]) -> Response:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise RuntimeError(
            "the console needs app.state.store (an open xrm.store.Store); include console_router "
            "in an app whose lifespan opens the store, e.g. xrm.api.create_app(settings)"
        )
    signer = _signer(request, store)
    user, sid = _session_user(store, signer, request)
    pre_sid = None
    if sid is None:  # not logged in: the pre-session id from the login cookie, or a new one
        got = signer.unsign(request.cookies.get(LOGIN_COOKIE), max_age=SESSION_SECONDS)
        sid = str(got["s"]) if got else None
        if sid is None:
            sid = pre_sid = new_session_id()
    ctx = Ctx(request, store, signer, sid, user, form)
    if action is not None and user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = request.url.path
        return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
    if request.method == "POST" and not signer.check_csrf(sid, form.get("csrf")):
        return ctx.error(403, "error.title", ctx.t("error.csrf"))
    if action is not None and user is not None and user.role not in PERMISSIONS[action]:
        role = ctx.t(f"role.{user.role}")
        return ctx.error(403, "error.title", ctx.t("error.forbidden", role=role, action=action))
    try:
        response = fn(ctx)
    except NotYetImplemented as exc:
        response = ctx.error(501, "error.not_built", str(exc))
    except NotFound as exc:
        response = ctx.error(404, "error.not_found", str(exc))
    except InputError as exc:
        response = ctx.error(400, "error.input", str(exc))
    except XrmError as exc:  # a setting missing (e.g. secret_key), the store busy ...
        response = ctx.error(500, "error.title", str(exc))
    if pre_sid is not None:
        response.set_cookie(LOGIN_COOKIE, signer.sign({"s": pre_sid}), max_age=SESSION_SECONDS,
                            httponly=True, samesite="lax", secure=request.url.scheme == "https",
                            path=PREFIX)
    return response


async def _read_form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InputError(f"form of {len(body):,} bytes; the console accepts at most {MAX_FORM_BYTES:,}")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)
    return {k: v[-1] for k, v in parsed.items()}


def _bytes_read() -> int | None:
    """Bytes this process has read through read calls so far (Linux ``/proc/self/io`` rchar); None
    where there is no such file."""
    try:
        with open("/proc/self/io", "rb") as f:
            for line in f:
                if line.startswith(b"rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def page(action: str | None = "view") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: the session and role are checked (``action`` None: no login needed), POSTs
    must carry the CSRF token, xrm errors become pages; the handler runs in a worker thread
    (DuckDB calls block) and the server time (wall and process CPU) goes into a ``Server-Timing``
    header."""
    if action is not None and action not in PERMISSIONS:
        raise ValueError(f"unknown action {action!r}")

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            start, cpu, read = time.perf_counter(), time.process_time(), _bytes_read()
            try:
                form = await _read_form(request) if request.method == "POST" else {}
            except InputError as exc:
                return HTMLResponse(str(exc), status_code=413)
            response = await run_in_threadpool(_handle, fn, action, request, form)
            # cpu: the server process's CPU time meanwhile, all threads (the request's own when it
            # is the only one served: what a loaded machine changes least)
            timing = (f"app;dur={1000 * (time.perf_counter() - start):.1f}, "
                      f"cpu;dur={1000 * (time.process_time() - cpu):.1f}")
            if read is not None and (after := _bytes_read()) is not None:
                # read: what the process read from files meanwhile (the store's blocks a first visit
                # loads; from the OS cache or the disk), as the CPU time above: all threads
                timing += f', read;desc="{(after - read) / 2**20:.1f} MB"'
            response.headers["Server-Timing"] = timing
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Content-Security-Policy"] = CSP
            return response

        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        return endpoint

    return wrap
