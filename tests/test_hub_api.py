"""The query API's contract: inventory views shared with the CLI, 400 for bad parameters, 404 for unknown
names, OpenAPI; and `swtel db migrate` on a dead database."""

from __future__ import annotations

import nats
import pytest
from litestar.testing import AsyncTestClient

from support.telemetry import db, hub_settings, migrate
from support.waits import eventually
from swtel.hub.app import create_app
from swtel.shared.inventory import Inventory, make_device
from swtel.shared.views import device_view


@pytest.mark.asyncio
async def test_inventory_views_errors_and_schema(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    nc = await nats.connect(bootstrapped)
    inv = await Inventory.open(nc.jetstream())
    dev = make_device("leaf-01.dc1", "10.0.0.1", "gnmi", tags={"site": "dc1"})
    await inv.add(dev)
    try:
        async with AsyncTestClient(create_app(hub_settings(bootstrapped, database_url), ingest=False, auth=False)) as client:
            r = await client.get("/api/devices")
            assert r.status_code == 200 and r.json() == [device_view(dev)]
            r = await client.get("/api/devices/leaf-01.dc1")
            assert r.json() == {**device_view(dev), "collection": None}  # no holder: no collection detail
            assert (await client.get("/api/devices/nope")).status_code == 404
            assert (await client.get("/api/agents")).json() == []
            assert (await client.get("/api/leases")).json() == []
            assert (await client.get("/api/series", params={"device": "leaf-01.dc1"})).json() == []
            r = await client.get("/api/series", params={"device": "ghost"})
            assert r.status_code == 404 and "ghost" in r.json()["detail"]
            assert (await client.get("/api/series")).status_code == 400
            for params, fragment in [
                ({"series": "x"}, "series id"),
                ({"series": "1", "fn": "median"}, "fn 'median' is unknown"),
                ({"series": "1", "step": "soon"}, "step 'soon' is not a duration"),
                ({"series": "1", "start": "yesterday"}, "start 'yesterday' is not a time"),
                ({"series": "1", "start": "now", "end": "now-1h"}, "must be before end"),
                ({"series": "1", "start": "now-30d", "step": "1s"}, "at most 11000"),
            ]:
                r = await client.get("/api/query", params=params)
                assert r.status_code == 400, (params, r.text)
                assert fragment in r.json()["detail"], (params, r.json())
            r = await client.get("/api/query", params={"series": "999"})
            assert r.status_code == 404 and "999" in r.json()["detail"]
            async def mirrored() -> bool:  # the inventory mirror for SQL joins
                async with db(database_url) as conn:
                    return await conn.fetchval("SELECT address FROM devices WHERE name = 'leaf-01.dc1'") == "10.0.0.1"

            await eventually(mirrored, timeout=10, what="the devices table to mirror the inventory")
            spec = (await client.get("/schema/openapi.json")).json()
            for path in ("/api/health", "/api/devices", "/api/devices/{name}", "/api/agents", "/api/leases",
                         "/api/series", "/api/query", "/metrics"):
                assert path in spec["paths"], path
    finally:
        await nc.close()


def test_db_migrate_on_a_dead_database_is_one_line_without_password(swtel) -> None:  # type: ignore[no-untyped-def]
    from support.ports import free_port

    r = swtel("db", "migrate", "--db", f"postgresql://swtel:hunter2@127.0.0.1:{free_port()}/swtel")
    assert r.code == 2
    assert "cannot connect to PostgreSQL at postgresql://swtel:***@127.0.0.1" in r.err
    assert "hunter2" not in r.err + r.out and "Traceback" not in r.err


def test_db_migrate_twice(swtel, database_url: str, db_backend: str) -> None:  # type: ignore[no-untyped-def]
    first = swtel("db", "migrate", "--db", database_url)
    assert first.code == 0 and f"backend {db_backend}; migrations applied: 1" in first.out, first
    again = swtel("db", "migrate", "--db", database_url)
    assert again.code == 0 and "none (up to date)" in again.out


def test_hub_run_on_an_unmigrated_database_is_one_line(swtel, database_url: str) -> None:  # type: ignore[no-untyped-def]
    r = swtel("hub", "run", "--db", database_url, "--nats", "nats://127.0.0.1:1", "--port", "0")
    assert r.code == 2 and "run `swtel db migrate` first" in r.err and "Traceback" not in r.err, r
