"""The project's errors as HTTP answers: one line in ``detail`` (and the field, when known)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from litestar import Request, Response

from swtel.shared.errors import AlreadyExists, Conflict, InvalidInput, NotFound, SwtelError

log = logging.getLogger("swtel.hub.auth")

STATUS = {InvalidInput: 400, NotFound: 404, AlreadyExists: 409, Conflict: 409}


def status_of(exc: SwtelError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 503  # the rest are servers we depend on (NATS, buckets missing, no quorum)


def swtel_error_response(_: Request[Any, Any, Any], exc: SwtelError) -> Response[dict[str, Any]]:
    code = status_of(exc)
    body: dict[str, Any] = {"status_code": code, "detail": str(exc)}
    if getattr(exc, "field", None):
        body["field"] = exc.field  # type: ignore[attr-defined]
    return Response(body, status_code=code)


def database_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("%s %s: database error %s: %s", request.method, request.url.path, type(exc).__name__,
              str(exc).splitlines()[0] if str(exc) else "")
    return Response({"status_code": 503, "detail": "the hub's database is unavailable; try again shortly"},
                    status_code=503)


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    SwtelError: swtel_error_response,
    **{cls: database_error_response for cls in (asyncpg.PostgresError, asyncpg.InterfaceError,
                                                asyncpg.InternalClientError)},
}
