"""User dashboards: stored in the database, served under ``/api/dashboards`` (docs/DASHBOARD.md).

A dashboard is a title, a visibility (shared with every user, or personal to its owner) and a spec:
variables chosen at the top (device, interface, site), a default time range and a grid of widgets, each
one or more queries for ``GET /api/panel``. Reading needs a viewer, every write an operator (the auth
middleware's rule for unsafe methods); a personal dashboard is seen and changed by its owner only.
Export gives a self-contained JSON document; import takes the same document, so dashboards can live in Git.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from litestar import Request, delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from swtel.shared.errors import Conflict, InvalidInput, SwtelError

from ..auth.errors import swtel_error_response
from ..auth.middleware import principal_of
from ..service import HubDep
from .params import INT8_MAX

# a bigserial id: anything outside 1 … 2^63-1 is a 400 naming the parameter, never a 500 from asyncpg
DashboardId = FromPath[Annotated[int, Parameter(ge=1, le=INT8_MAX, description="dashboard id")]]

EXPORT_FORMAT = 1
WidgetType = Literal["line", "area", "bar", "points", "stat", "gauge", "table", "topn"]
Fn = Literal["avg", "max", "min", "last", "rate"]


class Query(msgspec.Struct, forbid_unknown_fields=True):
    """One query of a widget. ``$device``, ``$interface`` and ``$site`` are replaced by the variables."""

    path: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    device: Annotated[str, msgspec.Meta(max_length=500)] = "$device"
    tag: Annotated[str, msgspec.Meta(max_length=200)] = ""  # key=value, e.g. site=$site
    fn: Fn = "avg"
    step: Annotated[str, msgspec.Meta(max_length=20)] = ""  # empty: range / 300
    scale: float = 1.0  # 8 turns octets/s into bit/s
    legend: Annotated[str, msgspec.Meta(max_length=200)] = ""  # "{device} {name}": keys and device by name


class Widget(msgspec.Struct, forbid_unknown_fields=True):
    type: WidgetType
    title: Annotated[str, msgspec.Meta(max_length=200)]
    queries: Annotated[list[Query], msgspec.Meta(min_length=1, max_length=8)]
    w: Annotated[int, msgspec.Meta(ge=1, le=12)] = 6  # columns of 12
    h: Annotated[int, msgspec.Meta(ge=1, le=4)] = 1  # rows of 240 px
    unit: Annotated[str, msgspec.Meta(max_length=20)] = ""
    top: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10  # top-N widgets
    max: float | None = None  # gauge's full scale


class Variable(msgspec.Struct, forbid_unknown_fields=True):
    name: Literal["device", "interface", "site"]
    default: Annotated[str, msgspec.Meta(max_length=200)] = ""


class Spec(msgspec.Struct, forbid_unknown_fields=True):
    widgets: Annotated[list[Widget], msgspec.Meta(max_length=48)] = []
    variables: Annotated[list[Variable], msgspec.Meta(max_length=3)] = []
    range: Annotated[str, msgspec.Meta(max_length=40)] = "1h"  # 5m … 7d, the picker's default


Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class DashboardIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    spec: Spec = msgspec.field(default_factory=Spec)
    shared: bool = True  # False: personal to the caller
    version: int | None = None  # on edit: the version the change was made on (optional; 409 if stale)


class DashboardOut(msgspec.Struct):
    id: int
    title: str
    shared: bool
    owner: str | None
    version: int
    created_by: str
    updated_by: str
    updated_at: datetime
    spec: Spec


class DashboardExport(msgspec.Struct, forbid_unknown_fields=True):
    """A dashboard as a file: what export gives and import takes."""

    title: Title
    spec: Spec
    swtel_dashboard: int = EXPORT_FORMAT


class CloneIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title | None = None
    shared: bool | None = None  # default: as the original


def _who(request: Request[Any, Any, Any]) -> str:
    p = principal_of(request)
    return p.name if p else ""  # "" only on a hub built without authentication (tests)


def _out(r: asyncpg.Record) -> DashboardOut:
    spec = r["spec"] if isinstance(r["spec"], (dict, list)) else json.loads(r["spec"])
    return DashboardOut(id=r["id"], title=r["title"], shared=r["owner"] is None, owner=r["owner"], version=r["version"],
                        created_by=r["created_by"], updated_by=r["updated_by"], updated_at=r["updated_at"],
                        spec=msgspec.convert(spec, Spec))


_COLUMNS = "id, title, owner, spec, version, created_by, updated_by, updated_at"
_VISIBLE = "(owner IS NULL OR owner = $2)"


async def _fetch(hub: HubDep, who: str, dashboard_id: DashboardId) -> asyncpg.Record:
    row = await _pool(hub).fetchrow(f"SELECT {_COLUMNS} FROM dashboards WHERE id = $1 AND {_VISIBLE}", dashboard_id, who)
    if row is None:
        raise NotFoundException(detail=f"dashboard {dashboard_id} does not exist (or is another user's personal one)")
    return row


def _pool(hub: HubDep) -> asyncpg.Pool:
    return hub.require_storage().pool


async def _insert(hub: HubDep, who: str, title: str, spec: Spec, shared: bool, *, rename: bool = False) -> DashboardOut:
    """Insert; a title already used (among shared ones, or the caller's personal ones) is a 409, or with
    ``rename`` gets " (2)", " (3)"… (import and clone)."""
    owner = None if shared else who
    body = msgspec.json.encode(spec).decode()
    for n in range(1, 100):
        candidate = title if n == 1 else f"{title[:190]} ({n})"
        try:
            row = await _pool(hub).fetchrow(
                f"INSERT INTO dashboards (title, owner, spec, created_by, updated_by) VALUES ($1, $2, $3::jsonb, $4, $4) "
                f"RETURNING {_COLUMNS}", candidate, owner, body, who)
            return _out(row)
        except asyncpg.UniqueViolationError:
            if not rename:
                raise Conflict(f"a {'shared' if shared else 'personal'} dashboard named {title!r} exists; "
                               "choose another title") from None
    raise Conflict(f"too many dashboards named {title!r}")


@get("/api/dashboards", tags=["dashboards"], summary="Shared dashboards and the caller's personal ones")
async def dashboard_list(hub: HubDep, request: Request[Any, Any, Any]) -> list[DashboardOut]:
    rows = await _pool(hub).fetch(
        f"SELECT {_COLUMNS} FROM dashboards WHERE owner IS NULL OR owner = $1 ORDER BY lower(title), id", _who(request))
    return [_out(r) for r in rows]


@get("/api/dashboards/{dashboard_id:int}", tags=["dashboards"], summary="One dashboard")
async def dashboard_get(hub: HubDep, request: Request[Any, Any, Any], dashboard_id: DashboardId) -> DashboardOut:
    return _out(await _fetch(hub, _who(request), dashboard_id))


@post("/api/dashboards", tags=["dashboards"], summary="Create a dashboard (operators)", status_code=201)
async def dashboard_create(hub: HubDep, request: Request[Any, Any, Any], data: JSONBody[DashboardIn]) -> DashboardOut:
    return await _insert(hub, _who(request), data.title, data.spec, data.shared)


@put("/api/dashboards/{dashboard_id:int}", tags=["dashboards"], summary="Replace a dashboard's title, spec, visibility")
async def dashboard_update(hub: HubDep, request: Request[Any, Any, Any], dashboard_id: DashboardId,
                           data: JSONBody[DashboardIn]) -> DashboardOut:
    who = _who(request)
    current = await _fetch(hub, who, dashboard_id)
    if data.version is not None and data.version != current["version"]:
        raise Conflict(f"dashboard {dashboard_id} was changed by {current['updated_by'] or 'someone'} meanwhile "
                       f"(version {current['version']}, yours {data.version}): reload it and edit again")
    try:
        row = await _pool(hub).fetchrow(
            f"UPDATE dashboards SET title = $3, spec = $4::jsonb, owner = $5, version = version + 1, updated_by = $2, "
            f"updated_at = now() WHERE id = $1 AND {_VISIBLE} RETURNING {_COLUMNS}",
            dashboard_id, who, data.title, msgspec.json.encode(data.spec).decode(), None if data.shared else who)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a dashboard named {data.title!r} exists; choose another title") from None
    if row is None:
        raise NotFoundException(detail=f"dashboard {dashboard_id} was deleted meanwhile")
    return _out(row)


@post("/api/dashboards/{dashboard_id:int}/clone", tags=["dashboards"], summary="Copy a dashboard (operators)",
      status_code=201)
async def dashboard_clone(hub: HubDep, request: Request[Any, Any, Any], dashboard_id: DashboardId,
                          data: JSONBody[CloneIn | None] = None) -> DashboardOut:
    who = _who(request)
    src = _out(await _fetch(hub, who, dashboard_id))
    data = data or CloneIn()
    shared = src.shared if data.shared is None else data.shared
    return await _insert(hub, who, data.title or f"{src.title} (copy)", src.spec, shared, rename=data.title is None)


@delete("/api/dashboards/{dashboard_id:int}", tags=["dashboards"], summary="Delete a dashboard (operators)")
async def dashboard_delete(hub: HubDep, request: Request[Any, Any, Any], dashboard_id: DashboardId) -> None:
    status = await _pool(hub).execute(f"DELETE FROM dashboards WHERE id = $1 AND {_VISIBLE}", dashboard_id, _who(request))
    if status == "DELETE 0":
        raise NotFoundException(detail=f"dashboard {dashboard_id} does not exist (or is another user's personal one)")


@get("/api/dashboards/{dashboard_id:int}/export", tags=["dashboards"], summary="A dashboard as a JSON file")
async def dashboard_export(hub: HubDep, request: Request[Any, Any, Any], dashboard_id: DashboardId) -> DashboardExport:
    d = _out(await _fetch(hub, _who(request), dashboard_id))
    return DashboardExport(title=d.title, spec=d.spec)


@post("/api/dashboards/import", tags=["dashboards"], summary="Create a dashboard from an exported file (operators)",
      status_code=201)
async def dashboard_import(
    hub: HubDep, request: Request[Any, Any, Any], data: JSONBody[DashboardExport],
    shared: Annotated[bool, QueryParameter(description="false: a personal dashboard")] = True,
) -> DashboardOut:
    if data.swtel_dashboard != EXPORT_FORMAT:
        raise InvalidInput(f"this file is dashboard format {data.swtel_dashboard}; this hub reads format {EXPORT_FORMAT}")
    return await _insert(hub, _who(request), data.title, data.spec, shared, rename=True)


ROUTES = [dashboard_list, dashboard_get, dashboard_create, dashboard_update, dashboard_clone, dashboard_delete,
          dashboard_export, dashboard_import]
for _h in ROUTES:  # Conflict → 409 with its one-line detail (the app's own handler makes SwtelError a 503)
    _h.exception_handlers = {SwtelError: swtel_error_response, **(_h.exception_handlers or {})}
