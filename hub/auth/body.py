"""Decoding request bodies into Structs with a one-line error that never echoes a value."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from swtel.shared.errors import InvalidInput

T = TypeVar("T")


async def decode(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """JSON, or a urlencoded/multipart form (for HTML forms), into ``type_``."""
    content_type, _ = request.content_type
    try:
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            data = {k: v for k, v in form.items() if k != "_csrf_token"}
            return msgspec.convert(data, type_, strict=False)
        return msgspec.json.decode(await request.body(), type=type_)
    except msgspec.ValidationError as e:
        # msgspec names the field and the expected type, never the value received.
        raise InvalidInput(f"bad request body: {e}") from None
    except msgspec.DecodeError:
        raise InvalidInput("the request body is not valid JSON") from None
