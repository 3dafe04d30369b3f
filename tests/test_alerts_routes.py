"""The alert HTTP handlers in a real Litestar app served by uvicorn on a loopback port, against PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from litestar import Litestar

from support.alertdb import alert_pool
from support.waits import eventually
from swtel.hub.alerts import db
from swtel.hub.alerts.engine import Engine
from swtel.hub.alerts.routes import alert_routes
from swtel.hub.alerts.rules import Rule
from swtel.hub.alerts.sources import LiveSource
from swtel.shared import wire

CPU = "/system/cpus/cpu[index=0]/state/total/instant"
T0 = 1_800_000_000.0


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        async def started() -> bool:
            if task.done():
                task.result()  # a failed start raises here instead of timing out
            return server.started

        await eventually(started, timeout=10, what="uvicorn to start")  # uvicorn offers no event for this
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_list_ack_history_rules(database_url: str) -> None:
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_rule(conn, Rule(name="cpu-high", device="sw1", path=CPU, condition="above", threshold=90,
                                         for_s=60))
        src = LiveSource([wire.Device(name="sw1", address="127.0.0.1", port=9339, protocol="gnmi")])
        src.observe("sw1", CPU, 99, T0)
        eng = Engine(pool, src)
        await eng.evaluate_once(T0)
        app = Litestar(route_handlers=alert_routes(pool))
        async with serve(app) as client:
            (pending,) = (await client.get("/api/alerts")).json()
            assert pending["state"] == "pending"
            r = await client.post(f"/api/alerts/{pending['id']}/ack", json={"by": "bob"})
            assert r.status_code == 409 and "is pending, not firing" in r.json()["detail"]
            await eng.evaluate_once(T0 + 60)
            r = await client.post(f"/api/alerts/{pending['id']}/ack", json={"by": "bob"})
            assert r.status_code == 200 and r.json() == {"id": pending["id"], "acknowledged": True, "by": "bob"}
            assert (await client.post("/api/alerts/999/ack")).status_code == 404
            (firing,) = (await client.get("/api/alerts")).json()
            assert firing["state"] == "firing" and firing["acked_by"] == "bob"
            hist = (await client.get("/api/alerts/history", params={"alert_id": firing["id"]})).json()
            assert [h["to_state"] for h in hist] == ["acknowledged", "firing", "pending"]
            rules = (await client.get("/api/alert-rules")).json()
            assert rules[0]["name"] == "cpu-high" and rules[0]["for_s"] == 60
            assert (await client.get("/api/alert-outbox")).json() == []
