"""Errors as the Segment clients read them: a 4xx status with ``{"code": ..., "message": ...}``.

Every error the API answers names the field and the problem; FastAPI's own validation and HTTP
errors are answered in the same shape (status 400 instead of FastAPI's 422).

    >>> raise ApiError(413, "payload_too_large", "batch: 612,000 bytes; limit 500 KB")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from xrm.exceptions import InputError, NotFound, NotYetImplemented

__all__ = ["ApiError", "error_response", "install_error_handlers"]

_CODES = {
    400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "rate_limited", 503: "unavailable",
}


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code and a message for people."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers  # e.g. Retry-After on 429, WWW-Authenticate on 401


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "(request)"
            got = f" (got {err['input']!r})" if "input" in err and err["input"] is not None else ""
            problems.append(f"{where}: {err.get('msg', 'invalid')}{got}")
        return error_response(400, "invalid_request", "; ".join(problems))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"{request.method} {request.url.path}: no such endpoint; see /docs for the API"
        return error_response(exc.status_code, code, message)

    async def input_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(400, "invalid_request", str(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    async def not_yet(request: Request, exc: Exception) -> JSONResponse:
        return error_response(501, "not_implemented", str(exc))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(NotYetImplemented, not_yet)
