"""Inventory writes through the hub (operators): the same validation and KV writes as ``swtel device``.

``POST /api/devices``, ``DELETE /api/devices/{name}``, ``PUT`` / ``DELETE /api/devices/{name}/pin``.
Everything goes through :mod:`swtel.shared.inventory` (``make_device`` then ``Inventory.add`` …), so a
device added here is exactly one added by the CLI, and the agents see it through the same KV watch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, delete, post, put
from litestar.params import FromPath

from swtel.shared.inventory import Inventory, make_device
from swtel.shared.views import device_view

from .body import decode, documented
from .middleware import principal_of, require_role

log = logging.getLogger("swtel.hub.inventory")

InventoryProvider = Callable[[], Inventory | Awaitable[Inventory]]


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True):
    """The fields of ``swtel device add`` (``tags`` as an object, ``paths`` as a list)."""

    name: str
    address: str
    protocol: str
    port: int | None = None
    platform: str = "generic"
    credential: str | None = None
    tags: dict[str, str] = {}
    interval: str | float | None = None
    paths: list[str] = []
    tls: str = "off"
    pinned: str | None = None


class PinIn(msgspec.Struct, forbid_unknown_fields=True):
    agent: str


def build_device_routes(inventory_provider: InventoryProvider) -> list[Any]:
    async def inventory() -> Inventory:
        inv = inventory_provider()
        return await inv if inspect.isawaitable(inv) else inv

    operator = [require_role("operator")]

    def who(request: Request[Any, Any, Any]) -> str:
        p = principal_of(request)
        return p.name if p else "?"

    @post("/api/devices", guards=operator, operation_class=documented(DeviceIn))
    async def device_add(request: Request[Any, Any, Any]) -> dict[str, Any]:
        d = await decode(request, DeviceIn)
        dev = make_device(
            d.name, d.address, d.protocol, port=d.port, platform=d.platform, credential=d.credential,
            tags=d.tags, interval=d.interval, paths=d.paths or None, pinned=d.pinned, tls=d.tls,
        )
        inv = await inventory()
        await inv.add(dev)
        log.info("device %r added by %s", dev.name, who(request))
        return device_view(dev)

    @delete("/api/devices/{name:str}", guards=operator)
    async def device_remove(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        await (await inventory()).remove(name)
        log.info("device %r removed by %s", name, who(request))

    @put("/api/devices/{name:str}/pin", guards=operator, operation_class=documented(PinIn))
    async def device_pin(request: Request[Any, Any, Any], name: FromPath[str]) -> dict[str, Any]:
        data = await decode(request, PinIn)
        dev = await (await inventory()).pin(name, data.agent)
        log.info("device %r pinned to %r by %s", name, data.agent, who(request))
        return device_view(dev)

    @delete("/api/devices/{name:str}/pin", guards=operator, status_code=200)
    async def device_unpin(request: Request[Any, Any, Any], name: FromPath[str]) -> dict[str, Any]:
        dev = await (await inventory()).pin(name, None)
        log.info("device %r unpinned by %s", name, who(request))
        return device_view(dev)

    return [device_add, device_remove, device_pin, device_unpin]
