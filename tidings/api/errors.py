"""Every error leaves the native API as ``{"detail", "code"}`` JSON (plus ``errors`` listing
fields on 400s): service errors, validation errors (400, not 422), unknown routes and methods,
and unexpected exceptions (500 with no stack trace; the trace goes to the log).

Under the Android surface's paths (``ANDROID_PREFIXES``) the same errors are
``{"message": "...", "code": "..."}``, the shape its clients parse; under the provider-slug
API's (``SLUG_PREFIXES``) they are ``{"error": "...", "code": "..."}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from tidings.errors import InvalidInput, RateLimited, TidingsError

log = logging.getLogger(__name__)

ANDROID_PREFIXES = ("/3rdparty/", "/api/3rdparty/", "/mobile/", "/api/mobile/", "/health/")

SLUG_PREFIXES = ("/api/v1/",)

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 429: "rate_limited"}


def error_response(status: int, detail: str, code: str, errors: list[dict[str, str]] | None = None,
                   headers: Mapping[str, str] | None = None,
                   request: Request | None = None) -> JSONResponse:
    if request is not None and request.url.path.startswith(ANDROID_PREFIXES):
        return JSONResponse({"message": detail, "code": code}, status_code=status,
                            headers=headers)
    if request is not None and request.url.path.startswith(SLUG_PREFIXES):
        return JSONResponse({"error": detail, "code": code}, status_code=status,
                            headers=headers)
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _on_tidings_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TidingsError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    errors = ([{"field": f.field, "message": f.message} for f in exc.fields]
              if isinstance(exc, InvalidInput) else None)
    if exc.http_status >= 500:
        log.error("internal error: %s", exc.detail)
    return error_response(exc.http_status, exc.detail, exc.code, errors, headers, request)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "request body is not valid JSON", "malformed_json",
                              request=request)
    errors = [{"field": _field_name(tuple(p.get("loc", ()))), "message": str(p.get("msg", ""))}
              for p in problems]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return error_response(400, detail or "invalid request", "invalid", errors, request=request)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, TidingsError):
        # FastAPI wraps errors raised while reading the body (e.g. PayloadTooLarge) in a 400.
        return await _on_tidings_error(request, exc.__cause__)
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, str(exc.detail), code, headers=exc.headers,
                          request=request)


async def _on_client_gone(request: Request, _exc: Exception) -> JSONResponse:
    # Not a server error: the client (e.g. a provider's webhook that timed out) closed the
    # connection before its body arrived; nothing was done and no one reads the answer.
    log.info("%s %s: the client disconnected before sending its whole request",
             request.method, request.url.path)
    return error_response(400, "the client disconnected mid-request", "client_disconnected",
                          request=request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal server error", "internal_error", request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TidingsError, _on_tidings_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ClientDisconnect, _on_client_gone)
    app.add_exception_handler(Exception, _on_unexpected)
