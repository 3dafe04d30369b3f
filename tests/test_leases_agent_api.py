"""The in-process Agent interface other parts rely on: slot_factory(device, token), restart on a device
change with the same token, release on removal, the status request with collector statistics, events."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from support.agents import FAST_ENV, Fleet
from support.natsserver import NatsServer
from support.waits import eventually


def fast_settings(url: str, agent_id: str):
    from swtel.shared import settings

    env = dict(FAST_ENV, SWTEL_AGENT_ID=agent_id, SWTEL_NATS_URL=url)
    return settings.load(env=env)


@pytest.mark.asyncio
async def test_slots_follow_the_claim_with_its_token(fleet: Fleet) -> None:
    from swtel.agent.agent import Agent
    from swtel.shared import naming, wire

    await fleet.add_devices(3)
    running: dict[str, list[tuple[str, int]]] = {}  # device → [(address, token)] of live slots
    history: list[tuple[str, str, int]] = []

    async def slot(device: wire.Device, token: int) -> None:
        running.setdefault(device.name, []).append((device.address, token))
        history.append(("start", device.name, token))
        try:
            await asyncio.Event().wait()
        finally:
            running[device.name].remove((device.address, token))
            history.append(("stop", device.name, token))

    events: list[wire.Event] = []

    async def on_event(msg) -> None:
        events.append(msgspec.msgpack.decode(msg.data, type=wire.Event))

    await fleet.nc.subscribe("swtel.event.>", cb=on_event)
    agent = Agent(fast_settings(fleet.url, "inproc"), slot_factory=slot,
                  stats_provider=lambda: {"dev-0001": {"status": "collecting", "samples": 7}})
    task = asyncio.create_task(agent.run())
    try:
        async def all_running() -> bool:
            return sorted(d for d, s in running.items() if s) == ["dev-0000", "dev-0001", "dev-0002"]

        await eventually(all_running, timeout=10, what="a slot for each device")
        leases = {lease.device: rev for lease, rev in await fleet.inv.lease_list()}
        assert {d: s[0][1] for d, s in running.items()} == leases  # the token is the claim revision

        reply = await fleet.nc.request(naming.ctl_subject("inproc", "status"), b"", timeout=2)
        status = json.loads(reply.data)
        assert status["healthy"] and status["devices"]["dev-0001"] == {
            "token": leases["dev-0001"], "status": "collecting", "samples": 7}

        # A change to the device's entry restarts its slot with the same token.
        await fleet.inv.modify("dev-0001", lambda d: msgspec.structs.replace(d, address="127.0.0.2"))
        await eventually(lambda: _is(running.get("dev-0001"), [("127.0.0.2", leases["dev-0001"])]), timeout=5,
                         what="the slot restarted on the new address with the same token")
        assert history.count(("stop", "dev-0001", leases["dev-0001"])) == 1

        # Removing a device stops its slot, then releases the lease.
        await fleet.inv.remove("dev-0002")
        await eventually(lambda: _is(running.get("dev-0002"), []), timeout=5, what="the removed device's slot to stop")
        await eventually(lambda: _no_lease(fleet, "dev-0002"), timeout=5, what="the removed device's lease released")
        await eventually(lambda: _has_event(events, "dev-0002", "lease_released"), timeout=5, what="lease_released")
        assert any(e.kind == "lease_acquired" and e.device == "dev-0000" and e.agent == "inproc" for e in events)
    finally:
        await agent.close()
        await asyncio.wait_for(task, 10)
    assert not any(running.values()), "every slot is stopped when the agent closes"
    assert await fleet.inv.lease_list() == []  # and every lease released


async def _is(value, want) -> bool:
    return value == want


async def _no_lease(fleet: Fleet, device: str) -> bool:
    return device not in {lease.device for lease, _ in await fleet.inv.lease_list()}


async def _has_event(events, device: str, kind: str) -> bool:
    return any(e.device == device and e.kind == kind for e in events)


@pytest.mark.asyncio
async def test_agent_without_buckets_says_so(nats_server: NatsServer) -> None:
    from swtel.agent.agent import Agent
    from swtel.shared.errors import UserError

    with pytest.raises(UserError, match="swtel nats init"):
        await asyncio.wait_for(Agent(fast_settings(nats_server.url, "lonely")).run(), 10)


def test_quick_replan_after_a_leave_equals_the_full_plan() -> None:
    from swtel.agent.agent import Agent
    from swtel.shared import rendezvous as r
    from swtel.shared.settings import Settings

    agent = Agent(Settings(agent_id="x"))
    agent._specs = {f"d{i}": r.DeviceSpec(f"d{i}", pinned="a4" if i % 11 == 0 else None,
                                          tags={"site": "dc1"} if i % 7 == 0 else {}) for i in range(2000)}
    old = tuple(r.Candidate(f"a{i}", tags={"site": "dc1"} if i == 2 else {}) for i in range(5))
    agent.plan = r.plan(agent._specs.values(), old)
    for gone in (["a1"], ["a2"], ["a4"], ["a1", "a3"]):
        new = tuple(c for c in old if c.id not in gone)
        assert agent._plan_without(old, new) == r.plan(agent._specs.values(), new), gone
    full = tuple(r.Candidate(f"a{i}", capacity=450) for i in range(5))  # capacity binds: full plan needed
    agent.plan = r.plan(agent._specs.values(), full)
    assert agent._plan_without(full, full[1:]) is None
