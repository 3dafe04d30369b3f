"""The integration surface: everything the hub's ``create_app`` needs to add authentication.

    auth = auth_components(settings, pool_or_getter, inventory_provider)
    app = Litestar(
        route_handlers=[*hub_routes, *auth.route_handlers],
        middleware=[*auth.middleware, *other_middleware],   # auth first (outermost)
        on_startup=[open_pool_and_nats, *auth.on_startup],  # after the pool exists
    )

Do not set ``csrf_config`` on the app: CSRF is inside ``auth.middleware`` (it must skip bearer-token
requests, which Litestar's own config cannot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from litestar.middleware import DefineMiddleware

from swtel.shared.settings import Settings

from .devices import InventoryProvider, build_device_routes
from .errors import EXCEPTION_HANDLERS
from .middleware import AuthMiddleware
from .routes import build_routes
from .service import AuthService, PoolSource

# Reachable without a session or token. Anchored: a pattern is searched anywhere in the path.
DEFAULT_PUBLIC: tuple[str, ...] = (r"^/api/health$",)


@dataclass
class AuthComponents:
    service: AuthService
    route_handlers: list[Any]
    middleware: list[DefineMiddleware]
    on_startup: list[Any]
    on_shutdown: list[Any] = field(default_factory=list)
    public: tuple[str, ...] = DEFAULT_PUBLIC


def auth_components(
    settings: Settings,
    pool: PoolSource,
    inventory_provider: InventoryProvider | None = None,
    *,
    public: Sequence[str] = DEFAULT_PUBLIC,
    create_schema: bool = True,
) -> AuthComponents:
    """``pool``: an asyncpg pool, or a function returning it (for a pool opened in on_startup).
    ``inventory_provider``: returns (or awaits to) the hub's :class:`Inventory`; None leaves out the
    device write routes. ``public``: regexes of paths that need no caller (health, dashboard assets).
    ``create_schema``: run ``ensure_schema`` at startup (turn off once ``swtel db migrate`` applies it)."""
    service = AuthService(settings, pool, create_schema=create_schema)
    handlers = build_routes(service)
    if inventory_provider is not None:
        handlers += build_device_routes(inventory_provider)
    # Plain handlers, not a Router: the hub's GET /api/devices and our POST /api/devices must share one
    # route, and two routers each add their own OPTIONS handler to it (Litestar refuses that).
    for h in handlers:
        h.exception_handlers = {**EXCEPTION_HANDLERS, **(h.exception_handlers or {})}
    return AuthComponents(
        service=service,
        route_handlers=handlers,
        middleware=[DefineMiddleware(AuthMiddleware, service=service, public=tuple(public))],
        on_startup=[service.start],
        public=tuple(public),
    )
