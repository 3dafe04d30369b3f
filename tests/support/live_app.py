"""The hub served in-process on a free loopback port with uvicorn (real HTTP and WebSockets).

``running_hub``: the real app from ``hub.app.create_app`` (database, authentication, every route), what
the dashboard tests sign in to (``sign_in``, an ``operator_db`` with the operator ``op``).
``live_view``: the live view's own components alone (WebSocket fan-out, static pages, no REST API and no
database), for the WebSocket tests, which reach into its ``LiveService``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest_asyncio
import uvicorn
from litestar import Litestar
from nats.aio.client import Client as NATS
from swtel.hub.app import create_app
from swtel.hub.auth import store
from swtel.hub.auth.passwords import hash_password_sync
from swtel.hub.live.routes import Authenticate, live_components
from swtel.hub.live.service import LiveService
from swtel.shared import settings as settings_mod
from swtel.shared.natsconn import connect

from .ports import free_port
from .telemetry import hub_settings, migrate
from .waits import eventually


@dataclass
class LiveHub:
    url: str
    ws_url: str
    service: LiveService
    nc: NATS


@contextlib.asynccontextmanager
async def serve(app: Litestar, what: str, **config: object) -> AsyncIterator[int]:
    """``app`` under uvicorn on a free loopback port (yielded) until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws_per_message_deflate=False, **config))  # type: ignore[arg-type]
    task = asyncio.get_running_loop().create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return server.started

    try:
        await eventually(started, timeout=20, what=what)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@contextlib.asynccontextmanager
async def live_view(nats_url: str, authenticate: Authenticate | None = None, **overrides: object,
                    ) -> AsyncIterator[LiveHub]:
    s = settings_mod.load({"nats_url": nats_url, **overrides}, env={})
    nc = await connect(s, name="test-hub", long_running=True)
    try:
        handlers, on_startup, on_shutdown, service = live_components(s, nc, authenticate=authenticate)
        app = Litestar(route_handlers=handlers, on_startup=on_startup, on_shutdown=on_shutdown)
        async with serve(app, "the live view to start", lifespan="on", ws="websockets-sansio") as port:
            await service.wait_ready()
            yield LiveHub(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", service, nc)
    finally:
        await nc.close()


PASSWORD = "correct horse battery staple"


@contextlib.asynccontextmanager
async def running_hub(nats_url: str, database_url: str, **extra: object) -> AsyncIterator[str]:
    """The real hub app on a free port; yields its base URL."""
    async with serve(create_app(hub_settings(nats_url, database_url, **extra)), "the hub to start") as port:
        yield f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture
async def operator_db(database_url: str) -> str:
    """A migrated database with the operator ``op`` (password ``PASSWORD``)."""
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await store.add_user(conn, "op", "operator", hash_password_sync(PASSWORD))
    finally:
        await conn.close()
    return database_url


async def sign_in(p: object, url: str, hash_: str) -> None:
    """Sign ``op`` in through the login form, then open the page at ``hash_`` (e.g. ``#/fleet``)."""
    await p.goto(url + "/")  # type: ignore[attr-defined]
    await p.wait_for_url("**/login**")  # type: ignore[attr-defined]
    await p.fill('input[name="name"]', "op")  # type: ignore[attr-defined]
    await p.fill('input[name="password"]', PASSWORD)  # type: ignore[attr-defined]
    await p.click('button[type="submit"]')  # type: ignore[attr-defined]
    await p.wait_for_url(url + "/")  # type: ignore[attr-defined]  # the server never sees the #fragment
    await p.goto(url + "/" + hash_)  # type: ignore[attr-defined]
