"""The simulator's SSH face, driven by a plain asyncssh client: exec, shell, errors, auth, host key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncssh
import pytest
import pytest_asyncio
from swtel.agent.sim.model import Faults, SimDevice
from swtel.agent.sim.ssh_server import Listeners, serve_ssh

PLATFORMS = ["eos", "nxos", "junos", "iosxr", "generic"]


@pytest_asyncio.fixture
async def sim() -> Listeners:
    devs = [SimDevice(f"sw-{p}", platform=p, interfaces=4) for p in PLATFORMS]
    devs.append(SimDevice("sw-locked", platform="eos", interfaces=2, faults=Faults(wrong_password=True)))
    servers = await serve_ssh(devs, "127.0.0.1", [0] * len(devs))
    yield servers
    await servers.close()


def connect(sim: Listeners, i: int, password: str = "admin", **kw: object) -> asyncssh.SSHClientConnection:
    return asyncssh.connect("127.0.0.1", sim.ports[i], username="admin", password=password, known_hosts=None,
                            client_keys=None, agent_path=None, config=None, **kw)


@pytest.mark.asyncio
async def test_exec_gives_json_on_eos_and_nxos_and_text_elsewhere(sim: Listeners) -> None:
    for i, (platform, cmd) in enumerate([("eos", "show interfaces | json"), ("nxos", "show interface | json")]):
        async with connect(sim, i) as conn:
            r = await conn.run(cmd)
            assert r.exit_status == 0
            doc = json.loads(r.stdout)
            names = list(doc["interfaces"]) if platform == "eos" else [
                row["interface"] for row in doc["TABLE_interface"]["ROW_interface"]]
            assert names == (["Ethernet1", "Ethernet2", "Ethernet3", "Ethernet4"] if platform == "eos"
                             else ["Ethernet1/1", "Ethernet1/2", "Ethernet1/3", "Ethernet1/4"])
    async with connect(sim, 2) as conn:
        r = await conn.run("show interfaces extensive")
        assert r.stdout.count("Physical interface: ge-0/0/") == 4
        r = await conn.run("show interfaces extensive | json")  # Junos text platform: no such pipe here
        assert r.exit_status == 1 and r.stdout.startswith("error: syntax error")


@pytest.mark.asyncio
async def test_unknown_commands_fail_with_the_platforms_message(sim: Listeners) -> None:
    expected = ["% Invalid input", "% Invalid command at '^' marker.", "error: syntax error: frobnicate",
                "% Invalid input detected at '^' marker.", "% Unknown command: frobnicate now"]
    for i, msg in enumerate(expected):
        async with connect(sim, i) as conn:
            r = await conn.run("frobnicate now")
            assert (r.exit_status, r.stdout.strip()) == (1, msg)


@pytest.mark.asyncio
async def test_interactive_shell_prompts_echoes_and_exits(sim: Listeners) -> None:
    async with connect(sim, 3) as conn:  # iosxr
        proc = await conn.create_process(term_type="vt100")
        prompt = "RP/0/RP0/CPU0:sw-iosxr#"

        async def until_prompt() -> str:
            buf = ""
            while not buf.endswith(prompt):
                buf += await proc.stdout.read(4096)
            return buf

        assert (await asyncio.wait_for(until_prompt(), 5)).strip() == prompt
        proc.stdin.write("show processes cpu\n")
        out = await asyncio.wait_for(until_prompt(), 5)
        lines = out.split("\r\n")
        assert lines[0] == "show processes cpu" and lines[1].startswith("CPU utilization for one minute:")
        proc.stdin.write("exit\n")
        await asyncio.wait_for(proc.wait_closed(), 5)
        assert proc.exit_status == 0


@pytest.mark.asyncio
async def test_wrong_password_and_wrong_password_fault_are_refused(sim: Listeners) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(sim, 0, password="nope"):
            pass
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(sim, 5):  # correct password, but the device has the wrong_password fault
            pass


@pytest.mark.asyncio
async def test_the_process_host_key_verifies_through_known_hosts(sim: Listeners, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(sim.known_hosts())
    async with asyncssh.connect("127.0.0.1", sim.ports[0], username="admin", password="admin", known_hosts=str(kh),
                                client_keys=None, config=None) as conn:
        assert conn.get_server_host_key().export_public_key() == sim.host_key.export_public_key()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    kh.write_text(f"[127.0.0.1]:{sim.ports[0]} {' '.join(other)}\n")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect("127.0.0.1", sim.ports[0], username="admin", password="admin",
                                    known_hosts=str(kh), client_keys=None, config=None):
            pass


@pytest.mark.asyncio
async def test_faults_hang_delay_garbage_and_drop() -> None:
    devs = [SimDevice("hang", platform="eos", interfaces=1, faults=Faults(hang=True)),
            SimDevice("slow", platform="eos", interfaces=1, faults=Faults(delay_s=0.3)),
            SimDevice("junk", platform="eos", interfaces=1, faults=Faults(garbage=True)),
            SimDevice("drop", platform="eos", interfaces=1, faults=Faults(drop_stream_after_s=0.3))]
    sim = await serve_ssh(devs, "127.0.0.1", [0] * len(devs))
    try:
        async with connect(sim, 0) as conn:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.run("show version | json"), 0.5)
        async with connect(sim, 1) as conn:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            r = await conn.run("show version | json")
            assert json.loads(r.stdout)["mfgName"] == "Arista" and loop.time() - t0 >= 0.3
        async with connect(sim, 2) as conn:
            r = await conn.run("show version | json", encoding=None)
            with pytest.raises(ValueError):
                json.loads(r.stdout)
        async with connect(sim, 3) as conn:
            await asyncio.wait_for(conn.wait_closed(), 5)  # the server aborts the connection
    finally:
        await sim.close()


@pytest.mark.asyncio
async def test_netconf_subsystem_is_answered_on_the_ssh_port_too(sim: Listeners) -> None:
    async with connect(sim, 0) as conn:
        proc = await conn.create_process(subsystem="netconf", encoding=None)
        hello = await asyncio.wait_for(proc.stdout.readuntil(b"]]>]]>"), 5)
        assert b"urn:ietf:params:netconf:base:1.1" in hello
