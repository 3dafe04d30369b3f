"""``GET /api/outputs`` (state of every output, for the dashboard and scripts) and the scrape endpoint
``GET /metrics/devices[/{name}]`` (Prometheus text format; needs an API token like the rest of the API)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from ..service import HubDep

TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _manager(hub: HubDep) -> Any:
    if hub.outputs is None:
        raise NotFoundException(detail="outputs are not running on this hub")
    return hub.outputs


@get("/api/outputs", tags=["outputs"], summary="Every output with its state, lag and errors")
async def output_list(hub: HubDep) -> list[dict[str, Any]]:
    return _manager(hub).views()  # type: ignore[no-any-return]


@get("/api/outputs/{name:str}", tags=["outputs"], summary="One output")
async def output_get(hub: HubDep, name: FromPath[str]) -> dict[str, Any]:
    for v in _manager(hub).views():
        if v["name"] == name:
            return v  # type: ignore[no-any-return]
    raise NotFoundException(detail=f"output {name!r} does not exist")


async def _scrape(hub: HubDep, name: str | None) -> Response[str]:
    text = _manager(hub).scrape_text(name)
    if text is None:
        what = f"scrape output {name!r}" if name else "exactly one scrape output (name it: /metrics/devices/NAME)"
        raise NotFoundException(detail=f"there is no {what}")
    return Response(text, media_type=TEXT)


@get("/metrics/devices", tags=["outputs"], summary="The scrape output: newest value per series",
     media_type=MediaType.TEXT)
async def scrape_only(hub: HubDep) -> Response[str]:
    return await _scrape(hub, None)


@get("/metrics/devices/{name:str}", tags=["outputs"], summary="A named scrape output", media_type=MediaType.TEXT)
async def scrape_named(hub: HubDep, name: FromPath[str]) -> Response[str]:
    return await _scrape(hub, name)


ROUTES = [output_list, output_get, scrape_only, scrape_named]
