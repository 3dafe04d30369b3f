"""Devices, agents and leases from the NATS KV buckets, in the same JSON shapes as ``swtel … --json``."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from swtel.shared import collection
from swtel.shared.errors import NotFound
from swtel.shared.views import agent_view, device_view, lease_view

from ..service import HubDep


@get("/api/devices", tags=["inventory"], summary="Every device, with the agent holding it")
async def device_list(hub: HubDep) -> list[dict[str, Any]]:
    inv = await hub.inventory()
    leases = {lease.device: (lease, tok) for lease, tok in await inv.lease_list()}
    return [device_view(d, *leases.get(d.name, (None, None))) for d in await inv.list()]


@get("/api/devices/{name:str}", tags=["inventory"], summary="One device")
async def device_get(hub: HubDep, name: FromPath[str]) -> dict[str, Any]:
    inv = await hub.inventory()
    try:
        device, _ = await inv.get(name)
    except NotFound as e:
        raise NotFoundException(detail=str(e)) from None
    except ValueError as e:  # a name that cannot be a device name
        raise NotFoundException(detail=f"device {name!r} does not exist ({e})") from None
    lease = next(((l, t) for l, t in await inv.lease_list() if l.device == name), (None, None))
    view = device_view(device, *lease)
    # the holder's own view: status, last error, each subscription's status (None when it does not answer)
    view["collection"] = None
    if lease[0] is not None and hub.nc is not None:
        seen = (await collection.by_device(hub.nc, [lease[0].agent])).get(name)
        view["collection"] = seen if seen and seen.get("agent") == lease[0].agent else None
    return view


@get("/api/agents", tags=["inventory"], summary="Live agents")
async def agent_list(hub: HubDep) -> list[dict[str, Any]]:
    return [agent_view(a) for a in await (await hub.inventory()).agent_list()]


@get("/api/leases", tags=["inventory"], summary="Who collects what, with the fencing token")
async def lease_list(hub: HubDep) -> list[dict[str, Any]]:
    return [lease_view(lease, tok) for lease, tok in await (await hub.inventory()).lease_list()]
