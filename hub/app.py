"""The hub's Litestar application.

``create_app(settings, *, nc=None, pool=None, ingest=True, extra_route_handlers=(), on_startup=(),
on_shutdown=())``: NATS and the pool are connected at startup unless given (then they are not closed
either). Extra route handlers (the live WebSocket view, static dashboard files) are mounted beside the
API and can ask for the ``hub`` dependency (a :class:`~swtel.hub.service.HubCore`: ``hub.nc``,
``hub.storage``, ``hub.metrics``); the same object is ``app.state.hub``. ``on_startup`` hooks run after
the hub started, ``on_shutdown`` hooks before it stops. OpenAPI is served at ``/schema``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from litestar import Litestar, MediaType, Request, Response
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from nats.aio.client import Client as NATS

from swtel.shared.errors import InvalidInput, NotFound, SwtelError
from swtel.shared.settings import Settings

from .alerts.routes import alert_routes
from .api import ROUTES
from .api.params import nul_guard
from .auth import auth_components
from .live.routes import live_components
from .outputs.routes import ROUTES as OUTPUT_ROUTES
from .service import HubCore, HubDep

# Reachable without a session or token: health (load balancers, monitoring). Everything else, the
# dashboard pages and the WebSocket included, needs a session or an API token.
PUBLIC_PATHS = (r"^/api/health$",)  # the login page and POST /api/login mark themselves public


def _error(status: int) -> Callable[[Request[Any, Any, Any], Exception], Response[dict[str, Any]]]:
    def handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        return Response({"status_code": status, "detail": str(exc)}, status_code=status, media_type=MediaType.JSON)

    return handler


def create_app(
    settings: Settings,
    *,
    nc: NATS | None = None,
    pool: asyncpg.Pool | None = None,
    ingest: bool = True,
    auth: bool = True,
    extra_route_handlers: Sequence[Any] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
) -> Litestar:
    """``auth=False`` leaves authentication out: only for tests that exercise the API alone."""
    hub = HubCore(settings, nc=nc, pool=pool, ingest=ingest)
    # the live view (WebSocket fan-out, dashboard pages) subscribes with the hub's own NATS connection,
    # which exists once hub.start() ran
    live_handlers, live_start, live_stop, live = live_components(settings, nc)  # type: ignore[arg-type]

    async def bind_live() -> None:
        live.nc = hub.nc

    handlers: list[Any] = [*ROUTES, *OUTPUT_ROUTES, *alert_routes(lambda: hub.pool), *live_handlers,
                           *extra_route_handlers]
    middleware: list[Any] = [nul_guard]  # NUL in a path or query parameter: 400 (hub/api/params.py)
    startup: list[Callable[..., Any]] = [hub.start, bind_live, *live_start]
    if auth:
        # the auth tables come with `swtel db migrate`; inventory writes use the hub's own KV handle
        comps = auth_components(settings, lambda: hub.pool, hub.inventory, public=PUBLIC_PATHS, create_schema=False)
        handlers += comps.route_handlers
        middleware += comps.middleware
        startup += comps.on_startup
    app = Litestar(
        route_handlers=handlers,
        middleware=middleware,
        dependencies={"hub": Provide(lambda: hub, use_cache=True, sync_to_thread=False)},
        on_startup=[*startup, *on_startup],
        on_shutdown=[*on_shutdown, *live_stop, hub.stop],
        exception_handlers={InvalidInput: _error(400), NotFound: _error(404), SwtelError: _error(503)},
        openapi_config=OpenAPIConfig(title="switch-telemetry hub", version="1", path="/schema"),
        signature_namespace={"HubCore": HubCore, "HubDep": HubDep},
    )
    app.state.hub = hub
    app.state.live = live
    return app
