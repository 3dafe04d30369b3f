"""An SNMP device end to end on the agent side: added with ``swtel device add --protocol snmp``, held by an
agent slot (credential from the secrets file, community never in KV), telemetry and facts on real NATS."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import nats
import pytest
from support.waits import eventually
from swtel.agent import collect
from swtel.agent.collectors import paths, snmp
from swtel.agent.collectors.base import Credential
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
        values = {s.path: s.value for b in got for s in wire.samples_of(b)}
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


def free_udp_range(n: int) -> int:
    for _ in range(50):
        base = random.randint(30000, 60000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


@pytest.mark.asyncio
async def test_swtel_sim_run_protocol_snmp_registers_and_answers(bootstrapped: str) -> None:
    base = free_udp_range(2)
    env = {**os.environ, "SWTEL_NATS_URL": bootstrapped}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swtel.cli", "sim", "run", "--protocol", "snmp", "--devices", "2", "--interfaces", "3",
        "--base-port", str(base), "--register", "--password", "c0mm", "--name-prefix", "snmplab", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    nc = await nats.connect(bootstrapped)
    try:
        inv = await Inventory.open(nc.jetstream())

        async def registered() -> list[wire.Device]:
            devices = await inv.list()
            return devices if len(devices) == 2 else []

        devices = await eventually(registered, timeout=30, what="two registered SNMP devices")
        assert [(d.protocol, d.port) for d in devices] == [("snmp", base), ("snmp", base + 1)]
        poller = await snmp.connect(devices[1], Credential("", "", community="c0mm"), snmp.SnmpOptions())
        values = {s.path: s.value for s in await poller.poll({"interfaces"})}
        assert paths.oper_status("eth2") in values
    finally:
        await nc.close()
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    text = err.decode()
    assert "serving 2 simulated snmp switch(es)" in text and "SWTEL_CRED_SIM_COMMUNITY" in text
    assert "c0mm" not in text  # the community is never printed
