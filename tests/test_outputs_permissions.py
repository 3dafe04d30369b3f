"""The committed nats/ permissions let a hub run outputs (read swtel_outputs, its durable consumers) and
nothing more: it cannot write output definitions. The output fences by the lease history, as ingest does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from nats.js.errors import KeyNotFoundError

from support import tsdb
from support.telemetry import claim, migrate
from support.waits import eventually
from swtel.hub.fencing import LeaseLedger
from swtel.hub.outputs.manager import OutputManager
from swtel.hub.outputs.model import OutputStore, make_output
from swtel.shared import naming, wire
from test_nats_configs import Client, clients, role_settings, secured, workdir  # noqa: F401 (fixtures)


@pytest.mark.asyncio
async def test_hub_role_runs_an_output_and_cannot_write_definitions(clients: dict[str, Client],  # noqa: F811
                                                                     secured: Any, database_url: str) -> None:  # noqa: F811
    admin, agent, hub = clients["admin"], clients["agent"], clients["hub"]
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    ledger = LeaseLedger(hub.nc, pool)  # fencing under the hub role: lease history and changes
    await ledger.start()
    with tsdb.InfluxDB1() as influx:
        influx.query("CREATE DATABASE swtel")
        store = await OutputStore.open(admin.js)
        await store.add(make_output("lp", "influx", url=influx.url, database="swtel"))
        await store.set_paused("lp", True)
        token = await claim(admin.js, "d1", "a1")
        ts = time.time_ns()
        batch = wire.TelemetryBatch("d1", "a1", token, 1, "if", [wire.Sample("/system/memory/state/physical", 42, ts)])
        await agent.js.publish(naming.telemetry_subject("d1", "if"), wire.encode(batch),
                               headers={"Nats-Msg-Id": f"d1:{token}:1"})
        manager = OutputManager(hub.nc, role_settings(secured.url, "hub"), ledger=ledger)
        task = asyncio.create_task(manager.run())
        try:
            # paused with one message waiting: its age is read from the stream (the lag in seconds)
            await eventually(lambda: _waiting(manager), timeout=20, what="the hub role to read the output's lag")
            await store.set_paused("lp", False)
            await eventually(lambda: _running(manager), timeout=20, what="the hub role to run the output")

            async def written() -> Any:
                return await influx.series("system_memory_physical", "swtel")

            got = await eventually(written, timeout=20, what="the sample in InfluxDB")
            assert got == {(("device", "d1"),): {ts // 1_000_000: 42.0}}
            await eventually(lambda: _lag_zero(manager), timeout=10, what="the output's lag read by the hub role")
        finally:
            await manager.close()
            await task
            await ledger.close()
            await pool.close()
    kv = await hub.js.key_value(naming.BUCKET_OUTPUTS)
    await hub.refused(kv.put("x", b"{}"), f'"$KV.{naming.BUCKET_OUTPUTS}.x"')
    with pytest.raises(KeyNotFoundError):
        await (await admin.js.key_value(naming.BUCKET_OUTPUTS)).get("x")
    # the only violation the hub saw is the write it must not make: running the output needed none
    assert all(f"$kv.{naming.BUCKET_OUTPUTS}.x" in e.lower() for e in hub.violations()), hub.errors


async def _waiting(m: OutputManager) -> bool:
    s = m.states.get("lp")
    return bool(s and s.lag_messages == 1 and s.oldest_pending and s.lag_seconds() > 0)


async def _running(m: OutputManager) -> bool:
    s = m.states.get("lp")
    return bool(s and s.running)


async def _lag_zero(m: OutputManager) -> bool:
    s = m.states.get("lp")
    return bool(s and s.messages >= 1 and s.lag_messages == 0)
