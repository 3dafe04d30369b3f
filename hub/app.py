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

from .api import ROUTES
from .service import HubCore, HubDep


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
    extra_route_handlers: Sequence[Any] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
) -> Litestar:
    hub = HubCore(settings, nc=nc, pool=pool, ingest=ingest)
    app = Litestar(
        route_handlers=[*ROUTES, *extra_route_handlers],
        dependencies={"hub": Provide(lambda: hub, use_cache=True, sync_to_thread=False)},
        on_startup=[hub.start, *on_startup],
        on_shutdown=[*on_shutdown, hub.stop],
        exception_handlers={InvalidInput: _error(400), NotFound: _error(404), SwtelError: _error(503)},
        openapi_config=OpenAPIConfig(title="switch-telemetry hub", version="1", path="/schema"),
        signature_namespace={"HubCore": HubCore, "HubDep": HubDep},
    )
    app.state.hub = hub
    return app
