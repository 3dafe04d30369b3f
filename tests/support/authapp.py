"""A small hub for the authentication tests: the real auth components, a real PostgreSQL and NATS,
served by uvicorn on a free loopback port, plus stand-ins for the routes other branches own (each named
``fake_…``: the real read API and live WebSocket come from the hub and dashboard branches)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from litestar import Litestar, Request, WebSocket, get, websocket

from support.ports import free_port
from support.waits import eventually

from swtel.hub.auth import auth_components, principal_of, store
from swtel.hub.auth.passwords import hash_password_sync
from swtel.hub.auth.schema import ensure_schema
from swtel.shared import settings as settings_mod
from swtel.shared.inventory import Inventory
from swtel.shared.natsconn import connect

PASSWORDS = {"ada": "admin-pass-1234", "otto": "operator-pass-5678", "vera": "viewer-pass-9012"}
ROLES = {"ada": "admin", "otto": "operator", "vera": "viewer"}


@get("/api/health")
async def fake_health() -> dict[str, str]:
    return {"status": "ok"}


@get("/api/devices")
async def fake_devices_list(request: Request[Any, Any, Any]) -> list[str]:
    inv: Inventory = request.app.state.inventory
    return [d.name for d in await inv.list()]


@get("/api/fake-read")
async def fake_read() -> dict[str, bool]:
    return {"ok": True}


@get("/fake-dashboard", media_type="text/html")
async def fake_dashboard() -> str:
    return "<h1>dashboard</h1>"


@websocket("/ws/fake-live")
async def fake_live(socket: WebSocket) -> None:
    await socket.accept()
    who = principal_of(socket)
    await socket.send_json({"user": who.name if who else None})
    await socket.close()


@functools.cache
def _hashed(password: str) -> str:
    """argon2 at production cost takes ~0.2-0.6 s here: hash each test password once per session."""
    return hash_password_sync(password)


async def add_users(database_url: str, users: dict[str, str] | None = None) -> None:
    users = users if users is not None else ROLES
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn)
        for name, role in users.items():
            hashed = await asyncio.to_thread(_hashed, PASSWORDS.get(name, f"{name}-password"))
            await store.add_user(conn, name, role, hashed)
    finally:
        await conn.close()


def build_app(database_url: str, nats_url: str, **overrides: Any) -> Litestar:
    s = settings_mod.load({"database_url": database_url, "nats_url": nats_url, **overrides}, env={})
    state: dict[str, Any] = {}
    auth = auth_components(s, lambda: state["pool"], lambda: state["inventory"])

    async def open_connections(app: Litestar) -> None:  # what the hub does in its own startup
        state["pool"] = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        state["nc"] = await connect(s, name="test-hub")
        state["inventory"] = app.state.inventory = await Inventory.open(state["nc"].jetstream(timeout=5))

    async def close_connections() -> None:
        await state["nc"].close()
        await state["pool"].close()

    return Litestar(
        route_handlers=[fake_health, fake_devices_list, fake_read, fake_dashboard, fake_live, *auth.route_handlers],
        middleware=auth.middleware,
        on_startup=[open_connections, *auth.on_startup],
        on_shutdown=[close_connections],
    )


@dataclass
class Hub:
    url: str
    app: Litestar

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kw)


@asynccontextmanager
async def serve(app: Litestar, **uvicorn_options: Any) -> AsyncIterator[Hub]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
        proxy_headers=True, forwarded_allow_ips="127.0.0.1", **uvicorn_options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # startup failed: raise its error here
        return server.started

    try:
        await eventually(started, timeout=20, what="the test hub to start")
        yield Hub(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def login(client: httpx.AsyncClient, name: str, password: str | None = None) -> httpx.Response:
    """Log in like the dashboard's script does: fetch the CSRF token, then POST JSON with it."""
    csrf = (await client.get("/api/csrf")).json()["csrf_token"]
    return await client.post(
        "/api/login", json={"name": name, "password": password or PASSWORDS[name]}, headers={"X-CSRFToken": csrf}
    )


def csrf_header(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"]}
