"""An SNMP device end to end on the agent side: added with ``swtel device add --protocol snmp``, held by an
agent slot (credential from the secrets file, community never in KV), telemetry and facts on real NATS."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats
import pytest
from support.waits import eventually
from swtel.agent import collect
from swtel.agent.collectors import paths
from swtel.agent.credentials import Credentials
from swtel.agent.sim.model import SimDevice
from swtel.agent.sim.snmp_agent import serve_snmp
from swtel.shared import naming, settings, wire
from swtel.shared.inventory import Inventory


@pytest.mark.asyncio
async def test_snmp_device_from_inventory_to_telemetry_and_facts(bootstrapped: str, tmp_path: Path,
                                                                  swtel: Any) -> None:
    sim = SimDevice("snmp-1.lab", platform="eos", interfaces=4, password="c0mmunity")
    agents = await serve_snmp([sim], "127.0.0.1", [0])
    nc = await nats.connect(bootstrapped)
    task: asyncio.Task[None] | None = None
    try:
        added = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "add", sim.name, "--address",
                                        "127.0.0.1", "--protocol", "snmp", "--port", str(agents.ports[0]),
                                        "--platform", "eos", "--credential", "lab/snmp", "--interval", "1s")
        assert added.code == 0, added.err
        inv = await Inventory.open(nc.jetstream())
        dev, _ = await inv.get(sim.name)
        raw = (await inv.devices.get(naming.encode_name(sim.name))).value
        assert dev.protocol == "snmp" and b"c0mmunity" not in raw  # only the reference is in KV

        got: list[wire.TelemetryBatch] = []
        facts: list[wire.DeviceFacts] = []

        async def on_msg(msg: Any) -> None:
            m = wire.message_decoder.decode(msg.data)
            if isinstance(m, wire.TelemetryBatch):
                got.append(m)
            elif isinstance(m, wire.DeviceFacts):
                facts.append(m)

        await nc.subscribe(f"swtel.telemetry.{naming.encode_name(sim.name)}.*", cb=on_msg)
        await nc.subscribe(naming.event_subject(sim.name, "*"), cb=on_msg)
        secrets = tmp_path / "secrets.toml"
        secrets.write_text('["lab/snmp"]\ncommunity = "c0mmunity"\n')
        s = settings.load({"secrets_file": str(secrets)}, env={})
        collection = collect.Collection(nc, s, "agent-s", credentials=Credentials(str(secrets), env={}))
        task = asyncio.create_task(collection.slot(dev, 7))

        async def both_subscriptions() -> bool:
            return {b.subscription for b in got} >= {"interfaces", "system"} and bool(facts)

        await eventually(both_subscriptions, timeout=30, what=f"interfaces and system batches and facts; {got[:1]}")
        values = {s.path: s.value for b in got for s in b.samples}
        assert all(b.token == 7 and b.agent == "agent-s" for b in got)
        assert paths.counter("Ethernet1", "in-octets") in values and paths.CPU in values
        assert collection.device_stats()[sim.name]["status"] == "collecting"
        assert (facts[0].vendor, facts[0].serial, facts[0].protocol) == ("Arista", sim.serial, "snmp")
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await nc.close()
        await agents.close()
