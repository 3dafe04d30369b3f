"""The SSH CLI collector and config backup against fakenos: shells that replay outputs captured from real
EOS, NX-OS, IOS, IOS-XR and Junos devices (a third-party peer, started here on loopback).

Parsers are checked on the captures themselves (read from the installed package at test time), against
figures read by eye from those captures and against ntc-templates' rows for the same text; the collector
is checked end to end: what it publishes equals what each platform's capture says. fakenos refuses exec
requests, lands at ``host>`` and serves some commands only after ``enable`` (IOS ``show running-config``),
which exercises the shell fallback, ``enable`` and per-command partial results."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from support import fakenos_peer as fk
from support.recorder import Recorder, collecting, device
from support.waits import eventually
from swtel.agent.collectors import parsers, paths, ssh, sshconn
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.jobs import backup

fk.require()

# fakenos's paramiko server thread sometimes dies on a connection the collector closed at once (an exec
# refusal): `paramiko.Transport(None)` in its accept loop. That is the test peer's own race, not ours; it
# must not fail the test it happens to land in (our side of every connection is asserted by the tests).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")

OPTS = SshOptions(host_key_policy="off", timeout_s=15.0, keepalive_s=0)  # fakenos echoes 1 byte / 10 ms
CRED = Credential(fk.USERNAME, fk.PASSWORD)
TS = 1
C = paths.counter


def parse_capture(platform: str, command: str) -> dict[str, object]:
    text = fk.captured(fk.PLATFORMS[platform], command)
    return {s.path: s.value for s in parsers.platform(platform).parse(command, text, TS)}


# ---- parsers on the real captures ---------------------------------------------------------------------

# figures read by eye from each capture (fakenos's platforms_yaml/<platform>.yaml)
EXPECTED = {
    ("ios", "show interfaces"): {
        paths.oper_status("FastEthernet1"): "DOWN", paths.oper_status("TenGigabitEthernet1/1/1"): "UP",
        C("TenGigabitEthernet1/1/1", "in-octets"): 2783400652228,
        C("TenGigabitEthernet1/1/1", "out-octets"): 377708181830,
        C("TenGigabitEthernet1/1/1", "in-multicast-pkts"): 60693400,
        C("TenGigabitEthernet1/1/1", "in-unicast-pkts"): 4035758153 - 160702941,  # broadcasts count multicasts too
        C("TenGigabitEthernet1/1/1", "out-discards"): 4},
    ("ios", "show processes cpu"): {paths.CPU: 4},
    ("ios", "show processes memory sorted"): {paths.MEM_PHYSICAL: 919638648, paths.MEM_UTILIZED: 236752096},
    ("ios", "show environment temperature"): {paths.temperature("Switch 1 Inlet"): 29.0,
                                              paths.temperature("Switch 2 Hotspot"): 69.0},
    ("eos", "show interfaces"): {
        paths.oper_status("Ethernet1"): "UP", C("Ethernet1", "in-octets"): 381190,
        C("Ethernet1", "in-multicast-pkts"): 273, C("Ethernet1", "in-unicast-pkts"): 5280 - 1 - 273},
    ("eos", "show processes top once"): {paths.CPU: 4},  # 96.3 id
    ("eos", "show version"): {paths.MEM_PHYSICAL: 4918832 * 1024, paths.MEM_UTILIZED: (4918832 - 1816320) * 1024},
    ("eos", "show environment temperature"): {
        paths.temperature("Supervisor 1/Digital Temperature Sensor on cpu0"): 36.0,
        paths.temperature("Linecard 3/Inlet sensor"): 59.2},
    ("nxos", "show interface"): {
        paths.oper_status("Ethernet106/1/1"): "DOWN", paths.oper_status("Vlan330"): "UP",
        C("Ethernet106/1/1", "in-octets"): 70500074, C("Ethernet106/1/1", "out-octets"): 711823811,
        C("Ethernet106/1/1", "in-unicast-pkts"): 18476, C("Ethernet106/1/1", "out-multicast-pkts"): 5660600},
    ("nxos", "show processes cpu"): {paths.CPU: 15},
    ("nxos", "show environment temperature"): {paths.temperature("ASIC"): 52.0,
                                               paths.temperature("Front-Left (D2)"): 33.0},
    ("iosxr", "show interfaces"): {
        paths.oper_status("MgmtEth0/RSP0/CPU0/1"): "DOWN", paths.oper_status("FortyGigE0/0/0/0"): "UP",
        C("FortyGigE0/0/0/0", "in-octets"): 29095652278, C("FortyGigE0/0/0/0", "in-discards"): 392,
        C("FortyGigE0/0/0/0", "in-unicast-pkts"): 478575583 - 1 - 1675582,
        C("TenGigE0/3/0/0", "out-octets"): 856734632077, C("tunnel-te300", "out-octets"): 674297494},
    ("iosxr", "show processes cpu"): {paths.CPU: 5},
    ("junos", "show interfaces"): {paths.oper_status("ge-0/0/0"): "UP"},
}


@pytest.mark.parametrize("platform,command", list(EXPECTED))
def test_parsers_read_the_real_captures(platform: str, command: str) -> None:
    got = parse_capture(platform, command)
    want = EXPECTED[(platform, command)]
    assert {p: got.get(p) for p in want} == want
    assert all(isinstance(v, (int, float, str)) for v in got.values())


# ntc-templates' own reading of the same captures: interface names, state and error counters must agree
NTC_IFACES = {"ios": ("cisco_ios_show_interfaces", "show interfaces", "protocol_status"),
              "nxos": ("cisco_nxos_show_interface", "show interface", "link_status"),
              "iosxr": ("cisco_xr_show_interfaces", "show interfaces", "link_status")}


@pytest.mark.parametrize("platform", list(NTC_IFACES))
def test_interface_parsers_agree_with_ntc_templates(platform: str) -> None:
    template, command, state_key = NTC_IFACES[platform]
    text = fk.captured(fk.PLATFORMS[platform], command)
    rows = parsers.ntc(template, command, text)
    ours = parse_capture(platform, command)
    assert {r["interface"] for r in rows} == {p.split("[name=")[1].split("]")[0] for p in ours}
    for r in rows:
        name = r["interface"]
        theirs_up = r[state_key].startswith("up")
        assert (ours[paths.oper_status(name)] == "UP") == theirs_up, name
        for key, leaf in (("input_errors", "in-errors"), ("output_errors", "out-errors")):
            if r.get(key):
                assert ours[C(name, leaf)] == int(r[key]), (name, leaf)


def test_a_refused_command_is_an_error_on_every_platform() -> None:
    for platform in ("ios", "eos", "nxos", "iosxr", "junos", "generic"):
        mod = parsers.platform(platform)
        for refusal in ("% Invalid input detected at '^' marker.", "Unknown command", "error: syntax error: foo",
                        "% Invalid command at '^' marker."):
            assert parsers.is_error(mod, refusal + "\n"), (platform, refusal)
        assert not parsers.is_error(mod, fk.captured("cisco_ios", "show interfaces"))


# ---- the collector and the backup job against fakenos ------------------------------------------------


@pytest.fixture(scope="module")
def fakenos_ports() -> Iterator[dict[str, int]]:
    peer = fk.FakeNos(list(fk.PLATFORMS.values())).start()
    try:
        yield {ours: peer.ports[theirs] for ours, theirs in fk.PLATFORMS.items()}
    finally:
        peer.stop()


def served_expectation(platform: str) -> tuple[dict[str, object], set[str]]:
    """What the collector must publish (every served command's capture, parsed) and which commands fail."""
    values: dict[str, object] = {}
    failing = set()
    theirs = fk.PLATFORMS[platform]
    for cmds in parsers.platform(platform).COMMANDS.values():
        for cmd in cmds:
            served = [v.command for v in cmd.variants if fk.serves(theirs, v.command)]
            if served:
                values |= parse_capture(platform, served[0])
            else:
                failing.add(cmd.name)
    return values, failing


@pytest.mark.asyncio
@pytest.mark.timeout(90)
@pytest.mark.parametrize("platform", list(fk.PLATFORMS))
async def test_collected_values_equal_the_captures(platform: str, fakenos_ports: dict[str, int]) -> None:
    want, failing = served_expectation(platform)
    dev = device(f"fk-{platform}", fakenos_ports[platform], "ssh", platform, interval=2.0)
    async with collecting(ssh.collector(OPTS), dev, CRED) as (rec, ctx):
        await rec.wait_batches(1, "interfaces", timeout=60)
        if platform != "junos":  # fakenos's Junos serves no system command at all
            await rec.wait_batches(1, "system", timeout=60)
        got = {s.path: s.value for _, batch in rec.batches for s in batch}
        assert {p: got.get(p) for p in want} == want  # every value the device printed, as it printed it
        assert set(got) <= set(want)  # and nothing else
        up = [d for k, d in rec.events if k == "session_up"]
        if platform == "iosxr":
            assert up and "ssh shell " in up[0]  # IOS-XR is collected through a shell anyway
        else:
            assert up and "shell (exec refused)" in up[0]  # fakenos refuses exec: fell back to a shell
        if failing:  # commands the device does not know are reported by name, the others still deliver
            async def reported() -> bool:
                # a command failing beside others that answer: an `error` event naming it; a subscription
                # whose every command fails (Junos's system): `subscription_down`, the device still collecting
                return all(any(name in d for k, d in rec.events if k in ("error", "subscription_down"))
                           for name in failing)

            await eventually(reported, timeout=60, what=f"errors naming {failing}; events {rec.events}")
            assert all(name in ctx.stats.last_error or platform == "junos" for name in failing)
        if platform == "iosxr":  # partial: one event for the failing set, not one per poll
            n = len([b for sub, b in rec.batches if sub == "system"])
            await rec.wait_batches(n + 2, "system", timeout=60)
            assert rec.kinds().count("error") == 1, rec.events
        if platform not in ("junos",):
            assert ctx.stats.status == "collecting"


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_enable_reaches_the_privileged_prompt_and_backup_works(fakenos_ports: dict[str, int]) -> None:
    dev = device("fk-ios", fakenos_ports["ios"], "ssh", "ios")
    conn, cli = await ssh.open_cli(dev, CRED, OPTS)
    try:
        assert cli.shell and cli.prompt == "fk-cisco-ios#"  # landed at "fk-cisco-ios>", then `enable`
    finally:
        await sshconn.close(conn)
    # fakenos's IOS serves `show running-config` only at the "#" prompt
    fmt, text = await backup.fetch_ssh(CollectorContext(dev, 1, Recorder(), CRED), OPTS)
    config = fk.captured("cisco_ios", "show running-config")
    assert fmt == "text" and text.strip() == config.strip() and "hostname" in text


@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("platform", ["nxos", "iosxr", "junos"])
async def test_backup_never_stores_a_command_error(platform: str, fakenos_ports: dict[str, int],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # fakenos's NX-OS, IOS-XR and Junos have no configuration command: they answer "Unknown command"
    dev = device(f"fk-{platform}", fakenos_ports[platform], "ssh", platform)
    with pytest.raises(ssh.CommandFailed, match=f"{backup.command_for(platform)}.*Unknown command"):
        await backup.fetch_ssh(CollectorContext(dev, 1, Recorder(), CRED), OPTS)
    caplog.set_level(logging.WARNING, "swtel.agent.backup")
    rec = Recorder()
    task = asyncio.create_task(backup.run(CollectorContext(dev, 1, rec, CRED), opts=OPTS, first_s=0, interval_s=60))
    try:
        async def failed() -> bool:
            return "config backup failed (error" in caplog.text and "Unknown command" in caplog.text

        await eventually(failed, timeout=30, what=f"the job's failed fetch logged; log: {caplog.text[-300:]}")
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
    assert rec.configs == []  # the error text was never published as a configuration


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_exec_tag_on_a_device_that_refuses_exec_says_what_to_change(fakenos_ports: dict[str, int]) -> None:
    dev = device("fk-eos", fakenos_ports["eos"], "ssh", "eos", tags={"ssh_mode": "exec"})
    async with collecting(ssh.collector(OPTS), dev, CRED) as (rec, ctx):
        async def failed() -> bool:
            return ctx.stats.status == "error"

        await eventually(failed, timeout=30, what=f"an error status; stats {ctx.stats}")
        assert "refused an exec request" in ctx.stats.last_error and "ssh_mode=exec" in ctx.stats.last_error
        assert rec.batches == []


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_discovery_of_a_real_ios_needs_the_shell_and_enable(fakenos_ports: dict[str, int]) -> None:
    from swtel.agent.jobs import discovery

    # fakenos's IOS refuses exec and serves `show version` only at "#": facts come from the real capture
    dev = device("fk-ios", fakenos_ports["ios"], "ssh", "ios")
    facts = await discovery.discover(CollectorContext(dev, 1, Recorder(), CRED), OPTS)
    want = FACTS["ios"]
    assert {k: getattr(facts, k) for k in want} == want, facts.errors
    assert [i.name for i in facts.interfaces][:2] == ["FastEthernet1", "TenGigabitEthernet1/1/1"]


FACTS = {  # read by eye from each platform's `show version` capture
    "ios": {"vendor": "Cisco", "os_version": "17.03.01a", "model": "CSR1000V", "serial": "9ESGOBARV9D",
            "hostname": "fk-cisco-ios", "uptime_s": 86400 + 17 * 3600 + 32 * 60},
    "eos": {"vendor": "Arista", "model": "cEOSLab", "os_version": "4.26.0F-21792469.4260F"},
    "nxos": {"vendor": "Cisco", "os_version": "7.1(4)N1(1)", "hostname": "IEDP02-N5K-SW01", "serial": "FOC17153X08",
             "uptime_s": 749 * 86400 + 15 * 3600 + 17 * 60 + 48},
    "iosxr": {"vendor": "Cisco", "os_version": "4.1.0", "model": "CRS-8/S", "hostname": "router"},
    "junos": {"vendor": "Juniper", "model": "EX4550-32F", "hostname": "lab", "os_version": "13.2X51-D35.3"},
}


@pytest.mark.parametrize("platform", list(FACTS))
def test_facts_from_the_real_show_version(platform: str) -> None:
    text = fk.captured(fk.PLATFORMS[platform], "show version")  # IOS: a CSR1000V capture, host name filled in
    got = parsers.platform(platform).facts({"show version": text})
    assert {k: got.get(k) for k in FACTS[platform]} == FACTS[platform]
