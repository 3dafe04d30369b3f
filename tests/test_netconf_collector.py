"""The NETCONF collector against the simulator's NETCONF servers: both framings, ietf and openconfig
models, every fault, and a bad device beside a good one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from support.recorder import collecting, device
from support.waits import eventually
from swtel.agent.collectors import netconf, paths, sshconn
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.sim.model import COUNTERS, Faults, SimDevice
from swtel.agent.sim.netconf_server import serve_netconf
from swtel.agent.sim.ssh_server import Listeners

LAB = SshOptions(host_key_policy="off", timeout_s=1.0, keepalive_s=0)


async def serve(*sims: SimDevice, models: Sequence[str] = ("ietf", "openconfig")) -> Listeners:
    return await serve_netconf(list(sims), "127.0.0.1", [0] * len(sims), models=models)


async def _true(value: bool) -> bool:
    return value


async def wait_status(ctx: CollectorContext, status: str, errors: int = 1) -> None:
    async def reached() -> bool:
        return ctx.stats.status == status and ctx.stats.errors >= errors

    await eventually(reached, timeout=15, what=f"status {status!r} after {errors} error(s); stats: {ctx.stats}")


@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["1.0", "1.1"])
async def test_session_negotiates_the_framing(framing: str) -> None:
    sim = SimDevice("nc", platform="junos", interfaces=2)
    servers = await serve(sim)
    try:
        dev = device("nc", servers.ports[0], "netconf", "junos", tags={"netconf_framing": framing})
        conn = await sshconn.connect(dev, Credential("admin", "admin"), LAB)
        try:
            nc = netconf.NetconfSession(conn, LAB, base11=framing == "1.1")
            await nc.open()
            assert nc.chunked is (framing == "1.1")
            samples = await nc.poll({"interfaces", "system"})
            values = {s.path: s.value for s in samples}
            for i, name in enumerate(sim.ifnames):
                assert values[paths.oper_status(name)] == sim.oper_status(i)
                for leaf in COUNTERS:  # read before the model is asked again: never ahead of it
                    assert 0 <= values[paths.counter(name, leaf)] <= sim.counters(i)[leaf]
            assert values[paths.temperature("Routing Engine")] == pytest.approx(sim.temperature(), abs=0.2)
            with pytest.raises(netconf.RpcError, match="operation-not-supported"):
                await nc.rpc("<lock><target><running/></target></lock>")
            assert await nc.poll({"interfaces"})  # an rpc-error leaves the session usable
            await nc.close()
        finally:
            await sshconn.close(conn)
    finally:
        await servers.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["1.0", "1.1"])
async def test_collects_interfaces_and_system_in_both_framings(framing: str) -> None:
    sim = SimDevice("nc", platform="eos", interfaces=3)
    servers = await serve(sim)
    try:
        dev = device("nc", servers.ports[0], "netconf", "eos", interval=0.2, tags={"netconf_framing": framing})
        async with collecting(netconf.collector(LAB), dev) as (rec, ctx):
            await rec.wait_batches(3, "interfaces")
            await rec.wait_batches(1, "system")
            values = rec.values()
            assert len([p for p in values if p.startswith("/interfaces/")]) == 3 * (len(COUNTERS) + 1)
            assert values[paths.MEM_PHYSICAL] == 16 * 1024**3 and 0 <= values[paths.CPU] <= 100
            assert paths.temperature("TempSensor1") in values
            p = paths.counter("Ethernet1", "in-octets")
            octets = [s.value for sub, b in rec.batches if sub == "interfaces" for s in b if s.path == p]
            assert octets == sorted(octets) and len(octets) >= 3
            assert rec.kinds() == ["session_up"] and ctx.stats.status == "collecting"
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_openconfig_interfaces_when_ietf_is_not_offered() -> None:
    sim = SimDevice("oc", platform="nxos", interfaces=2)
    servers = await serve(sim, models=("openconfig",))
    try:
        async with collecting(netconf.collector(LAB), device("oc", servers.ports[0], "netconf")) as (rec, _):
            await rec.wait_batches(1, "interfaces")
            values = rec.values("interfaces")
            assert set(values) == {paths.oper_status(n) for n in sim.ifnames} | {
                paths.counter(n, c) for n in sim.ifnames for c in COUNTERS}
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_ietf_only_device_gives_interfaces_and_no_system_readings() -> None:
    sim = SimDevice("ietf", platform="generic", interfaces=2)
    servers = await serve(sim, models=("ietf",))
    try:
        async with collecting(netconf.collector(LAB), device("ietf", servers.ports[0], "netconf")) as (rec, ctx):
            await rec.wait_batches(3, "interfaces")
            await eventually(lambda: _true(ctx.stats.subscription("system").errors >= 3), timeout=10,
                             what="three polls of the system subscription")
            assert all(sub == "interfaces" for sub, _ in rec.batches)
            # the device collects; the subscription it has no model for says so, once, not every poll
            assert ctx.stats.status == "collecting" and not ctx.stats.down
            system = ctx.stats.subscriptions["system"]
            assert system.status == "error" and "no openconfig-system/platform model" in system.last_error
            assert "ietf-interfaces" in system.last_error  # the models it does offer
            assert ctx.stats.subscriptions["interfaces"].status == "collecting"
            assert rec.kinds() == ["session_up", "subscription_down"], rec.events
    finally:
        await servers.close()


FAULTS = {  # fault, status, event, failures to wait for
    "wrong_password": (Faults(wrong_password=True), "auth_failed", "auth_failed", 1),
    "hang": (Faults(hang=True), "timeout", "timeout", 2),  # no hello at all
    "slow_beyond_timeout": (Faults(delay_s=3.0), "timeout", "timeout", 2),
    "garbage": (Faults(garbage=True), "error", "error", 2),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("framing", ["1.0", "1.1"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_faults_give_one_clear_status_and_one_event(fault: str, framing: str) -> None:
    faults, status, kind, failures = FAULTS[fault]
    sim = SimDevice("bad", platform="eos", interfaces=2, faults=faults)
    servers = await serve(sim)
    try:
        dev = device("bad", servers.ports[0], "netconf", interval=0.2, tags={"netconf_framing": framing})
        async with collecting(netconf.collector(LAB), dev) as (rec, ctx):
            await wait_status(ctx, status, failures)
            assert rec.kinds() == [kind], rec.events
            assert rec.batches == []
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_garbage_in_chunked_framing_breaks_the_session_and_it_is_reopened() -> None:
    sim = SimDevice("junk", platform="eos", interfaces=1, faults=Faults(garbage=True))
    servers = await serve(sim)
    try:
        async with collecting(netconf.collector(LAB), device("junk", servers.ports[0], "netconf", interval=0.2)
                              ) as (rec, ctx):
            await wait_status(ctx, "error", 2)
            assert "framing" in ctx.stats.last_error and rec.batches == []
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_dropped_session_reconnects_and_collection_goes_on() -> None:
    sim = SimDevice("flaky", platform="eos", interfaces=2, faults=Faults(drop_stream_after_s=0.6))
    servers = await serve(sim)
    try:
        async with collecting(netconf.collector(LAB), device("flaky", servers.ports[0], "netconf", interval=0.1)
                              ) as (rec, _):
            async def reconnected() -> bool:
                return rec.kinds().count("session_up") >= 2

            await eventually(reconnected, timeout=15, what=f"a reconnect; events {rec.events}")
            assert "session_down" in rec.kinds()
            n = len(rec.batches)
            await rec.wait_batches(n + 1)
    finally:
        await servers.close()


@pytest.mark.asyncio
async def test_bad_devices_do_not_disturb_a_good_one() -> None:
    sims = [SimDevice("good", platform="eos", interfaces=4),
            SimDevice("hang", platform="eos", interfaces=4, faults=Faults(hang=True)),
            SimDevice("junk", platform="eos", interfaces=4, faults=Faults(garbage=True)),
            SimDevice("slow", platform="eos", interfaces=4, faults=Faults(delay_s=5))]
    servers = await serve(*sims)
    col = netconf.collector(LAB)
    try:
        devs = [device(s.name, p, "netconf", interval=0.2) for s, p in zip(sims, servers.ports, strict=True)]
        async with collecting(col, devs[0]) as (good, good_ctx), collecting(col, devs[1]) as (_, hang_ctx), \
                collecting(col, devs[2]) as (_, junk_ctx), collecting(col, devs[3]) as (_, slow_ctx):
            await wait_status(hang_ctx, "timeout")
            await wait_status(junk_ctx, "error")
            await wait_status(slow_ctx, "timeout")
            loop = asyncio.get_running_loop()
            t0, n0 = loop.time(), len(good.batches)
            await good.wait_batches(n0 + 8, "interfaces")
            assert loop.time() - t0 < 4.0
            assert good.kinds() == ["session_up"] and good_ctx.stats.errors == 0
    finally:
        await servers.close()


def test_replies_map_whatever_the_leaf_order_and_extra_leaves() -> None:
    """The mapping walks each interface's children once (not one ElementPath per leaf): leaves in any
    order, unknown ones and whitespace give the same samples, counters in IF_COUNTERS order."""
    import xml.etree.ElementTree as ET

    ietf = (f'<data><interfaces-state xmlns="{netconf.NS_IETF_IF}"><interface><statistics><out-octets> 7 </out-octets>'
            "<discontinuity-time>2026-01-01T00:00:00Z</discontinuity-time><in-octets>5</in-octets>"
            "<in-errors>bad</in-errors></statistics><oper-status>up</oper-status><name> Ethernet1 </name>"
            "</interface><interface><oper-status>down</oper-status></interface></interfaces-state></data>")
    got = [(s.path, s.value) for s in netconf.ietf_interfaces(ET.fromstring(ietf), 1)]
    assert got == [(paths.oper_status("Ethernet1"), "UP"), (paths.counter("Ethernet1", "in-octets"), 5),
                   (paths.counter("Ethernet1", "out-octets"), 7)]  # no name: skipped; "bad": no sample
    oc = (f'<data><interfaces xmlns="{netconf.NS_OC_IF}"><interface><state><counters><in-errors>3</in-errors>'
          "<in-octets>9</in-octets></counters><oper-status>LOWER_LAYER_DOWN</oper-status></state>"
          "<config><name>ignored</name></config><name>et-0/0/1</name></interface></interfaces></data>")
    got = [(s.path, s.value) for s in netconf.oc_interfaces(ET.fromstring(oc), 1)]
    assert got == [(paths.oper_status("et-0/0/1"), "LOWER_LAYER_DOWN"), (paths.counter("et-0/0/1", "in-octets"), 9),
                   (paths.counter("et-0/0/1", "in-errors"), 3)]
