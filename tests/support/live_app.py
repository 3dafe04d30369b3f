"""Serve the live view in-process on a free loopback port with uvicorn (real HTTP and WebSockets).

Until the hub branch is merged the app is assembled here from ``live_components`` plus the FAKE REST API
(``support.fake_api``); at merge this becomes ``hub.app.create_app(...)`` with the same extras.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from litestar import Litestar
from nats.aio.client import Client as NATS
from swtel.hub.live.routes import Authenticate, live_components
from swtel.hub.live.service import LiveService
from swtel.shared import settings as settings_mod
from swtel.shared.inventory import Inventory
from swtel.shared.natsconn import connect

from .fake_api import fake_api_handlers
from .ports import free_port
from .waits import eventually


@dataclass
class LiveHub:
    url: str
    ws_url: str
    service: LiveService
    nc: NATS


@contextlib.asynccontextmanager
async def live_hub(nats_url: str, authenticate: Authenticate | None = None, **overrides: object,
                   ) -> AsyncIterator[LiveHub]:
    s = settings_mod.load({"nats_url": nats_url, **overrides}, env={})
    nc = await connect(s, name="test-hub", long_running=True)
    try:
        handlers, on_startup, on_shutdown, service = live_components(s, nc, authenticate=authenticate)
        inv = await Inventory.open(nc.jetstream())
        app = Litestar(route_handlers=[*handlers, *fake_api_handlers(inv)], on_startup=on_startup,
                       on_shutdown=on_shutdown)
    except BaseException:
        await nc.close()
        raise
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", ws="websockets-sansio",
                                           ws_per_message_deflate=False))
    task = asyncio.get_running_loop().create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return server.started

    try:
        await eventually(started, timeout=10, what="uvicorn to start")
        await service.wait_ready()
        yield LiveHub(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", service, nc)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await nc.close()
