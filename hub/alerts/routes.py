"""HTTP handlers for alerts, for the hub to mount: ``app = Litestar(route_handlers=[..., *alert_routes(pool)])``.

The hub's auth middleware guards them (viewers read; operators acknowledge). ``POST /api/alerts/{id}/ack``
records the signed-in user (session or API token); only an app without authentication (tests of these
routes alone) takes ``by`` from the body.
User mistakes map to 4xx with the one-line message as ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import msgspec
from litestar import Request, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from typing import Annotated

from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from swtel.hub.auth.middleware import principal_of
from swtel.shared.errors import InvalidInput, NotFound

from . import db
from .rules import Rule


# ids are PostgreSQL bigints: anything else is a 400 naming the parameter, never a database error
AlertId = Annotated[int, Parameter(ge=1, le=2**63 - 1, description="alert id")]
Limit = Annotated[int, Parameter(ge=1, le=10_000, description="most rows returned")]


class AckRequest(msgspec.Struct):
    by: str = "api"


class AckResponse(msgspec.Struct):
    id: int
    acknowledged: bool
    by: str


def alert_routes(pool: asyncpg.Pool | Callable[[], asyncpg.Pool]) -> list[HTTPRouteHandler]:
    """The handlers, bound to ``pool`` (or a function returning it, for a pool created at startup)."""

    def get_pool() -> asyncpg.Pool:
        return pool() if callable(pool) and not isinstance(pool, asyncpg.Pool) else pool  # type: ignore[return-value]

    @get("/api/alerts")
    async def list_alerts(all: FromQuery[bool] = False, limit: FromQuery[Limit] = 1000) -> list[db.AlertView]:  # "all" is the query name
        async with get_pool().acquire() as conn:
            return await db.list_alerts(conn, include_all=all, limit=min(max(limit, 1), 10_000))

    @get("/api/alerts/history")
    async def alert_history(alert_id: FromQuery[Annotated[int | None, Parameter(ge=1, le=2**63 - 1, description="alert id")]] = None, limit: FromQuery[Limit] = 200) -> list[db.HistoryView]:
        async with get_pool().acquire() as conn:
            return await db.history(conn, alert_id=alert_id, limit=min(max(limit, 1), 10_000))

    @post("/api/alerts/{alert_id:int}/ack", status_code=200)
    async def ack(request: Request, alert_id: FromPath[AlertId], data: JSONBody[AckRequest | None] = None) -> AckResponse:
        who = principal_of(request)
        by = who.name if who is not None else (data or AckRequest()).by  # never trust a name the caller sends
        async with get_pool().acquire() as conn:
            try:
                await db.acknowledge(conn, alert_id, by)
            except NotFound as e:
                raise NotFoundException(str(e)) from None
            except InvalidInput as e:
                raise ClientException(str(e), status_code=409) from None
        return AckResponse(id=alert_id, acknowledged=True, by=by)

    @get("/api/alert-rules")
    async def list_rules() -> list[Rule]:
        async with get_pool().acquire() as conn:
            return await db.list_rules(conn)

    @get("/api/alert-outbox")
    async def outbox(limit: FromQuery[Limit] = 200) -> list[db.OutboxView]:
        async with get_pool().acquire() as conn:
            return await db.outbox(conn, limit=min(max(limit, 1), 10_000))

    return [list_alerts, alert_history, ack, list_rules, outbox]
