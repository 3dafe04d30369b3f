"""The simulator's SNMP face: Net-SNMP's own client reads it, the collector gets the model's values on every
platform's CPU/memory MIB, a 32-bit counter wraps through it with a correct total, faults, discovery."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest
from support.recorder import Recorder, collecting, device
from support.snmpd import require_tools
from support.waits import eventually
from swtel.agent.collectors import paths, snmp
from swtel.agent.collectors import snmp_mibs as mib
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.jobs import discovery
from swtel.agent.sim.model import COUNTERS, Faults, SimDevice
from swtel.agent.sim.runner import SimRunner, SimSpec
from swtel.agent.sim.snmp_agent import serve_snmp

CRED = Credential("", "", community="admin")  # the simulator's community is the device's password


async def net_snmp(tool: str, port: int, *args: str, community: str = "admin") -> subprocess.CompletedProcess[str]:
    """Net-SNMP's client as a subprocess (awaited: the simulator answers from this test's event loop)."""
    require_tools()
    argv = [tool, "-v2c", "-c", community, "-On", "-Oq", "-Ot", "-Oe", "-t", "1", "-r", "0", "-M", "/nonexistent",
            "-m", "", f"127.0.0.1:{port}", *args]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                env={**os.environ, "MIBS": ""})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), err.decode())


@pytest.mark.asyncio
async def test_net_snmp_tools_read_the_simulator() -> None:
    sim = SimDevice("sim-snmp", platform="eos", interfaces=30)
    agents = await serve_snmp([sim], "127.0.0.1", [0])
    try:
        port = agents.ports[0]
        lo = sim.counters(3)["in-octets"]
        got = await net_snmp("snmpget", port, mib.SYS_NAME, mib.SYS_OBJECT_ID, f"{mib.COUNTER_COLUMNS['in-octets'][0]}.4",
                       "1.3.6.1.2.1.1.9.0")
        hi = sim.counters(3)["in-octets"]
        lines = dict(line.split(" ", 1) for line in got.stdout.splitlines())
        assert lines[f".{mib.SYS_NAME}"] == '"sim-snmp"'
        assert lines[f".{mib.SYS_OBJECT_ID}"].startswith(".1.3.6.1.4.1.30065.")
        assert lo <= int(lines[f".{mib.COUNTER_COLUMNS['in-octets'][0]}.4"]) <= hi
        assert "No Such Instance" in lines[".1.3.6.1.2.1.1.9.0"]
        walk = await net_snmp("snmpbulkwalk", port, "-Cr7", mib.IF_NAME)
        assert [v.strip('"') for v in (line.split(" ", 1)[1] for line in walk.stdout.splitlines())] == sim.ifnames
        full = await net_snmp("snmpbulkwalk", port, "-Cr25", "1.3.6.1")  # the whole view, in order, to its end
        oids = [tuple(int(x) for x in line.split(" ", 1)[0].strip(".").split(".")) for line in full.stdout.splitlines()]
        assert full.returncode == 0 and oids == sorted(oids) and len(oids) > 30 * 20
        wrong = await net_snmp("snmpget", port, mib.SYS_NAME, community="public")
        assert wrong.returncode != 0 and "Timeout" in wrong.stderr  # a wrong community gets no answer
    finally:
        await agents.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("platform,source", [("generic", "hr"), ("nxos", "cisco"), ("eos", "ucd")])
async def test_collector_reads_the_model_on_every_platform_mib(platform: str, source: str) -> None:
    sim = SimDevice("sim-snmp", platform=platform, interfaces=4)
    agents = await serve_snmp([sim], "127.0.0.1", [0])
    try:
        poller = await snmp.connect(device("s", agents.ports[0], "snmp", platform), CRED, snmp.SnmpOptions())
        t0 = time.monotonic()
        values = {s.path: s.value for s in await poller.poll({"interfaces", "system"})}
        t1 = time.monotonic()
        assert (poller.state.cpu_source, poller.state.mem_source, poller.state.hc) == (source, source, True)
        for i, name in enumerate(sim.ifnames):
            for leaf in COUNTERS:
                assert sim.counters(i, t0)[leaf] <= values[paths.counter(name, leaf)] <= sim.counters(i, t1)[leaf]
            assert values[paths.oper_status(name)] in (sim.oper_status(i, t0), sim.oper_status(i, t1))
        assert values[paths.MEM_PHYSICAL] == pytest.approx(16 * 1024**3, rel=1e-3)
        cpus = sorted((sim.cpu_percent(t0), sim.cpu_percent(t1)))
        assert cpus[0] - 1 <= values[paths.CPU] <= cpus[1] + 1
        from swtel.agent.sim.cli import sensor_name

        assert values[paths.temperature(sensor_name(platform))] == pytest.approx(sim.temperature(t1), abs=0.2)
    finally:
        await agents.close()


@pytest.mark.asyncio
async def test_32_bit_counter_wrap_through_the_simulator_gives_the_true_total() -> None:
    """An agent without ifHC* columns; interface 0's octets cross 2**32 between two polls."""
    sim = SimDevice("old-agent", interfaces=2)
    rate = sim._rates[0]
    sim.started = time.monotonic() - (mib.WRAP32 - rate * 0.3) / rate  # 0.3 s before the 32-bit wrap
    agents = await serve_snmp([sim], "127.0.0.1", [0], hc_counters=False)
    try:
        poller = await snmp.connect(device("s", agents.ports[0], "snmp"), CRED, snmp.SnmpOptions(max_rps=0))
        p = paths.counter(sim.ifnames[0], "in-octets")
        first = {s.path: s.value for s in await poller.poll({"interfaces"})}[p]
        assert poller.state.hc is False and first < mib.WRAP32
        polls = 0
        while sim.counters(0)["in-octets"] < mib.WRAP32 + rate * 0.1:  # the model itself says when it wrapped
            await poller.poll({"interfaces"})
            polls += 1
        before = sim.counters(0)["in-octets"]
        total = {s.path: s.value for s in await poller.poll({"interfaces"})}[p]
        after = sim.counters(0)["in-octets"]
        assert before <= total <= after and total > mib.WRAP32  # the 64-bit truth, not the wrapped raw value
        assert polls >= 1  # polls ran while the counter crossed the wrap
    finally:
        await agents.close()


@pytest.mark.asyncio
async def test_faults_hang_and_garbage_are_timeout_and_error() -> None:
    sims = [SimDevice("hang", faults=Faults(hang=True)), SimDevice("garbage", faults=Faults(garbage=True))]
    agents = await serve_snmp(sims, "127.0.0.1", [0, 0])
    try:
        for port, status in zip(agents.ports, ("timeout", "error"), strict=True):
            dev = device("s", port, "snmp", tags={"snmp_timeout": "200ms", "snmp_retries": "0"})
            async with collecting(snmp.run, dev, CRED) as (rec, ctx):
                await rec.wait_event(status if status == "timeout" else "error")
                assert ctx.stats.status == status and not rec.batches
    finally:
        await agents.close()


@pytest.mark.asyncio
async def test_discovery_and_sim_runner_over_snmp() -> None:
    runner = SimRunner(SimSpec(devices=2, protocol="snmp", base_port=0, platform="nxos", interfaces=3))
    await runner.start()
    try:
        inv = runner.inventory()
        assert [d.protocol for d in inv] == ["snmp", "snmp"] and all(d.port for d in inv)
        sim = runner.devices[0]
        facts = await discovery.discover(CollectorContext(inv[0], 1, None, CRED), None)  # type: ignore[arg-type]
        assert (facts.vendor, facts.model, facts.serial, facts.hostname) == ("Cisco", "N9K-C93180YC-FX", sim.serial,
                                                                             sim.name)
        assert facts.os_version == "10.3(2)" and facts.uptime_s is not None and facts.uptime_s >= 86400
        assert [(f.name, f.speed_bps) for f in facts.interfaces] == [(n, 10_000_000_000) for n in sim.ifnames]
    finally:
        await runner.close()


@pytest.mark.asyncio
async def test_every_collector_stops_when_cancelled_mid_poll() -> None:
    """Python 3.11's wait_for (inside gufo-snmp) can drop a cancel that arrives with an answer; a released
    lease must still stop its collector. Many busy collectors are cancelled at once; every one must end."""
    sims = [SimDevice(f"busy{i}", interfaces=8) for i in range(40)]
    agents = await serve_snmp(sims, "127.0.0.1", [0] * len(sims))
    tasks = []
    try:
        recs = []
        for port in agents.ports:
            rec = Recorder()
            ctx = CollectorContext(device("s", port, "snmp", interval=0.05, tags={"snmp_max_rps": "0"}), 1, rec, CRED)
            recs.append(rec)
            tasks.append(asyncio.create_task(snmp.run(ctx)))

        async def all_polled_twice() -> bool:
            return all(len(r.batches) >= 2 for r in recs)

        await eventually(all_polled_twice, timeout=60, what="every collector polling")
        for rounds in range(20):  # cancel at many different moments of the request cycle
            for t in tasks:
                t.cancel()
            done, pending = await asyncio.wait(tasks, timeout=10)
            assert not pending, f"round {rounds}: {len(pending)} of {len(tasks)} collectors ignored their cancel"
            tasks = [asyncio.create_task(snmp.run(CollectorContext(
                device("s", port, "snmp", interval=0.05, tags={"snmp_max_rps": "0"}), 1, Recorder(), CRED)))
                for port in agents.ports]
            await asyncio.sleep(0.05 * (rounds % 5))  # sleep: to vary the moment of the next cancel, not to sync
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks, timeout=10)
        await agents.close()


@pytest.mark.asyncio
async def test_a_reboot_restarts_32_bit_totals_instead_of_inventing_a_wrap() -> None:
    sim = SimDevice("reboots", interfaces=1)
    sim.started = time.monotonic() - 3000  # up for a while: its counters are large
    agents = await serve_snmp([sim], "127.0.0.1", [0], hc_counters=False)
    try:
        poller = await snmp.connect(device("s", agents.ports[0], "snmp"), CRED, snmp.SnmpOptions(max_rps=0))
        p = paths.counter(sim.ifnames[0], "in-octets")
        before = {s.path: s.value for s in await poller.poll({"interfaces"})}[p]
        sim.started = time.monotonic()  # the device reboots: sysUpTime goes back, counters start from zero
        after = {s.path: s.value for s in await poller.poll({"interfaces"})}[p]
        assert after <= sim.counters(0)["in-octets"] < before  # published as read: consumers see a reset
        assert poller.state.hc is False  # probed again after the reboot
    finally:
        await agents.close()
