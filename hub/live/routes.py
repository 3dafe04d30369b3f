"""Litestar routes of the live view: ``WS /ws/live`` and the dashboard pages at ``/``.

``live_components(settings, nc)`` returns what the hub app mounts: route handlers, a startup hook and a
shutdown hook. The WebSocket protocol is described in docs/DASHBOARD.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import WebSocket, get, websocket
from litestar.response import File
from litestar.exceptions import WebSocketDisconnect
from litestar.static_files import create_static_files_router
from nats.aio.client import Client as NATS
from swtel.shared.errors import InvalidInput
from swtel.shared.settings import Settings

from .fanout import Client, SlowClient
from .service import LiveService

log = logging.getLogger("swtel.hub.live")

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# the chart library ships inside the plotly wheel (a dependency), at a path stable across plotly 5 – 7
PLOTLY_JS = Path(str(files("plotly").joinpath("package_data", "plotly.min.js")))
MAX_REQUEST_BYTES = 64 * 1024
# Close codes: 1008 policy violation (origin, too slow), 4401 not authenticated (application range).
CLOSE_POLICY, CLOSE_UNAUTHENTICATED = 1008, 4401

Authenticate = Callable[[WebSocket], Awaitable[bool]]


def origin_allowed(origin: str | None, host: str | None, allowed: str) -> bool:
    """Same-origin always; else only origins listed in ``live_allowed_origins`` (``*``: any).

    No ``Origin`` header means a non-browser client (a script, the bench): browsers always send one on a
    WebSocket handshake, so a missing header cannot be a cross-site page.
    """
    if origin is None:
        return True
    extra = {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}
    if "*" in extra or origin.rstrip("/") in extra:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def initial_requests(params: Any) -> list[dict[str, Any]]:
    """``?device=A&device=B&paths=/interfaces&fleet=1&agents=1&events=1`` as the equivalent requests."""
    out: list[dict[str, Any]] = []
    devices = [d for v in params.getall("device", []) for d in v.split(",") if d]
    if devices:
        out.append({"op": "watch", "devices": devices, "paths": params.getall("paths", [])})
    for op in ("fleet", "agents", "events"):
        if params.get(op) in ("1", "true", "yes"):
            out.append({"op": op, "on": True})
    return out


def live_components(
    settings: Settings, nc: NATS, *, authenticate: Authenticate | None = None
) -> tuple[list[Any], list[Callable[[], Awaitable[None]]], list[Callable[[], Awaitable[None]]], LiveService]:
    """(route handlers, on_startup hooks, on_shutdown hooks, the service) for the hub app.

    ``authenticate`` is called with each WebSocket before it is accepted, once the hub has users; a
    ``False`` answer closes it with 4401.
    """
    service = LiveService(settings, nc)
    fanout = service.fanout

    @websocket("/ws/live")
    async def live_socket(socket: WebSocket) -> None:
        if not origin_allowed(socket.headers.get("origin"), socket.headers.get("host"),
                              settings.live_allowed_origins):
            fanout.stats["refused_origin"] += 1
            await socket.close(code=CLOSE_POLICY, reason="origin not allowed")
            return
        if authenticate is not None and not await authenticate(socket):
            await socket.close(code=CLOSE_UNAUTHENTICATED, reason="not authenticated")
            return
        await socket.accept()
        client = fanout.add(lambda data: socket.send_text(data.decode()))
        try:
            for request in initial_requests(socket.query_params):
                _apply(client, request)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_read(socket, client))
                tg.create_task(client.run())
        except* WebSocketDisconnect:
            pass
        except* SlowClient as group:
            fanout.stats["disconnected_slow"] += 1
            log.info("live client disconnected: %s", group.exceptions[0])
            with contextlib.suppress(Exception):  # its buffer is full: the close frame may not fit either
                await asyncio.wait_for(socket.close(code=CLOSE_POLICY, reason="too slow"), 1.0)
        finally:
            fanout.remove(client)

    @get("/api/live/stats", sync_to_thread=False)
    def live_stats() -> dict[str, Any]:
        """Counters of the live view (cache, fan-out), for operators and the bench."""
        return {"cache": service.cache.stats, "series": service.cache.series_count,
                "devices": len(service.cache.devices), "clients": len(fanout.clients),
                "fanout": fanout.stats, "kv_malformed": service.fleet.malformed}

    @get("/vendor/plotly.min.js", include_in_schema=False, sync_to_thread=False, media_type="text/javascript")
    def plotly_js() -> File:
        """plotly.js from the installed ``plotly`` wheel: the charts never load anything from a CDN."""
        return File(path=PLOTLY_JS, content_disposition_type="inline",
                    headers={"Cache-Control": "public, max-age=86400"})

    static = create_static_files_router(path="/", directories=[STATIC_DIR], html_mode=True, name="dashboard")

    async def on_startup() -> None:
        service.start()

    async def on_shutdown() -> None:
        await service.close()

    return [live_socket, live_stats, plotly_js, static], [on_startup], [on_shutdown], service


def _apply(client: Client, request: Any) -> None:
    try:
        if not isinstance(request, dict):
            raise InvalidInput("a request is a JSON object with an op")
        client.apply(request)
    except InvalidInput as e:  # a bad request is answered, never fatal to the connection
        client.errors.append(str(e))
        client.wake.set()


async def _read(socket: WebSocket, client: Client) -> None:
    while True:
        text = await socket.receive_text()
        if len(text) > MAX_REQUEST_BYTES:
            _apply(client, None)
            continue
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        _apply(client, request)
