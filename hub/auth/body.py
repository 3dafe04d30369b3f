"""Decoding request bodies into Structs with a one-line error that never echoes a value."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from swtel.shared.errors import InvalidInput

T = TypeVar("T")


async def decode(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """JSON, or a urlencoded/multipart form (for HTML forms), into ``type_``. Text holding a NUL character
    (which PostgreSQL cannot store) is refused here, naming the field."""
    content_type, _ = request.content_type
    try:
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            data = {k: v for k, v in form.items() if k != "_csrf_token"}
            value = msgspec.convert(data, type_, strict=False)
        else:
            value = msgspec.json.decode(await request.body(), type=type_)
    except msgspec.ValidationError as e:
        # msgspec names the field and the expected type, never the value received.
        raise InvalidInput(f"bad request body: {e}") from None
    except msgspec.DecodeError:
        raise InvalidInput("the request body is not valid JSON") from None
    for name in getattr(value, "__struct_fields__", ()):
        if b"\\u0000" in msgspec.json.encode(getattr(value, name)):  # the encoder writes NUL as \u0000
            raise InvalidInput(f"bad request body: {name} contains a NUL character")
    return value


# ---- OpenAPI: the body a handler decodes itself, documented (``operation_class=documented(TokenIn)``) -----

_KEYS = {"anyOf": "any_of", "additionalProperties": "additional_properties", "maxLength": "max_length",
         "minLength": "min_length", "minItems": "min_items", "maxItems": "max_items", "exclusiveMinimum":
         "exclusive_minimum", "exclusiveMaximum": "exclusive_maximum"}
_SAME = ("type", "enum", "default", "minimum", "maximum", "pattern", "title", "description", "required", "format")


def _schema(node: Any, defs: dict[str, Any]) -> Any:
    from litestar.openapi.spec import OpenAPIType, Schema

    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    kw: dict[str, Any] = {}
    for k, v in node.items():
        if k == "type":
            kw["type"] = [OpenAPIType(t) for t in v] if isinstance(v, list) else OpenAPIType(v)
        elif k == "properties":
            kw["properties"] = {n: _schema(p, defs) for n, p in v.items()}
        elif k == "items":
            kw["items"] = _schema(v, defs)
        elif k == "anyOf":
            kw["any_of"] = [_schema(p, defs) for p in v]
        elif k == "additionalProperties":
            kw["additional_properties"] = _schema(v, defs) if isinstance(v, dict) else v
        elif k in _KEYS:
            kw[_KEYS[k]] = v
        elif k in _SAME:
            kw[k] = v
    return Schema(**kw)


def documented(type_: type) -> type:
    """An OpenAPI operation class whose request body is ``type_`` as JSON (or the same fields as a form):
    for handlers that decode their body themselves with :func:`decode`."""
    from dataclasses import dataclass

    from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

    raw = msgspec.json.schema(type_)
    schema = _schema(raw, raw.get("$defs", {}))

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(required=True, content={
                "application/json": OpenAPIMediaType(schema=schema),
                "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),
            })

    WithBody.__name__ = f"{type_.__name__}Body"
    return WithBody
