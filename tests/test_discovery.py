"""Discovery and device status end to end: simulated switches (gNMI, SSH on two platforms, NETCONF) →
the agent's collection slots (collector + discovery job) → a real nats-server (JetStream) → the hub's
ingest → PostgreSQL → the facts API, ``swtel device show`` and the fleet status with hysteresis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from litestar.testing import AsyncTestClient

from support.gnmisim import gnmi_fleet
from support.telemetry import api_token, hub_settings, migrate
from support.waits import eventually
from swtel.agent import collect
from swtel.agent.credentials import Credentials
from swtel.agent.sim.model import SimDevice
from swtel.agent.sim.netconf_server import serve_netconf
from swtel.agent.sim.ssh_server import serve_ssh
from swtel.hub import devstatus
from swtel.hub.app import create_app
from swtel.hub.live.cache import LiveCache
from swtel.hub.live.fleet import COLLECTING, DOWN, FleetState
from swtel.shared import naming, settings, wire
from swtel.shared.inventory import make_device


def _collection(nc: nats.NATS, tmp_path: Path, **extra: Any) -> collect.Collection:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[sim]\nusername = "admin"\npassword = "admin"\n')
    s = settings.load({"secrets_file": str(secrets), "ssh_host_key_policy": "off", "ssh_timeout_s": 3.0,
                       **extra}, env={})
    return collect.Collection(nc, s, "agent-d", credentials=Credentials(str(secrets), env={}))


async def _facts_rows(database_url: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return {r["device"]: {**json.loads(r["facts"]), "agent": r["agent"], "token": r["token"]}
                for r in await conn.fetch("SELECT device, facts::text AS facts, agent, token FROM device_facts")}
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_facts_from_every_protocol_reach_the_database_api_and_cli(
        bootstrapped: str, database_url: str, tmp_path: Path, swtel: Any, db_backend: str) -> None:
    assert await migrate(database_url) == db_backend
    headers = await api_token(database_url)
    sims = {"g-eos": SimDevice("g-eos", "eos", 4), "s-eos": SimDevice("s-eos", "eos", 3),
            "s-nxos": SimDevice("s-nxos", "nxos", 3), "n-junos": SimDevice("n-junos", "junos", 2)}
    nc = await nats.connect(bootstrapped)
    ssh = await serve_ssh([sims["s-eos"], sims["s-nxos"]], "127.0.0.1", [0, 0])
    nconf = await serve_netconf([sims["n-junos"]], "127.0.0.1", [0])
    tasks: list[asyncio.Task[None]] = []
    try:
        async with gnmi_fleet(sims["g-eos"]) as fleet, AsyncTestClient(create_app(hub_settings(bootstrapped, database_url))) as client:
            client.headers.update(headers)
            devices = [
                make_device("g-eos", "127.0.0.1", "gnmi", port=fleet.ports[0], platform="eos", credential="sim"),
                make_device("s-eos", "127.0.0.1", "ssh", port=ssh.ports[0], platform="eos", credential="sim"),
                make_device("s-nxos", "127.0.0.1", "ssh", port=ssh.ports[1], platform="nxos", credential="sim"),
                make_device("n-junos", "127.0.0.1", "netconf", port=nconf.ports[0], platform="junos", credential="sim"),
            ]
            for d in devices:  # the inventory, as an operator writes it (`device show` reads it back)
                added = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "add", d.name, "--address",
                                                d.address, "--protocol", d.protocol, "--port", str(d.port),
                                                "--platform", d.platform, "--credential", "sim")
                assert added.code == 0, added.err
            collection = _collection(nc, tmp_path)
            tasks = [asyncio.create_task(collection.slot(d, 40 + i)) for i, d in enumerate(devices)]

            async def all_stored() -> dict[str, dict[str, Any]] | None:
                rows = await _facts_rows(database_url)
                return rows if len(rows) == len(devices) else None

            rows = await eventually(all_stored, timeout=30, what="facts of four devices in device_facts")
            for name, sim in sims.items():
                f = rows[name]
                assert f["agent"] == "agent-d" and f["errors"] == [], (name, f)
                assert (f["vendor"], f["model"], f["os_version"]) == (
                    sim.facts["vendor"], sim.facts["model"].upper() if name == "n-junos" else sim.facts["model"],
                    sim.facts["os_version"]), name
                assert f["serial"] == sim.serial and f["hostname"] == name, (name, f)
                assert f["uptime_s"] >= 86400, (name, f)
                assert [i["name"] for i in f["interfaces"]] == sim.ifnames, name
                assert {i["oper_status"] for i in f["interfaces"]} <= {"UP", "DOWN"}
            assert rows["g-eos"]["gnmi_version"] == "0.10.0"
            assert set(rows["g-eos"]["encodings"]) == {"PROTO", "JSON", "JSON_IETF"}
            assert "openconfig-platform@0.24.0" in rows["g-eos"]["models"]
            assert any("ietf-interfaces" in m for m in rows["n-junos"]["models"])
            assert rows["s-eos"]["interfaces"][0]["speed_bps"] == 10_000_000_000  # EOS's status table has speeds
            assert rows["g-eos"]["token"] == 40

            r = await client.get("/api/devices/s-nxos/facts")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["serial"] == sims["s-nxos"].serial and body["protocol"] == "ssh"
            assert body["agent"] == "agent-d" and body["discovered_at"] and body["status"] is None
            missing = await client.get("/api/devices/nope/facts")
            assert missing.status_code == 404 and "no facts" in missing.json()["detail"]

            env = {"SWTEL_DATABASE_URL": database_url}
            shown = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "show", "n-junos", "--json", env=env)
            assert shown.code == 0, shown.err
            out = json.loads(shown.out)
            assert out["name"] == "n-junos" and out["facts"]["vendor"] == "Juniper"
            assert out["facts"]["serial"] == sims["n-junos"].serial
            table = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "show", "g-eos", env=env)
            assert table.code == 0 and sims["g-eos"].serial in table.out and "DCS-7050SX3-48YC8" in table.out
            # no database: the inventory part still shows, with one line saying why there are no facts
            nodb = {"SWTEL_DATABASE_URL": "postgresql://swtel@127.0.0.1:1/swtel"}
            shown = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "show", "g-eos", "--json", env=nodb)
            assert shown.code == 0 and json.loads(shown.out)["facts"] is None
            assert "not reachable" in shown.err and len(shown.err.strip().splitlines()) == 1
            table = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "show", "g-eos", env=nodb)
            assert table.code == 0 and "not reachable" in table.out and "Traceback" not in table.out + table.err
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ssh.close()
        await nconf.close()
        await nc.close()


@pytest.mark.asyncio
async def test_a_device_is_down_only_after_repeated_failures_and_comes_back_up(
        bootstrapped: str, database_url: str, tmp_path: Path, db_backend: str) -> None:
    assert await migrate(database_url) == db_backend
    sim = SimDevice("flaky", "eos", 2)
    nc = await nats.connect(bootstrapped)
    ssh = await serve_ssh([sim], "127.0.0.1", [0])
    # the fleet view as the hub's live service builds it, fed by the real events on NATS
    cache = LiveCache()
    fleet = FleetState(cache)
    await nc.subscribe(naming.EVENT_ALL, cb=cache.on_message)
    await nc.subscribe(naming.TELEMETRY_ALL, cb=cache.on_message)
    dev = wire.Device("flaky", "127.0.0.1", ssh.ports[0], "ssh", platform="eos", credential="sim",
                      subscriptions=[wire.Subscription("interfaces", ["/interfaces/interface/state/oper-status"],
                                                       interval_s=0.5)])
    key = naming.encode_name("flaky")
    fleet.apply(naming.BUCKET_DEVICES, key, wire.encode_kv(dev), None, 1)
    fleet.apply(naming.BUCKET_LEASES, key, wire.encode_kv(wire.Lease("flaky", "agent-d", "i1")), None, 2)
    fleet.apply(naming.BUCKET_AGENTS, naming.encode_name("agent-d"),
                wire.encode_kv(wire.AgentPresence("agent-d", "i1", "h", "1", 10)), None, 3)
    collection = _collection(nc, tmp_path, device_down_after=3)
    task = asyncio.create_task(collection.slot(dev, 9))
    try:
        async with AsyncTestClient(create_app(hub_settings(bootstrapped, database_url))):
            def stats() -> dict[str, Any]:
                return collection.device_stats().get("flaky", {})

            async def status_is(want: str) -> bool:
                return fleet.status("flaky", asyncio.get_running_loop().time()) == want

            await eventually(lambda: _now(stats().get("status") == "collecting"), timeout=15, what="collecting")
            await eventually(lambda: status_is(COLLECTING), timeout=10, what="fleet: collecting")
            await eventually(lambda: _facts_stored(database_url), timeout=15,
                             what="discovery done (facts stored) before faults are injected")
            errors = stats()["errors"]

            # one failed poll: counted, reported per attempt, but the device is not down
            sim.faults.garbage = True
            await eventually(lambda: _now(stats()["errors"] > errors), timeout=10, what="one failed poll")
            sim.faults.garbage = False
            assert stats()["status"] == "error" and stats()["consecutive_failures"] < 3
            await eventually(lambda: _now(stats()["status"] == "collecting"), timeout=10, what="collecting again")
            assert stats()["consecutive_failures"] == 0 and stats()["down"] is False
            assert await status_is(COLLECTING)
            assert "flaky" not in cache.devices or not cache.devices["flaky"].down

            # failures in a row: down after the third, in the agent, the fleet view and the database
            sim.faults.garbage = True
            await eventually(lambda: _now(stats()["down"]), timeout=15, what="down after 3 failures")
            assert stats()["consecutive_failures"] >= 3
            await eventually(lambda: status_is(DOWN), timeout=10, what="fleet: down")
            await eventually(lambda: _down(database_url, True), timeout=15, what="flaky in down_devices")
            sim.faults.garbage = False
            await eventually(lambda: _now(not stats()["down"]), timeout=10, what="up at the first success")
            await eventually(lambda: status_is(COLLECTING), timeout=10, what="fleet: collecting again")
            await eventually(lambda: _down(database_url, False), timeout=15, what="flaky out of down_devices")
            kinds = [e["kind"] for e in cache.events if e["device"] == "flaky"]
            assert kinds.count("device_down") == 1 and kinds.count("device_up") == 1, kinds
            assert kinds.index("device_down") < kinds.index("device_up")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ssh.close()
        await nc.close()


async def _now(value: Any) -> Any:
    return value


async def _facts_stored(database_url: str) -> bool:
    return bool(await _facts_rows(database_url))


async def _down(database_url: str, want: bool) -> bool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        return ("flaky" in await devstatus.down_devices(pool)) == want
    finally:
        await pool.close()


@pytest.mark.parametrize("platform", ["eos", "nxos", "junos", "iosxr", "generic"])
def test_show_version_parsers_read_the_simulated_platforms(platform: str) -> None:
    from swtel.agent.collectors import parsers
    from swtel.agent.sim import cli

    sim = SimDevice(f"r-{platform}", platform, 2)
    mod = parsers.platform(platform)
    got = mod.facts({cmd: cli.run(sim, cmd) for cmd in mod.FACTS_COMMANDS})
    want_model = sim.facts["model"].upper() if platform == "junos" else sim.facts["model"]
    assert (got["vendor"], got["model"], got["os_version"], got["hostname"]) == (
        sim.facts["vendor"], want_model, sim.facts["os_version"], sim.name)
    if platform != "junos":  # Junos prints its serial in `show chassis hardware`, not asked for
        assert got["serial"] == sim.serial
        assert abs(got["uptime_s"] - sim.uptime_s()) <= 60  # IOS-XR prints minutes


@pytest.mark.asyncio
async def test_discovery_of_an_unreachable_device_retries_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from support.recorder import Recorder, device

    from swtel.agent.collectors import gnmi
    from swtel.agent.collectors.base import CollectorContext, Credential
    from swtel.agent.collectors.sshconn import SshOptions
    from swtel.agent.jobs import discovery
    from swtel.agent.sim.model import Faults

    monkeypatch.setattr(discovery, "RETRY_BASE_S", 0.05)
    monkeypatch.setattr(gnmi, "RPC_TIMEOUT_S", 1.0)
    sim = SimDevice("locked", "eos", 2, faults=Faults(wrong_password=True))
    async with gnmi_fleet(sim) as fleet:
        rec = Recorder()
        ctx = CollectorContext(device("locked", fleet.ports[0], "gnmi", "eos"), 3, rec, Credential("admin", "admin"))
        task = asyncio.create_task(discovery.run(ctx, interval_s=3600, opts=SshOptions(host_key_policy="off")))
        try:
            with pytest.raises(gnmi.SessionError, match="login refused"):
                await discovery.discover(ctx, SshOptions())
            await asyncio.sleep(0.5)  # a few refused attempts: the job keeps going, publishes nothing
            assert not task.done() and rec.facts_seen == [] and rec.events == []
            assert ctx.stats.errors == 0  # discovery never counts as a collection attempt
            sim.faults.wrong_password = False
            await eventually(lambda: _now(rec.facts_seen), timeout=10, what="facts once the login works")
            assert rec.facts_seen[0].serial == sim.serial and not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_published_facts_are_not_kept_until_the_next_discovery() -> None:
    """Issue 20: nothing per device outlives the update it belongs to. The facts (48 interfaces, the model
    list) were held by the job for the 6 h it sleeps, thousands of devices' worth in an agent."""
    from support.recorder import Recorder, device

    from swtel.agent.collectors.base import CollectorContext, Credential
    from swtel.agent.collectors.sshconn import SshOptions
    from swtel.agent.jobs import discovery

    sim = SimDevice("sw", "eos", 48)
    async with gnmi_fleet(sim) as fleet:
        rec = Recorder()
        ctx = CollectorContext(device("sw", fleet.ports[0], "gnmi", "eos"), 1, rec, Credential("admin", "admin"))
        task = asyncio.create_task(discovery.run(ctx, interval_s=3600, opts=SshOptions(host_key_policy="off")))
        try:
            await eventually(lambda: _now(rec.facts_seen), timeout=10, what="the facts published")
            frame = task.get_coro().cr_frame  # the job, asleep until the next discovery
            await eventually(lambda: _now(frame.f_locals.get("facts") is None), timeout=5,
                             what=f"the job to drop its facts while it waits (holds {frame.f_locals.get('facts')!r:.80})")
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_status_rows_follow_event_time_not_arrival_order(database_url: str) -> None:
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        ev = lambda kind, s: wire.Event("sw", "a1", kind, s * 1_000_000_000)  # noqa: E731
        assert await devstatus.record(conn, [], [ev("device_down", 100)]) == 1
        assert await devstatus.down_devices(pool) == {"sw"}
        await devstatus.record(conn, [], [ev("device_down", 100)])  # redelivered: same state
        await devstatus.record(conn, [], [ev("session_up", 50)])  # older than the down: ignored
        assert await devstatus.down_devices(pool) == {"sw"}
        await devstatus.record(conn, [], [ev("device_up", 200), ev("device_down", 150)])  # late down, one batch
        assert await devstatus.down_devices(pool) == set()
        assert await devstatus.record(conn, [], [ev("session_up", 300)]) == 0  # no row per session when up
        facts = wire.DeviceFacts("sw", "a1", 5, 1_000, "ssh", vendor="new")
        await devstatus.record(conn, [facts], [])
        await devstatus.record(conn, [wire.DeviceFacts("sw", "a1", 4, 500, "ssh", vendor="old")], [])  # older
        got = await devstatus.get_facts(conn, "sw")
        assert got is not None and got["vendor"] == "new" and got["token"] == 5
    finally:
        await pool.close()
        await conn.close()


@pytest.mark.asyncio
async def test_an_agent_runs_a_bounded_number_of_discoveries_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failover an agent claims many devices at once: their discoveries queue, all still complete."""
    from support.recorder import Recorder, device

    from swtel.agent.collectors.base import CollectorContext, Credential
    from swtel.agent.collectors.sshconn import SshOptions
    from swtel.agent.jobs import discovery

    monkeypatch.setattr(discovery, "MAX_CONCURRENT", 3)
    sims = [SimDevice(f"sw{i}", "eos", 2) for i in range(12)]
    servers = await serve_ssh(sims, "127.0.0.1", [0] * len(sims))
    running = peak = 0
    real_discover = discovery.discover

    async def counted(ctx: CollectorContext, opts: SshOptions) -> wire.DeviceFacts:  # the real discovery, counted
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.05)  # hold the slot a little so overlaps would show
            return await real_discover(ctx, opts)
        finally:
            running -= 1

    monkeypatch.setattr(discovery, "discover", counted)
    recs = [Recorder() for _ in sims]
    opts = SshOptions(host_key_policy="off")
    tasks = [asyncio.create_task(discovery.run(
        CollectorContext(device(s.name, port, "ssh", "eos"), 1, rec, Credential("admin", "admin")),
        interval_s=3600, opts=opts)) for s, port, rec in zip(sims, servers.ports, recs)]
    try:
        await eventually(lambda: _now(all(r.facts_seen for r in recs)), timeout=30, what="facts of all 12 devices")
        assert peak == 3, f"{peak} discoveries ran at once"
        assert {r.facts_seen[0].hostname for r in recs} == {s.name for s in sims}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await servers.close()
