"""``GET /api/devices/{name}/facts``: what discovery learnt of a device, and its down/up status."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from .. import devstatus
from ..service import HubDep


@get("/api/devices/{name:str}/facts", tags=["inventory"],
     summary="A device's latest discovered facts (vendor, model, OS, serial, capabilities, interfaces) and status")
async def device_facts(hub: HubDep, name: FromPath[str]) -> dict[str, Any]:
    pool = hub.require_storage().pool
    async with pool.acquire() as conn:
        facts = await devstatus.get_facts(conn, name)
        status = await devstatus.device_status(conn, name)
    if facts is None:
        raise NotFoundException(detail=f"no facts for device {name!r} yet: discovery runs when an agent "
                                       f"claims it, then every discovery_interval_s")
    facts["status"] = status
    return facts
