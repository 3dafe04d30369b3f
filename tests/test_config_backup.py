"""Config backup end to end: the agent job against the simulator's SSH and NETCONF servers → JetStream →
the hub's ingest → PostgreSQL → the REST API and ``swtel config``; a config edited in the simulator shows up
as a new version with the right diff, an unchanged one adds none."""

from __future__ import annotations

import asyncio
import json
import logging

import nats
import pytest
from litestar.testing import AsyncTestClient
from support.recorder import Recorder, device
from support.telemetry import db, hub_settings, migrate
from support.waits import eventually
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.agent.jobs import backup
from swtel.agent.publisher import DevicePublish, Publisher
from swtel.agent.sim.model import Faults, SimDevice
from swtel.agent.sim import netconf_data as nc_data
from swtel.agent.sim.netconf_server import serve_netconf
from swtel.agent.sim.ssh_server import serve_ssh
from swtel.hub.app import create_app
from swtel.shared import naming
from swtel.shared.settings import Settings

LAB = SshOptions(host_key_policy="off", timeout_s=2.0, keepalive_s=0)
CRED = Credential("admin", "admin")


class CountingPublish(DevicePublish):
    """The agent's real publisher, counting the backups JetStream acknowledged."""

    published = 0

    async def config(self, format: str, text: str) -> bool:
        ok = await super().config(format, text)
        self.published += ok
        return ok


def when(cond):  # eventually() awaits its probe
    async def probe():
        return cond()

    return probe


def start_job(ctx: CollectorContext, interval_s: float = 0.2) -> asyncio.Task[None]:
    return asyncio.create_task(backup.run(ctx, opts=LAB, first_s=0, interval_s=interval_s))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "the backup job did not end when cancelled"


def test_jobs_for_ssh_and_netconf_devices_only_and_not_when_off() -> None:
    on, off = Settings(), Settings(config_backup_interval_s=0)
    for proto, n in (("ssh", 1), ("netconf", 1), ("gnmi", 0)):
        assert len(backup.jobs_for(device("d", 1, proto), on)) == n
        assert backup.jobs_for(device("d", 1, proto), off) == []
    assert backup.command_for("junos") == "show configuration" and backup.command_for("srl") == "info"
    assert backup.command_for("eos") == "show running-config"


@pytest.mark.asyncio
@pytest.mark.parametrize("platform,mode", [("eos", "exec"), ("nxos", "exec"), ("junos", "exec"),
                                           ("iosxr", "shell"), ("srl", "exec"), ("generic", "shell")])
async def test_ssh_backup_is_the_running_config_on_every_platform(platform: str, mode: str) -> None:
    sim = SimDevice(f"sw-{platform}", platform=platform, interfaces=2)
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    rec = Recorder()
    ctx = CollectorContext(device(sim.name, servers.ports[0], "ssh", platform, tags={"ssh_mode": mode}), 1, rec, CRED)
    task = start_job(ctx)
    try:
        await eventually(when(lambda: len(rec.configs) >= 2), timeout=10, what="two backups")
        assert rec.configs[0] == ("text", sim.config_text)
        assert rec.events == [] and ctx.stats.errors == 0  # the job leaves the collector's status alone
    finally:
        await stop(task)
        await servers.close()


@pytest.mark.asyncio
async def test_netconf_backup_is_the_running_datastore_and_follows_config_edits() -> None:
    sim = SimDevice("nc1", interfaces=2)
    servers = await serve_netconf([sim], "127.0.0.1", [0])
    rec = Recorder()
    ctx = CollectorContext(device(sim.name, servers.ports[0], "netconf"), 1, rec, CRED)
    task = start_job(ctx)
    try:
        await eventually(when(lambda: len(rec.configs) >= 1), timeout=10, what="a backup")
        fmt, text = rec.configs[0]
        # the device's bytes inside <data>, not re-serialised by ElementTree (no "ns0:" prefixes)
        sent = "".join(nc_data.to_xml(e) for e in nc_data.select(nc_data.CONFIG, sim, None))
        assert fmt == "xml" and text == sent + "\n" and "ns0:" not in text
        assert "<name>eth0</name>" in text and "<hostname>nc1</hostname>" in text
        assert "description" not in text and "counters" not in text and "statistics" not in text  # config only
        sim.config_text = sim.config_text.replace("interface eth1\n   no shutdown", "interface eth1\n   description to spine\n   shutdown")
        await eventually(when(lambda: "to spine" in rec.configs[-1][1]), timeout=10, what="the edited config")
        assert "<description>to spine</description>" in rec.configs[-1][1]
        assert "<enabled>false</enabled>" in rec.configs[-1][1]
    finally:
        await stop(task)
        await servers.close()


@pytest.mark.asyncio
async def test_a_failing_device_never_ends_the_job_and_it_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "swtel.agent.backup")
    sim = SimDevice("bad", platform="eos", interfaces=1, faults=Faults(wrong_password=True))
    servers = await serve_ssh([sim], "127.0.0.1", [0])
    rec = Recorder()
    ctx = CollectorContext(device(sim.name, servers.ports[0], "ssh", "eos"), 1, rec, CRED)
    task = start_job(ctx, interval_s=0.3)
    try:
        await eventually(when(lambda: "config backup failed (auth_failed" in caplog.text), timeout=10, what="a failure")
        assert not task.done() and rec.configs == []
        sim.faults.wrong_password = False
        await eventually(when(lambda: len(rec.configs) >= 1), timeout=10, what="a backup once the login works")
        assert not task.done() and "works again" in caplog.text
        assert caplog.text.count("config backup failed") == 1  # once per streak, not per retry
    finally:
        await stop(task)
        await servers.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol,platform", [("ssh", "eos"), ("ssh", "junos"), ("netconf", "eos")])
async def test_end_to_end_versions_diff_api_and_cli(bootstrapped: str, database_url: str, swtel, protocol: str,
                                                    platform: str) -> None:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    sim = SimDevice("leaf-01.dc1", platform=platform, interfaces=3)
    servers = await (serve_ssh if protocol == "ssh" else serve_netconf)([sim], "127.0.0.1", [0])
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    publisher = Publisher(nc, "agent-1")
    pub = CountingPublish(publisher, sim.name, 7)
    ctx = CollectorContext(device(sim.name, servers.ports[0], protocol, platform), 7, pub, CRED)

    async def stored_after(published: int) -> list[dict] | None:
        """The stored versions, once at least ``published`` backups went out and the hub took them all."""
        if pub.published < published:
            return None
        info = await js.consumer_info(naming.STREAM_EVENTS, "swtel-hub-events")
        if info.num_pending or info.num_ack_pending:
            return None
        r = await client.get(f"/api/devices/{sim.name}/configs")
        return r.json() if r.status_code == 200 else None

    task = start_job(ctx)
    try:
        async with AsyncTestClient(app) as client:
            versions = await eventually(lambda: stored_after(3), timeout=20, what="three backups consumed")
            assert [v["version"] for v in versions] == [1]  # three identical backups: one version
            assert versions[0]["agent"] == "agent-1" and versions[0]["token"] == 7
            assert versions[0]["format"] == ("text" if protocol == "ssh" else "xml")
            r = await client.get(f"/api/devices/{sim.name}/configs/1")
            first = r.json()["text"]
            if protocol == "ssh":
                assert first == sim.config_text

            itf = f"interface {sim.ifnames[1]}\n"
            assert itf in sim.config_text
            sim.config_text = sim.config_text.replace(itf, itf + "   description uplink to spine-1\n")
            seen = pub.published
            versions = await eventually(lambda: stored_after(seen + 3), timeout=20, what="the edited config stored")
            assert [v["version"] for v in versions] == [1, 2]  # the change once, then unchanged again
            assert versions[0]["sha256"] != versions[1]["sha256"]

            r = await client.get(f"/api/devices/{sim.name}/config-diff")
            assert r.status_code == 200, r.text
            d = r.json()
            assert (d["a"], d["b"]) == (1, 2)
            added = [ln for ln in d["diff"].splitlines() if ln.startswith("+") and not ln.startswith("+++")]
            removed = [ln for ln in d["diff"].splitlines() if ln.startswith("-") and not ln.startswith("---")]
            if protocol == "ssh":
                assert added == ["+   description uplink to spine-1"] and removed == []
            else:
                # the device's bytes: the simulator answers <get-config> on one line, so that line changed
                assert len(added) == 1 and "<description>uplink to spine-1</description>" in added[0]
                assert len(removed) == 1 and "uplink to spine-1" not in removed[0]
            back = (await client.get(f"/api/devices/{sim.name}/config-diff", params={"a": 2, "b": 1})).json()["diff"]
            assert [ln for ln in back.splitlines() if ln.startswith("-") and not ln.startswith("---")] == \
                ["-" + ln[1:] for ln in added]
            assert (await client.get(f"/api/devices/{sim.name}/configs/9")).status_code == 404
            assert (await client.get("/api/devices/nope/configs")).status_code == 404

            env = {"SWTEL_DATABASE_URL": database_url}
            res = await asyncio.to_thread(swtel, "config", "list", sim.name, "--json", env=env)
            assert res.code == 0, res.err
            assert [v["version"] for v in json.loads(res.out)] == [1, 2]
            res = await asyncio.to_thread(swtel, "config", "diff", sim.name, env=env)
            assert res.code == 0 and res.out == d["diff"]
            res = await asyncio.to_thread(swtel, "config", "show", sim.name, "--version", "1", env=env)
            assert res.code == 0 and res.out == first
            res = await asyncio.to_thread(swtel, "config", "show", sim.name, "--version", "-2", env=env)
            assert res.code == 0 and res.out == first  # counted back from the latest
            res = await asyncio.to_thread(swtel, "config", "show", sim.name, env=env)
            assert "uplink to spine-1" in res.out
    finally:
        await stop(task)
        await nc.close()
        await servers.close()


def test_cli_errors_are_one_line(swtel, database_url: str) -> None:
    import asyncpg

    env = {"SWTEL_DATABASE_URL": database_url}
    res = swtel("config", "list", "sw1", env=env)  # not migrated yet
    assert res.code == 2 and "swtel db migrate" in res.err and len(res.err.strip().splitlines()) == 1
    asyncio.run(migrate(database_url))

    async def one_version() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("INSERT INTO config_backups (time, device, agent, token, format, content, sha256) "
                               "VALUES (now(), 'sw1', 'a', 1, 'text', 'hostname sw1\n', 'x')")
        finally:
            await conn.close()

    asyncio.run(one_version())
    for args, words in ((("list", "nope"), "does not exist"), (("show", "sw1", "--version", "5"), "no config version 5"),
                        (("show", "sw1", "--version", "0"), "numbered from 1"),
                        (("diff", "sw1"), "one config version only"), (("diff", "sw1", "1", "3"), "no config version 3")):
        res = swtel("config", *args, env=env)
        assert res.code == 2, (args, res)
        assert words in res.err and len(res.err.strip().splitlines()) == 1, res.err
    res = swtel("config", "list", "sw1", env={"SWTEL_DATABASE_URL": "postgresql://127.0.0.1:1/none"})
    assert res.code == 2 and "cannot connect to PostgreSQL" in res.err and len(res.err.strip().splitlines()) == 1
    res = swtel("config", "diff", "sw1", "1", "1", env=env)
    assert res.code == 0 and res.out == ""


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_a_real_agent_backs_up_the_devices_it_holds(bootstrapped: str, database_url: str) -> None:
    """``swtel agent run`` (a process) claims an SSH and a NETCONF device and backs both up through the
    hub; an edit on the SSH device becomes version 2."""
    from support.agents import AgentProc
    from swtel.shared.inventory import Inventory, make_device

    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    ssh_sim, nc_sim = SimDevice("sw-ssh", platform="nxos", interfaces=2), SimDevice("sw-nc", interfaces=2)
    ssh_servers = await serve_ssh([ssh_sim], "127.0.0.1", [0])
    nc_servers = await serve_netconf([nc_sim], "127.0.0.1", [0])
    agent = AgentProc("agent-b", bootstrapped, collect=True, env={
        "SWTEL_CRED_SIM_USERNAME": "admin", "SWTEL_CRED_SIM_PASSWORD": "admin", "SWTEL_SSH_HOST_KEY_POLICY": "off",
        "SWTEL_CONFIG_BACKUP_FIRST_S": "0", "SWTEL_CONFIG_BACKUP_INTERVAL_S": "0.5"})
    nc = await nats.connect(bootstrapped)
    try:
        inv = await Inventory.open(nc.jetstream())
        await inv.add(make_device("sw-ssh", "127.0.0.1", "ssh", port=ssh_servers.ports[0], platform="nxos",
                                  credential="sim", interval="5s"))
        await inv.add(make_device("sw-nc", "127.0.0.1", "netconf", port=nc_servers.ports[0], credential="sim",
                                  interval="5s"))
        agent.start()
        async with AsyncTestClient(app) as client:
            async def versions(name: str, n: int) -> list[dict] | None:
                r = await client.get(f"/api/devices/{name}/configs")
                return r.json() if r.status_code == 200 and len(r.json()) >= n else None

            for name in ("sw-ssh", "sw-nc"):
                (v,) = await eventually(lambda name=name: versions(name, 1), timeout=30, what=f"a backup of {name}")
                assert v["agent"] == "agent-b" and v["format"] == ("text" if name == "sw-ssh" else "xml")
            ssh_sim.config_text += "ntp server 192.0.2.1\n"
            got = await eventually(lambda: versions("sw-ssh", 2), timeout=30, what="the edited config stored")
            assert len(got) == 2
            d = (await client.get("/api/devices/sw-ssh/config-diff")).json()
            assert d["diff"].splitlines()[-1] == "+ntp server 192.0.2.1"
    finally:
        agent.terminate()
        await nc.close()
        await ssh_servers.close()
        await nc_servers.close()


def test_sim_config_edits_reach_every_face() -> None:
    sim = SimDevice("s", platform="eos", interfaces=2)
    sim.set_description("Ethernet2", "first")
    sim.set_description("Ethernet2", "second")  # replaces, never stacks
    assert "interface Ethernet2\n   description second\n   no shutdown\n" in sim.config_text
    assert sim.config_text.count("description") == 1
    assert sim.interface_config() == {"Ethernet1": ("", True), "Ethernet2": ("second", True)}
    with pytest.raises(KeyError):
        sim.set_description("Ethernet9", "x")


@pytest.mark.asyncio
async def test_sim_runner_changes_configs_when_asked(swtel) -> None:
    from swtel.agent.sim.runner import SimRunner, SimSpec

    runner = SimRunner(SimSpec(devices=2, protocol="ssh", interfaces=1, base_port=0, config_change_s=0.1))
    before = [d.config_text for d in runner.devices]
    await runner.start()
    try:
        await eventually(when(lambda: all("changed by the simulator" in d.config_text for d in runner.devices)),
                         timeout=5, what="both configs edited")
        assert [d.config_text for d in runner.devices] != before
    finally:
        await runner.close()
    res = await asyncio.to_thread(swtel, "sim", "run", "--config-change-every", "soon")
    assert res.code == 2 and "--config-change-every 'soon' is not a duration" in res.err


@pytest.mark.asyncio
async def test_config_text_needs_the_operator_role_versions_do_not(bootstrapped: str, database_url: str) -> None:
    from support.telemetry import api_token

    await migrate(database_url)
    viewer = await api_token(database_url, "viewer", "ann")
    operator = await api_token(database_url, "operator", "bob")
    async with db(database_url) as conn:
        for i, text in enumerate(["snmp-server community s3cret ro\n", "snmp-server community n3w ro\n"]):
            await conn.execute("INSERT INTO config_backups (time, device, agent, token, format, content, sha256) "
                               "VALUES (now() + $1 * interval '1 second', 'sw1', 'a', 1, 'text', $2, $3)",
                               i, text, str(i))
    app = create_app(hub_settings(bootstrapped, database_url))
    async with AsyncTestClient(app) as client:
        r = await client.get("/api/devices/sw1/configs", headers=viewer)
        assert r.status_code == 200 and [v["version"] for v in r.json()] == [1, 2]
        assert "s3cret" not in r.text
        for url in ("/api/devices/sw1/configs/1", "/api/devices/sw1/config-diff"):
            r = await client.get(url, headers=viewer)
            assert r.status_code == 403 and "operator" in r.json()["detail"]
            r = await client.get(url, headers=operator)
            assert r.status_code == 200 and "s3cret" in r.text
        assert (await client.get("/api/devices/sw1/configs")).status_code == 401


def test_netconf_backup_keeps_the_devices_bytes_whatever_its_prefixes() -> None:
    nc = "urn:ietf:params:xml:ns:netconf:base:1.0"
    inner = ('\n  <if:interfaces xmlns:if="urn:ietf:params:xml:ns:yang:ietf-interfaces">\n'
             '    <if:interface><if:name>ge-0/0/0</if:name></if:interface>\n  </if:interfaces>')
    prefixed = f'<nc:rpc-reply xmlns:nc="{nc}" message-id="1"><nc:data>{inner}\n</nc:data></nc:rpc-reply>'.encode()
    assert backup.data_contents(prefixed) == inner.lstrip("\n") + "\n"  # prefixes, indentation kept as sent
    plain = f'<rpc-reply xmlns="{nc}" message-id="1"><data xmlns:x="urn:x">{inner}</data></rpc-reply>'.encode()
    assert backup.data_contents(plain) == inner.lstrip("\n") + "\n"
    assert backup.data_contents(f'<rpc-reply xmlns="{nc}" message-id="1"><data/></rpc-reply>'.encode()) == ""

