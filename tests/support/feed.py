"""Stand-in for collector agents in the live-view tests: real KV presence and leases, real telemetry on NATS.

Values come from the project's device simulator model (``agent/sim/model.py``), so counters grow the way a
switch's do. Each :class:`FeedAgent` writes its presence every heartbeat and claims leases with the same
KV operations agents use; "killing" one stops its heartbeat and publishing, and its presence expires by
the bucket's max age as a dead agent's would. Swapping in real ``swtel agent run`` processes changes only
who writes these entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from nats.aio.client import Client as NATS
from nats.js.errors import KeyWrongLastSequenceError
from swtel.agent.sim.model import COUNTERS, SimDevice
from swtel.shared import inventory, naming, wire


def batches(sim: SimDevice, agent: str, token: int, seq: int) -> list[wire.TelemetryBatch]:
    """One interfaces batch and one system batch of ``sim``, as an agent would publish them."""
    ts = time.time_ns()
    samples = []
    for i, ifname in enumerate(sim.ifnames):
        base = f"/interfaces/interface[name={ifname}]/state"
        for name, value in sim.counters(i).items():
            samples.append(wire.Sample(f"{base}/counters/{name}", value, ts))
        samples.append(wire.Sample(f"{base}/oper-status", sim.oper_status(i), ts))
    total, used = sim.memory()
    system = [
        wire.Sample("/system/cpus/cpu[index=0]/state/total/instant", sim.cpu_percent(), ts),
        wire.Sample("/system/memory/state/physical", total, ts),
        wire.Sample("/system/memory/state/utilized", used, ts),
        wire.Sample("/components/component[name=CPU]/state/temperature/instant", sim.temperature(), ts),
    ]
    return [wire.TelemetryBatch(sim.name, agent, token, seq, "interfaces", samples),
            wire.TelemetryBatch(sim.name, agent, token, seq + 1, "system", system)]


assert "in-octets" in COUNTERS


class FeedAgent:
    def __init__(self, nc: NATS, agent_id: str, *, interval_s: float = 0.5, interfaces: int = 4) -> None:
        self.nc, self.id, self.interval_s, self.interfaces = nc, agent_id, interval_s, interfaces
        self.incarnation = uuid.uuid4().hex[:12]
        self.held: dict[str, int] = {}  # device → lease token
        self.sims: dict[str, SimDevice] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> FeedAgent:
        js = self.nc.jetstream()
        self.agents_kv = await js.key_value(naming.BUCKET_AGENTS)
        self.leases_kv = await js.key_value(naming.BUCKET_LEASES)
        await self._heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def claim(self, devices: list[str]) -> None:
        """Take each device's lease: create when free, compare-and-set over whatever is there otherwise."""
        for name in devices:
            value = wire.encode_kv(wire.Lease(name, self.id, self.incarnation, time.time_ns()))
            key = naming.encode_name(name)
            try:
                token = await self.leases_kv.create(key, value)
            except KeyWrongLastSequenceError:
                current = await self.leases_kv.get(key)
                token = await self.leases_kv.update(key, value, last=current.revision)
            self.held[name] = token
            self.sims.setdefault(name, SimDevice(name, platform="eos", interfaces=self.interfaces))
            await self.nc.publish(naming.event_subject(name, "lease_acquired"), wire.encode(
                wire.Event(name, self.id, "lease_acquired", time.time_ns(), f"token {token}")))

    async def _heartbeat(self) -> None:
        p = wire.AgentPresence(self.id, self.incarnation, "127.0.0.1", "test", 1000, {}, len(self.held),
                               False, time.time_ns())
        await self.agents_kv.put(naming.encode_name(self.id), wire.encode_kv(p))

    async def _run(self) -> None:
        seq = 1
        while True:
            await self._heartbeat()
            for name, token in list(self.held.items()):
                for batch in batches(self.sims[name], self.id, token, seq):
                    await self.nc.publish(naming.telemetry_subject(name, batch.subscription), wire.encode(batch))
            seq += 2
            await asyncio.sleep(self.interval_s)

    async def kill(self) -> None:
        """As kill -9: no more heartbeats or telemetry; presence expires, leases stay until taken over."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stop(self) -> None:
        await self.kill()


async def add_devices(nc: NATS, names: list[str], interval: str = "1s") -> None:
    inv = await inventory.Inventory.open(nc.jetstream())
    await inv.add_many([inventory.make_device(n, f"10.0.{i // 250}.{i % 250 + 1}", "gnmi", platform="eos",
                                              interval=interval, tags={"site": "dc1" if i % 2 else "dc2"})
                        for i, n in enumerate(names)])
