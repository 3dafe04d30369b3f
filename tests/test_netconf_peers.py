"""NETCONF against software nobody here wrote: our collector and discovery against yuma123's netconfd
(behind a private OpenSSH sshd), and ncclient (an independent client, its own process) against our
simulator."""

from __future__ import annotations

import asyncio
import json
import platform
import socket
import sys
from pathlib import Path

import pytest
from support.netconfd import netconfd, proc_net_dev
from support.recorder import collecting, device
from support.waits import eventually

from swtel.agent.collectors import netconf, paths, sshconn
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.jobs import discovery
from swtel.agent.sim.model import COUNTERS, SimDevice
from swtel.agent.sim.netconf_server import serve_netconf

NCCLIENT_PROBE = Path(__file__).parent / "support" / "ncclient_probe.py"


def _opts(known_hosts: str) -> SshOptions:
    return SshOptions(host_key_policy="known_hosts", known_hosts=known_hosts, timeout_s=10.0, keepalive_s=0)


async def _true(value: bool) -> bool:
    return value


@pytest.mark.asyncio
async def test_netconfd_counters_equal_proc_net_dev_for_every_interface() -> None:
    async with netconfd() as nd:
        cred = Credential(nd.username, "", ssh_key=nd.key_file)
        dev = device("yuma", nd.port, "netconf")
        conn = await sshconn.connect(dev, cred, _opts(nd.known_hosts))
        try:
            nc = netconf.NetconfSession(conn, _opts(nd.known_hosts))
            await nc.open()
            before = proc_net_dev()
            samples = await nc.poll({"interfaces"})
            after = proc_net_dev()
            await nc.close()
        finally:
            await sshconn.close(conn)
    values = {s.path: s.value for s in samples}
    assert before.keys() == after.keys()
    checked = 0
    for name, kernel in before.items():
        for leaf, low in kernel.items():
            got = values.get(paths.counter(name, leaf))
            assert got is not None, f"{name} {leaf} not collected; got {sorted(values)[:20]}"
            assert low <= got <= after[name][leaf], (name, leaf, low, got, after[name][leaf])  # counters only grow
            checked += 1
        assert values[paths.oper_status(name)] in ("UP", "DOWN", "UNKNOWN")
    assert checked == 9 * len(before)  # ietf-interfaces has no out-multicast-pkts in /proc/net/dev terms
    assert not [p for p in values if "out-multicast-pkts" in p]


@pytest.mark.asyncio
async def test_netconfd_collected_by_the_collector_with_per_subscription_status() -> None:
    async with netconfd() as nd:
        cred = Credential(nd.username, "", ssh_key=nd.key_file)
        dev = device("yuma", nd.port, "netconf", interval=0.3)
        async with collecting(netconf.collector(_opts(nd.known_hosts)), dev, cred) as (rec, ctx):
            await rec.wait_batches(3, "interfaces", timeout=20)
            await eventually(lambda: _true(ctx.stats.subscription("system").errors >= 2), timeout=10,
                             what="the system subscription's polls")
    assert ctx.stats.status == "collecting"
    system = ctx.stats.subscriptions["system"]
    # netconfd serves ietf-interfaces and ietf-system, no CPU/memory/temperature model: said once, plainly
    assert system.status == "error" and "no openconfig-system/platform model" in system.last_error
    assert "ietf-interfaces" in system.last_error and "ietf-system" in system.last_error
    assert rec.kinds() == ["session_up", "subscription_down"], rec.events
    names = {s.path.split("]")[0].split("=")[1] for _, b in rec.batches for s in b}
    assert names == set(proc_net_dev())


@pytest.mark.asyncio
async def test_discovery_names_netconfd_and_the_host_from_ietf_system_and_yang_library() -> None:
    async with netconfd("ietf-system") as nd:
        cred = Credential(nd.username, "", ssh_key=nd.key_file)
        dev = device("yuma", nd.port, "netconf")
        ctx = CollectorContext(dev, 1, None, cred)  # type: ignore[arg-type]
        facts = await discovery.discover(ctx, _opts(nd.known_hosts))
        assert facts.errors == [], facts.errors
        assert facts.vendor == "yuma123 (netconfd)"
        assert facts.hostname == socket.gethostname()  # nothing configured: the server's uname
        uname = platform.uname()
        assert facts.os_version == f"{uname.system} {uname.release}" and facts.model == uname.machine
        assert facts.uptime_s is not None and 0 <= facts.uptime_s < 600
        assert "ietf-yang-library" in facts.models and "ietf-interfaces" in facts.models
        assert {i.name for i in facts.interfaces} == set(proc_net_dev())

        # a configured host name (ietf-system /system/hostname) is the one the device goes by
        conn = await sshconn.connect(dev, cred, _opts(nd.known_hosts))
        try:
            nc = netconf.NetconfSession(conn, _opts(nd.known_hosts))
            await nc.open()
            await nc.rpc('<edit-config><target><candidate/></target><config><system xmlns="'
                         f'{discovery.NS_IETF_SYS}"><hostname>core-1.lab</hostname></system></config></edit-config>')
            await nc.rpc("<commit/>")
            await nc.close()
        finally:
            await sshconn.close(conn)
        facts = await discovery.discover(ctx, _opts(nd.known_hosts))
    assert facts.hostname == "core-1.lab"


@pytest.mark.asyncio
async def test_ncclient_reads_the_simulator() -> None:
    sim = SimDevice("nc-sim", platform="junos", interfaces=3)
    servers = await serve_netconf([sim], "127.0.0.1", [0])
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(NCCLIENT_PROBE), str(servers.ports[0]), "admin", "admin",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        after = [sim.counters(i) for i in range(sim.interfaces)]
    finally:
        await servers.close()
    if proc.returncode == 3:
        pytest.skip(err.decode().strip())
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    caps = result["capabilities"]
    assert "urn:ietf:params:netconf:base:1.1" in caps and any("ietf-interfaces" in c for c in caps)
    assert result["framing"] == "1.1"  # ncclient and the simulator agree on chunked framing
    got = result["interfaces"]
    assert sorted(got) == sorted(sim.ifnames)
    for i, name in enumerate(sim.ifnames):
        for leaf in COUNTERS:
            if leaf in got[name]:
                assert 0 <= got[name][leaf] <= after[i][leaf]
        assert len(got[name]) >= 9
    assert result["hostname_in_config"] and "interface" in result["config"]
