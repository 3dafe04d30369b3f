"""The project's errors as HTTP answers: one line in ``detail`` (and the field, when known)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from swtel.shared.errors import AlreadyExists, Conflict, InvalidInput, NotFound, SwtelError

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


EXCEPTION_HANDLERS = {SwtelError: swtel_error_response}
