"""Hub authentication: users with roles, sessions, API tokens, CSRF, login throttling; and the
operator-only inventory write routes. Start at :func:`auth_components` (see docs/AUTH.md).

Names are imported lazily so that ``swtel user …`` (which needs only ``store`` and ``passwords``) does
not load Litestar.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_PUBLIC": "components",
    "AuthComponents": "components",
    "auth_components": "components",
    "Principal": "middleware",
    "principal_of": "middleware",
    "require_role": "middleware",
    "SCHEMA_SQL": "schema",
    "ensure_schema": "schema",
    "AuthService": "service",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
