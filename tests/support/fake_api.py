"""A FAKE of the hub's REST API, only what the dashboard pages call, until the hub branch is merged.

Devices, agents and leases come from the real KV buckets (shared/inventory + shared/views, as the real API
does). There is no database here, so ``/api/series`` and ``/api/query`` answer from nothing: the pages then
show only live data. The real app (``hub/app.py``) replaces this at merge.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from swtel.shared.errors import NotFound
from swtel.shared.inventory import Inventory
from swtel.shared.views import agent_view, device_view, lease_view


def fake_api_handlers(inventory: Inventory) -> list[Any]:
    async def leases_by_device() -> dict[str, tuple[Any, int]]:
        return {lease.device: (lease, rev) for lease, rev in await inventory.lease_list()}

    @get("/api/devices")
    async def devices() -> list[dict[str, Any]]:
        held = await leases_by_device()
        return [device_view(d, *held.get(d.name, (None, None))) for d in await inventory.list()]

    @get("/api/devices/{name:str}")
    async def device(name: FromPath[str]) -> dict[str, Any]:
        try:
            d, _ = await inventory.get(name)
        except NotFound as e:
            raise NotFoundException(str(e)) from None
        return device_view(d, *(await leases_by_device()).get(name, (None, None)))

    @get("/api/agents")
    async def agents() -> list[dict[str, Any]]:
        return [agent_view(a) for a in await inventory.agent_list()]

    @get("/api/leases")
    async def leases() -> list[dict[str, Any]]:
        return [lease_view(lease, rev) for lease, rev in await inventory.lease_list()]

    @get("/api/series")
    async def series(device: FromQuery[str]) -> list[dict[str, Any]]:
        return []

    @get("/api/query")
    async def query(series: FromQuery[str], start: FromQuery[str | None] = None,
                    end: FromQuery[str | None] = None, step: FromQuery[str | None] = None,
                    fn: FromQuery[str] = "avg") -> dict[str, Any]:
        return {"series": series, "points": []}

    return [devices, device, agents, leases, series, query]
