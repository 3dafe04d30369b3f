"""Failures: a partitioned agent fences itself before its devices are taken; NATS paused and restarted;
a server that does not signal expiry. Every test also checks that no device ever had two active slots."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from support.agents import FAST_ENV, FAST_TTL_S, Fleet, slot_intervals
from support.natsserver import NatsServer
from support.tcpproxy import TcpProxy
from support.waits import eventually

N = 150


@pytest.mark.asyncio
async def test_partitioned_agent_stops_before_its_devices_are_taken(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    proxy = await TcpProxy(fleet.server.port).start()
    try:
        cut_off = fleet.start("a1", url=proxy.url)  # a1 reaches NATS only through the proxy
        fleet.start("a2"), fleet.start("a3")
        want = fleet.expected(devices, ["a1", "a2", "a3"])
        await fleet.converge(want, timeout=20, what="cold start")
        held = {d for d, a in want.items() if a == "a1"}

        t_cut = time.time()
        proxy.cut()
        await fleet.converge(fleet.expected(devices, ["a2", "a3"]), timeout=10,
                             what="the partitioned agent's devices to be collected by the others")
        stops = {iv.device: iv for iv in slot_intervals([cut_off]) if iv.reason == "fenced"}
        assert set(stops) == held, "the partitioned agent must stop every slot by fencing itself"
        assert all(iv.end is not None and iv.end - t_cut < FAST_TTL_S for iv in stops.values())
        taken = {iv.device: iv.start for iv in slot_intervals(fleet.procs) if iv.agent != "a1" and iv.start > t_cut}
        late = [d for d in held if taken[d] <= stops[d].end]  # type: ignore[operator]
        assert not late, f"taken before the old holder stopped: {late[:3]}"
        fleet.assert_no_overlap()

        proxy.heal()  # back under a new incarnation; it gets its share again after the settle period
        await fleet.converge(want, timeout=20, what="the healed agent to get its share back")
        log = cut_off.log_path.read_text()
        assert "fenced agent=a1" in log and len(set(re.findall(r"presence valid agent=a1 incarnation=(\w+)", log))) >= 2
        fleet.assert_no_overlap()
    finally:
        await proxy.close()


@pytest.mark.asyncio
async def test_nats_paused_every_agent_fences_then_the_fleet_converges(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    for a in ("a1", "a2"):
        fleet.start(a)
    want = fleet.expected(devices, ["a1", "a2"])
    await fleet.converge(want, timeout=20, what="cold start")
    t_pause = time.time()
    fleet.server.pause()
    try:
        async def all_fenced() -> bool:
            return not fleet.active()

        await eventually(all_fenced, timeout=FAST_TTL_S + 2, what="every agent to stop collecting while NATS is paused")
        assert time.time() - t_pause < FAST_TTL_S + 1
    finally:
        fleet.server.resume()
    await fleet.converge(want, timeout=20, what="the fleet to converge after NATS resumed")
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_fleet_converges_after_a_nats_restart(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    for a in ("a1", "a2", "a3"):
        fleet.start(a)
    want = fleet.expected(devices, ["a1", "a2", "a3"])
    await fleet.converge(want, timeout=20, what="cold start")
    fleet.server.stop()
    await asyncio.sleep(FAST_TTL_S * 2)  # down longer than the presence TTL: everyone must fence
    fleet.server.start()
    await fleet.converge(want, timeout=30, what="the fleet to converge after a NATS restart")
    # and it still works afterwards: the watchers were re-created
    fleet.agents["a3"].kill()
    await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=10, what="failover after the restart")
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_without_expiry_markers_failover_still_happens(nats_server: NatsServer) -> None:
    fleet = await Fleet(nats_server, markers=False).open()
    try:
        devices = await fleet.add_devices(N)
        for a in ("a1", "a2"):
            fleet.start(a)
        await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=20, what="cold start")
        fleet.agents["a1"].kill()
        took = await fleet.converge(fleet.expected(devices, ["a2"]), timeout=10, what="failover without markers")
        assert took < FAST_TTL_S + 3 * float(FAST_ENV["SWTEL_HEARTBEAT_S"]) + 1.5
        assert "does not signal expiry" in fleet.agents["a2"].log_path.read_text()
        fleet.assert_no_overlap()
    finally:
        await fleet.close()
