"""``GET /api/series?device=…`` and ``GET /api/query?series=…&start=…&end=…&step=…&fn=…``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter

from swtel.shared.errors import NotFound

from ..service import HubDep
from . import params


class SeriesOut(msgspec.Struct):
    id: int
    device: str
    name: str  # full path with keys
    path: str  # path without keys
    keys: dict[str, str]
    kind: str  # "num" (points) or "str" (states)


class QueryResult(msgspec.Struct):
    series: int
    device: str
    name: str
    fn: str
    step_s: float
    source: str  # the table or continuous aggregate that answered
    points: list[tuple[float, Any]]  # [unix seconds of the bucket start, value]


class QueryOut(msgspec.Struct):
    start: float
    end: float
    results: list[QueryResult]


@get("/api/series", tags=["data"], summary="The series (paths with keys) stored for a device")
async def series_list(hub: HubDep, device: Annotated[str, QueryParameter(description="device name")]) -> list[SeriesOut]:
    rows = await hub.require_storage().list_series(device)
    if not rows:
        try:
            await (await hub.inventory()).get(device)
        except (NotFound, ValueError):
            raise NotFoundException(detail=f"device {device!r} does not exist and has no stored series") from None
    return [SeriesOut(**r) for r in rows]


@get("/api/query", tags=["data"], summary="Bucketed values of one or more series")
async def query(
    hub: HubDep,
    series: Annotated[str, QueryParameter(description="series id, or comma-separated ids")],
    start: Annotated[str | None, QueryParameter(description="RFC 3339, Unix seconds, or now-1h (default: end - 1h)")] = None,
    end: Annotated[str | None, QueryParameter(description="RFC 3339, Unix seconds, or now (default: now)")] = None,
    step: Annotated[str | None, QueryParameter(description="bucket width: 10s, 1m, 1h (default: range / 300)")] = None,
    fn: Annotated[str, QueryParameter(description="avg, max, min, last or rate (per second, reset-aware)")] = "avg",
) -> QueryOut:
    ids = params.series_ids(series)
    start_t, end_t, step_s = params.query_window(start, end, step)
    fn = params.function(fn)
    storage = hub.require_storage()
    found = await storage.get_series(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundException(detail=f"unknown series id(s): {', '.join(map(str, missing))}")
    results = []
    for sid in ids:
        s = found[sid]
        if s["kind"] == "str" and fn != "last":
            raise params.bad(f"series {sid} holds text values: only fn=last applies")
        source, points = await storage.query(sid, s["kind"], start_t, end_t, step_s, fn)
        results.append(QueryResult(sid, s["device"], s["name"], fn, step_s, source, points))
    return QueryOut(start_t.timestamp(), end_t.timestamp(), results)
