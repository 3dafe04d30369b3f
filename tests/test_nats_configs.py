"""The committed nats/ configs on a real nats-server: each role can do its job and nothing more.

Servers run ``nats/single.conf`` (users with bcrypt passwords from ``nats/accounts.conf``) unchanged, on a
free port, in a temporary working directory. Clients connect through ``swtel.shared.natsconn.connect``
with the same settings a deployed agent, hub or CLI uses. A refused operation is proved twice: the server
reports a permissions violation, and the data it would have changed is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from nats.js import api
from nats.js.errors import KeyNotFoundError

from support.natsconfigs import DEV_USERS, INBOX, NATS_DIR, ConfiguredServer, check_config
from support.waits import eventually
from swtel.shared import buckets, naming, settings
from swtel.shared.errors import ConnectFailed
from swtel.shared.natsconn import connect

DENIED = (nats.errors.TimeoutError, nats.errors.NoRespondersError, asyncio.TimeoutError)


def role_settings(url: str, role: str, **extra: Any) -> settings.Settings:
    user, password = DEV_USERS[role]
    flags = {"nats_url": url, "nats_user": user, "nats_password": password, "nats_inbox_prefix": INBOX[role]}
    return settings.load({**flags, **extra}, env={})


class Client:
    """A role's connection that records the errors the server sends it."""

    def __init__(self, nc: NATS, errors: list[str], changed: asyncio.Event) -> None:
        self.nc = nc
        self.errors = errors
        self._changed = changed
        self.js = nc.jetstream(timeout=2)

    def violations(self, since: int = 0) -> list[str]:
        # nats-py lower-cases the server's message: -ERR 'Permissions Violation for Publish to "…"'
        return [e for e in self.errors[since:] if "permissions violation" in e.lower()]

    async def violation(self, fragment: str, since: int = 0, timeout: float = 5.0) -> str:
        """Wait (bounded) until the server reports a permissions violation naming ``fragment``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [e for e in self.violations(since) if fragment.lower() in e]
            if found:
                return found[0]
            self._changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no permissions violation for {fragment!r} within {timeout}s; errors: {self.errors}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def refused(self, operation: Awaitable[Any], fragment: str) -> None:
        """Start ``operation``; the server must refuse it (a violation naming ``fragment``) and it must not
        succeed. Its reply never comes, so it is cancelled once the refusal is seen."""
        since = len(self.errors)
        task = asyncio.ensure_future(operation)
        try:
            await self.violation(fragment, since)
        finally:
            if not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, *DENIED):
            result = await task
            raise AssertionError(f"the server refused {fragment!r} yet the operation returned {result!r}")


async def open_client(s: settings.Settings, name: str) -> Client:
    errors: list[str] = []
    changed = asyncio.Event()

    async def on_error(err: Exception) -> None:
        errors.append(str(err))
        changed.set()

    nc = await connect(s, name=name, error_cb=on_error)
    return Client(nc, errors, changed)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="swtel-natscfg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def secured(workdir: Path) -> AsyncIterator[ConfiguredServer]:
    """nats/single.conf, initialised by the admin user as `swtel nats init` does."""
    server = ConfiguredServer(NATS_DIR / "single.conf", workdir).start()
    try:
        s = role_settings(server.url, "admin")
        nc = await connect(s, name="test-admin-init")
        try:
            await buckets.ensure(nc.jetstream(timeout=5), buckets.specs(s, replicas=1, markers=True))
        finally:
            await nc.close()
        yield server
    finally:
        server.kill()


@pytest_asyncio.fixture
async def clients(secured: ConfiguredServer) -> AsyncIterator[dict[str, Client]]:
    out = {role: await open_client(role_settings(secured.url, role), f"test-{role}") for role in DEV_USERS}
    try:
        yield out
    finally:
        for c in out.values():
            await c.nc.close()


def device_json(name: str) -> bytes:
    return json.dumps({"name": name, "address": "127.0.0.1", "port": 9339, "protocol": "gnmi"}).encode()


# ---- the files themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["single.conf", "cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf"])
def test_committed_config_parses(config: str, workdir: Path) -> None:
    result = check_config(NATS_DIR / config, workdir)
    assert result.returncode == 0, result.stderr + result.stdout


def test_static_host_template_parses_with_its_files_in_place(workdir: Path) -> None:
    """The production template installed as docs/OPERATIONS.md says, its /etc and /run paths pointed at
    generated certificates."""
    certs = make_certs(workdir)
    etc = workdir / "etc-nats"
    etc.mkdir()
    for name in ("accounts.conf", "permissions.conf"):
        shutil.copy(NATS_DIR / name, etc / name)
    text = (NATS_DIR / "static-host.conf").read_text()
    text = text.replace("/etc/nats/tls/server.pem", str(certs / "server.pem"))
    text = text.replace("/etc/nats/tls/ca.pem", str(certs / "ca.pem"))
    text = text.replace("/run/credentials/nats-server.service/server-key.pem", str(certs / "server-key.pem"))
    text = text.replace("/var/lib/nats", str(workdir / "store"))
    (etc / "nats.conf").write_text(text)
    missing = check_config(etc / "nats.conf", workdir)
    assert missing.returncode != 0 and "SWTEL_NATS_NAME" in missing.stderr, missing.stderr
    ok = check_config(etc / "nats.conf", workdir, env={"SWTEL_NATS_NAME": "nats1"})
    assert ok.returncode == 0, ok.stderr + ok.stdout


# ---- authentication ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_anonymous_and_wrong_password_are_refused(secured: ConfiguredServer) -> None:
    with pytest.raises(ConnectFailed, match="refused the credentials|[Aa]uthorization"):
        await connect(settings.load({"nats_url": secured.url}, env={}), name="test-anonymous")
    with pytest.raises(ConnectFailed, match="refused the credentials|[Aa]uthorization"):
        await connect(role_settings(secured.url, "agent", nats_password="not-the-password"), name="test-wrong")


@pytest.mark.asyncio
async def test_password_from_a_file_as_systemd_hands_it_over(secured: ConfiguredServer, workdir: Path) -> None:
    secret = workdir / "nats-password"
    secret.write_text(DEV_USERS["agent"][1] + "\n")
    s = role_settings(secured.url, "agent", nats_password=None, nats_password_file=str(secret))
    nc = await connect(s, name="test-password-file")
    try:
        kv = await nc.jetstream(timeout=2).key_value(naming.BUCKET_AGENTS)
        assert await kv.put("a-file", b"{}") > 0
    finally:
        await nc.close()


# ---- agent ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_agent_can_do_its_job(clients: dict[str, Client]) -> None:
    admin, agent = clients["admin"], clients["agent"]
    # A large inventory, so the watch needs JetStream flow control (replies to $JS.FC.…).
    devices = await admin.js.key_value(naming.BUCKET_DEVICES)
    padding = "x" * 30_000
    await asyncio.gather(*(devices.put(f"d{i}", device_json(f"d{i}") + padding.encode()) for i in range(400)))

    kv_devices = await agent.js.key_value(naming.BUCKET_DEVICES)
    watcher = await kv_devices.watchall()
    seen = 0
    while await watcher.updates(timeout=10) is not None:
        seen += 1
    await watcher.stop()
    assert seen == 400
    entry = await kv_devices.get("d7")
    assert entry.value.startswith(device_json("d7"))

    presence = await agent.js.key_value(naming.BUCKET_AGENTS)
    assert await presence.put("a1", b'{"id": "a1"}') > 0
    leases = await agent.js.key_value(naming.BUCKET_LEASES)
    rev = await leases.create("d1", b'{"agent": "a1"}')
    rev = await leases.update("d1", b'{"agent": "a1", "again": true}', last=rev)
    assert (await leases.get("d1")).revision == rev
    await leases.delete("d1", last=rev)
    with pytest.raises(KeyNotFoundError):
        await leases.get("d1")

    ack = await agent.js.publish(naming.telemetry_subject("d1", "interfaces"), b"batch", headers={"Nats-Msg-Id": "d1:1:1"})
    assert ack.stream == naming.STREAM_TELEMETRY and ack.seq == 1
    assert (await agent.js.publish(naming.event_subject("d1", "session"), b"up")).stream == naming.STREAM_EVENTS
    assert (await agent.js.publish(naming.config_subject("d1"), b"cfg")).stream == naming.STREAM_EVENTS

    # Control requests from the CLI (admin) and the hub reach the agent, and its reply reaches them.
    async def answer(msg: Any) -> None:
        await msg.respond(b"status:ok")

    await agent.nc.subscribe(naming.ctl_subject("a1", ">"), cb=answer)
    await agent.nc.flush()
    for requester in (admin, clients["hub"]):
        async def answered(requester: Client = requester) -> bool:
            # (retried: a subscription a few milliseconds old may still miss a message, see the hub test)
            try:
                return (await requester.nc.request(naming.ctl_subject("a1", "status"), b"", timeout=0.5)).data == b"status:ok"
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                return False

        await eventually(answered, timeout=5, what="the agent's reply to a control request")
    assert not [e for e in agent.errors if "violation" in e.lower()], agent.errors


@pytest.mark.asyncio
async def test_agent_cannot_write_the_inventory(clients: dict[str, Client]) -> None:
    admin, agent = clients["admin"], clients["agent"]
    inventory = await admin.js.key_value(naming.BUCKET_DEVICES)
    rev = await inventory.put("d1", device_json("d1"))

    kv = await agent.js.key_value(naming.BUCKET_DEVICES)
    await agent.refused(kv.put("d1", device_json("evil")), '"$KV.swtel_devices.d1"')
    await agent.refused(kv.create("d2", device_json("d2")), '"$KV.swtel_devices.d2"')
    await agent.refused(kv.delete("d1"), '"$KV.swtel_devices.d1"')
    await agent.refused(agent.js.purge_stream("KV_swtel_devices"), "$JS.API.STREAM.PURGE.KV_swtel_devices")
    await agent.refused(agent.js.delete_stream("KV_swtel_devices"), "$JS.API.STREAM.DELETE.KV_swtel_devices")
    await agent.refused(agent.js.delete_msg("KV_swtel_devices", rev), "$JS.API.STREAM.MSG.DELETE.KV_swtel_devices")
    # nor redefine the stream (a limit of one message would wipe the inventory)
    await agent.refused(
        agent.js.update_stream(api.StreamConfig(name="KV_swtel_devices", subjects=["$KV.swtel_devices.>"], max_msgs=1)),
        "$JS.API.STREAM.UPDATE.KV_swtel_devices",
    )

    entry = await inventory.get("d1")
    assert (entry.revision, entry.value) == (rev, device_json("d1"))
    with pytest.raises(KeyNotFoundError):
        await inventory.get("d2")
    assert (await admin.js.stream_info("KV_swtel_devices")).config.max_msgs in (None, -1)


@pytest.mark.asyncio
async def test_agent_cannot_consume_the_telemetry_stream(clients: dict[str, Client]) -> None:
    admin, agent, hub = clients["admin"], clients["agent"], clients["hub"]
    subject = naming.telemetry_subject("d1", "interfaces")
    await agent.js.publish(subject, b"secret batch", headers={"Nats-Msg-Id": "d1:1:1"})

    await agent.refused(
        agent.js.pull_subscribe(naming.TELEMETRY_ALL, durable="stolen", stream=naming.STREAM_TELEMETRY), ".SWTEL_TELEMETRY.stolen"
    )
    await agent.refused(
        agent.js.add_consumer(naming.STREAM_TELEMETRY, api.ConsumerConfig(ack_policy=api.AckPolicy.NONE)),
        "$JS.API.CONSUMER.CREATE.SWTEL_TELEMETRY",
    )
    await agent.refused(agent.js.get_msg(naming.STREAM_TELEMETRY, 1), "$JS.API.STREAM.MSG.GET.SWTEL_TELEMETRY")
    await agent.refused(
        agent.js.pull_subscribe(naming.EVENT_ALL, durable="stolen-events", stream=naming.STREAM_EVENTS), ".SWTEL_EVENTS.stolen"
    )

    # Nor read it off the wire: a core subscription to telemetry, or to the hub's inbox where its
    # pull consumer delivers, is refused.
    got: list[bytes] = []

    async def collect(msg: Any) -> None:
        got.append(msg.data)

    for pattern in (naming.TELEMETRY_ALL, "_INBOX_hub.>", "_INBOX.>", "$JS.ACK.>"):
        since = len(agent.errors)
        await agent.nc.subscribe(pattern, cb=collect)
        await agent.violation(f'subscription to "{pattern}"', since)

    sub = await hub_pull(hub, telemetry=True)
    msgs = await sub.fetch(1, timeout=3)
    assert [m.data for m in msgs] == [b"secret batch"]
    await agent.js.publish(subject, b"second batch", headers={"Nats-Msg-Id": "d1:1:2"})
    assert [m.data for m in await sub.fetch(1, timeout=3)] == [b"second batch"]
    await agent.nc.flush()
    assert got == []
    assert [c.name for c in await admin.js.consumers_info(naming.STREAM_TELEMETRY)] == ["swtel-hub"]


# ---- hub --------------------------------------------------------------------------------------------


async def hub_pull(hub: Client, *, telemetry: bool) -> Any:
    """The hub's durable pull consumer, created and bound exactly as hub/ingest.py does."""
    from swtel.hub.ingest import Ingest

    cfg = Ingest._consumer_config(_FakeIngest(), telemetry)  # type: ignore[arg-type]
    stream = naming.STREAM_TELEMETRY if telemetry else naming.STREAM_EVENTS
    await hub.js.add_consumer(stream, config=cfg)
    return await hub.js.pull_subscribe_bind(durable=cfg.durable_name, stream=stream)


class _FakeIngest:  # only what _consumer_config reads: the settings
    from swtel.shared import settings as _s

    settings = _s.load({}, env={})


@pytest.mark.asyncio
async def test_hub_creates_only_its_named_pull_consumers(clients: dict[str, Client]) -> None:
    """No ephemeral or freely named consumer on the data streams (nats-server does not check a push
    consumer's deliver subject, so one could deliver telemetry into an agent's inbox)."""
    admin, agent, hub = clients["admin"], clients["agent"], clients["hub"]
    await agent.js.publish(naming.telemetry_subject("d1", "x"), b"batch", headers={"Nats-Msg-Id": "d1:1:1"})
    await hub.refused(hub.js.subscribe(naming.TELEMETRY_ALL, ordered_consumer=True), "$JS.API.CONSUMER.CREATE.SWTEL_TELEMETRY")
    into_agent = api.ConsumerConfig(name="tap", deliver_subject="_INBOX_agent.tap", ack_policy=api.AckPolicy.NONE)
    await hub.refused(hub.js.add_consumer(naming.STREAM_TELEMETRY, into_agent), "$JS.API.CONSUMER.CREATE.SWTEL_TELEMETRY.tap")
    ephemeral = api.ConsumerConfig(deliver_subject="_INBOX_agent.tap", ack_policy=api.AckPolicy.NONE)
    await hub.refused(hub.js.add_consumer(naming.STREAM_TELEMETRY, ephemeral), "$JS.API.CONSUMER.CREATE.SWTEL_TELEMETRY")
    await hub.refused(hub.js.add_consumer(naming.STREAM_EVENTS, into_agent), "$JS.API.CONSUMER.CREATE.SWTEL_EVENTS.tap")
    assert [c.name for c in await admin.js.consumers_info(naming.STREAM_TELEMETRY)] == []
    sub = await hub_pull(hub, telemetry=True)
    assert [m.data for m in await sub.fetch(1, timeout=3)] == [b"batch"]


@pytest.mark.asyncio
async def test_hub_can_consume_and_read(clients: dict[str, Client]) -> None:
    admin, agent, hub = clients["admin"], clients["agent"], clients["hub"]
    await (await admin.js.key_value(naming.BUCKET_DEVICES)).put("d1", device_json("d1"))
    await (await agent.js.key_value(naming.BUCKET_AGENTS)).put("a1", b'{"id": "a1"}')
    await (await agent.js.key_value(naming.BUCKET_LEASES)).create("d1", b'{"agent": "a1"}')

    for i in range(5):
        await agent.js.publish(naming.telemetry_subject("d1", "x"), f"b{i}".encode(), headers={"Nats-Msg-Id": f"d1:1:{i}"})
    await agent.js.publish(naming.event_subject("d1", "session"), b"up")

    sub = await hub_pull(hub, telemetry=True)
    msgs = await sub.fetch(5, timeout=3)
    assert [m.data for m in msgs] == [f"b{i}".encode() for i in range(5)]
    for m in msgs:
        await m.ack_sync(timeout=2)
    info = await hub.js.consumer_info(naming.STREAM_TELEMETRY, "swtel-hub")
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 5)
    events = await hub_pull(hub, telemetry=False)
    assert [m.data for m in await events.fetch(1, timeout=3)] == [b"up"]

    # The live view: a core subscription to telemetry.
    live: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_live(msg: Any) -> None:
        live.put_nowait(msg.data)

    await hub.nc.subscribe(naming.TELEMETRY_ALL, cb=on_live)
    await hub.nc.flush()
    # Even after the flush, a message published at once is now and then (~2 % here, with any user) not
    # delivered to a brand-new subscription: wait until a probe arrives before the data that counts.
    probe = naming.telemetry_subject("probe", "x")

    async def live_ready() -> bool:
        await agent.js.publish(probe, b"probe")
        try:
            return await asyncio.wait_for(live.get(), 0.2) == b"probe"
        except TimeoutError:
            return False

    await eventually(live_ready, timeout=5, what="the hub's live subscription to receive a probe")
    for i in range(5, 10):
        await agent.js.publish(naming.telemetry_subject("d1", "x"), f"b{i}".encode(), headers={"Nats-Msg-Id": f"d1:1:{i}"})
    got_live: list[bytes] = []
    while len(got_live) < 5:
        data = await asyncio.wait_for(live.get(), 3)
        if data != b"probe":  # a late copy of a probe
            got_live.append(data)
    assert got_live == [f"b{i}".encode() for i in range(5, 10)]

    for bucket, key in ((naming.BUCKET_DEVICES, "d1"), (naming.BUCKET_AGENTS, "a1"), (naming.BUCKET_LEASES, "d1")):
        kv = await hub.js.key_value(bucket)
        assert (await kv.get(key)).value
        watcher = await kv.watchall()
        first = await watcher.updates(timeout=3)
        assert first is not None and first.key == key
        await watcher.stop()
    # fencing follows lease changes (hub/fencing.py) and reads a revision and the key's next one
    from swtel.hub.fencing import LEASE_STREAM

    changes = await hub.nc.subscribe(f"$KV.{naming.BUCKET_LEASES}.>")
    await hub.nc.flush()
    rev = (await (await admin.js.key_value(naming.BUCKET_LEASES)).get("d1")).revision
    assert (await hub.js.get_msg(LEASE_STREAM, seq=rev)).subject == f"$KV.{naming.BUCKET_LEASES}.d1"
    await (await agent.js.key_value(naming.BUCKET_LEASES)).update("d1", b'{"agent": "a2"}', last=rev)
    assert (await changes.next_msg(timeout=3)).subject == f"$KV.{naming.BUCKET_LEASES}.d1"
    nxt = await hub.js.get_msg(LEASE_STREAM, seq=rev + 1, subject=f"$KV.{naming.BUCKET_LEASES}.d1", next=True)
    assert nxt.seq > rev
    assert not [e for e in hub.errors if "violation" in e.lower()], hub.errors


@pytest.mark.asyncio
async def test_hub_cannot_write_buckets_or_publish(clients: dict[str, Client]) -> None:
    admin, hub = clients["admin"], clients["hub"]
    for bucket in (naming.BUCKET_DEVICES, naming.BUCKET_AGENTS, naming.BUCKET_LEASES):
        kv = await hub.js.key_value(bucket)
        await hub.refused(kv.put("x", b"{}"), f'"$KV.{bucket}.x"')
        with pytest.raises(KeyNotFoundError):
            await (await admin.js.key_value(bucket)).get("x")
    await hub.refused(hub.js.publish(naming.telemetry_subject("d1", "x"), b"forged"), '"swtel.telemetry.d1.x"')
    await hub.refused(hub.js.delete_stream(naming.STREAM_TELEMETRY), "$JS.API.STREAM.DELETE.SWTEL_TELEMETRY")
    await hub.refused(hub.js.delete_consumer(naming.STREAM_TELEMETRY, "swtel-hub"), "$JS.API.CONSUMER.DELETE.SWTEL_TELEMETRY")
    assert (await admin.js.stream_info(naming.STREAM_TELEMETRY)).state.messages == 0


@pytest.mark.asyncio
async def test_hub_runs_the_fleet_work_election_and_agents_cannot(clients: dict[str, Client], secured: ConfiguredServer) -> None:
    from swtel.hub.leader import Election

    class Idle:
        async def run(self) -> None:
            await asyncio.Event().wait()

        def close(self) -> None:
            pass

    election = Election(role_settings(secured.url, "hub"), "hub-1", Idle)
    task = asyncio.create_task(election.run())
    try:
        await eventually(lambda: _true(election.is_leader), timeout=10, what="the hub role to win the election")
        first = election.revision
        await eventually(lambda: _true((election.revision or 0) > (first or 0)), timeout=5,
                         what="the hub role to refresh the key")
        # an agent can neither open the bucket nor write the key
        subject = f"$KV.{naming.BUCKET_HUBS}.{naming.FLEET_WORK_KEY}"
        await clients["agent"].refused(clients["agent"].js.publish(subject, b"{}"), f'"{subject}"')
    finally:
        await election.stop()
        await task
    assert election.fenced == 0
    with pytest.raises(KeyNotFoundError):  # deleted on the way out
        await (await clients["admin"].js.key_value(naming.BUCKET_HUBS)).get(naming.FLEET_WORK_KEY)


async def _true(value: bool) -> bool:
    return value


# ---- admin (the CLI) --------------------------------------------------------------------------------


def test_admin_runs_the_cli(swtel: Any, workdir: Path) -> None:
    server = ConfiguredServer(NATS_DIR / "single.conf", workdir).start()
    try:
        user, password = DEV_USERS["admin"]
        env = {"SWTEL_NATS_URL": server.url, "SWTEL_NATS_USER": user, "SWTEL_NATS_PASSWORD": password}
        init = swtel("nats", "init", "--json", env=env)
        assert init.code == 0, init.err
        assert {r["action"] for r in json.loads(init.out)} == {"created"}
        added = swtel("device", "add", "leaf-01.dc1", "--address", "127.0.0.1", "--protocol", "gnmi", env=env)
        assert added.code == 0, added.err
        listed = swtel("device", "list", "--json", env=env)
        assert [d["name"] for d in json.loads(listed.out)] == ["leaf-01.dc1"]

        agent_user, agent_password = DEV_USERS["agent"]
        refused = swtel("device", "add", "x1", "--address", "127.0.0.1", "--protocol", "gnmi",
                        env={**env, "SWTEL_NATS_USER": agent_user, "SWTEL_NATS_PASSWORD": agent_password,
                             "SWTEL_NATS_INBOX_PREFIX": INBOX["agent"]})
        assert refused.code != 0
        assert "admin user" in refused.err and "Traceback" not in refused.err
        again = swtel("device", "list", "--json", env=env)
        assert [d["name"] for d in json.loads(again.out)] == ["leaf-01.dc1"]
    finally:
        server.kill()


def test_cli_without_credentials_gets_one_line(swtel: Any, workdir: Path) -> None:
    server = ConfiguredServer(NATS_DIR / "single.conf", workdir).start()
    try:
        result = swtel("--nats", server.url, "nats", "init")
        assert result.code == 2
        assert "refused the credentials" in result.err and len(result.err.strip().splitlines()) == 1
    finally:
        server.kill()


# ---- nkeys ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_nkeys_variant(swtel: Any, workdir: Path) -> None:
    """accounts-nkeys.conf, with key pairs made by `swtel nats nkey` and public keys from the environment."""
    publics = {}
    for role in DEV_USERS:
        made = swtel("nats", "nkey", "--seed-file", str(workdir / f"{role}.nk"))
        assert made.code == 0, made.err
        publics[role] = made.out.strip()
        assert publics[role].startswith("U") and (workdir / f"{role}.nk").stat().st_mode & 0o777 == 0o600
    assert swtel("nats", "nkey", "--seed-file", str(workdir / "agent.nk")).code == 2  # never overwritten

    # single.conf with its include line switched, as accounts-nkeys.conf tells an operator to do
    for name in ("accounts-nkeys.conf", "permissions.conf"):
        shutil.copy(NATS_DIR / name, workdir / name)
    single = (NATS_DIR / "single.conf").read_text()
    assert "include ./accounts.conf" in single
    conf = workdir / "nkeys.conf"
    conf.write_text(single.replace("include ./accounts.conf", "include ./accounts-nkeys.conf"))
    env = {f"SWTEL_NATS_{role.upper()}_NKEY": key for role, key in publics.items()}
    missing = check_config(conf, workdir)
    assert missing.returncode != 0 and "SWTEL_NATS_" in missing.stderr
    server = ConfiguredServer(conf, workdir, env=env).start()
    try:
        def nk(role: str) -> settings.Settings:
            return settings.load({"nats_url": server.url, "nats_nkey": str(workdir / f"{role}.nk"),
                                  "nats_inbox_prefix": INBOX[role]}, env={})

        nc = await connect(nk("admin"), name="test-nkey-admin")
        try:
            await buckets.ensure(nc.jetstream(timeout=5), buckets.specs(nk("admin"), replicas=1, markers=True))
        finally:
            await nc.close()
        agent = await open_client(nk("agent"), "test-nkey-agent")
        try:
            assert await (await agent.js.key_value(naming.BUCKET_AGENTS)).put("a1", b"{}") > 0
            devices = await agent.js.key_value(naming.BUCKET_DEVICES)
            await agent.refused(devices.put("d1", b"{}"), '"$KV.swtel_devices.d1"')
        finally:
            await agent.nc.close()
        with pytest.raises(ConnectFailed):
            await connect(settings.load({"nats_url": server.url}, env={}), name="test-anonymous")
    finally:
        server.kill()


# ---- TLS --------------------------------------------------------------------------------------------


def make_certs(where: Path, *names: str) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (Debian: apt-get install openssl); nats/make-certs.sh needs it")
    import subprocess

    out = where / "certs"
    done = subprocess.run(
        [str(NATS_DIR / "make-certs.sh"), str(out), *names], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.asyncio
async def test_tls_with_generated_certificates(workdir: Path, tmp_path: Path) -> None:
    certs = make_certs(workdir)  # tls.conf reads ./certs relative to the server's working directory
    for f in ("ca-key.pem", "server-key.pem", "agent-key.pem"):
        assert (certs / f).stat().st_mode & 0o777 == 0o600
    server = ConfiguredServer(NATS_DIR / "tls.conf", workdir, scheme="tls").start()
    try:
        def tls(role: str, **extra: Any) -> settings.Settings:
            files = {"nats_tls_ca": str(certs / "ca.pem"), "nats_tls_cert": str(certs / f"{role}.pem"),
                     "nats_tls_key": str(certs / f"{role}-key.pem")}
            return role_settings(server.url, role, **{**files, **extra})

        nc = await connect(tls("admin"), name="test-tls-admin")
        try:
            assert nc.connected_url is not None and nc.connected_url.scheme == "tls"
            await buckets.ensure(nc.jetstream(timeout=5), buckets.specs(tls("admin"), replicas=1, markers=True))
        finally:
            await nc.close()
        agent = await open_client(tls("agent"), "test-tls-agent")
        try:
            ack = await agent.js.publish(naming.telemetry_subject("d1", "x"), b"over tls")
            assert ack.stream == naming.STREAM_TELEMETRY
        finally:
            await agent.nc.close()

        # Mutual TLS: no client certificate, or one from another CA, is refused before any password.
        with pytest.raises(ConnectFailed):
            await connect(role_settings(server.url, "agent", nats_tls_ca=str(certs / "ca.pem")), name="test-no-cert")
        other = make_certs(tmp_path)
        with pytest.raises(ConnectFailed):
            await connect(tls("agent", nats_tls_cert=str(other / "agent.pem"), nats_tls_key=str(other / "agent-key.pem")),
                          name="test-foreign-cert")
        # A client that does not trust the server's CA refuses the server.
        with pytest.raises(ConnectFailed):
            await connect(tls("agent", nats_tls_ca=str(other / "ca.pem")), name="test-untrusted-server")
        # Plain text to a TLS server fails too.
        with pytest.raises(ConnectFailed):
            await connect(role_settings(server.url.replace("tls://", "nats://"), "agent"), name="test-plain")
    finally:
        server.kill()


def test_bad_tls_paths_are_a_one_line_error(swtel: Any, workdir: Path) -> None:
    result = swtel("nats", "init", env={"SWTEL_NATS_TLS_CA": str(workdir / "missing-ca.pem")})
    assert result.code == 2
    assert "cannot load the NATS TLS files" in result.err and "Traceback" not in result.err



def test_dev_users_match_accounts_conf() -> None:
    import bcrypt

    text = (NATS_DIR / "accounts.conf").read_text()
    for user, password in DEV_USERS.values():
        line = next(line for line in text.splitlines() if f"user: {user}," in line)
        hashed = line.split('password: "')[1].split('"')[0]
        assert bcrypt.checkpw(password.encode(), hashed.encode()), user


@pytest.mark.asyncio
async def test_a_real_hub_ingests_and_fences_under_its_permissions(
    clients: dict[str, Client], secured: ConfiguredServer, database_url: str
) -> None:
    """The whole hub (ingest, fencing, drift checks, election) as the hub user: a genuine batch is stored,
    a forged one kept aside, and the server reports no permission violation for the hub."""
    import time

    from support.telemetry import migrate, point_counts
    from swtel.hub.service import HubCore
    from swtel.shared import wire

    agent = clients["agent"]
    await migrate(database_url)
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e))

    s = role_settings(secured.url, "hub", database_url=database_url)
    hub_nc = await connect(s, name="test-real-hub", error_cb=on_error)
    hub = HubCore(s, nc=hub_nc)
    await hub.start()
    try:
        leases = await agent.js.key_value(naming.BUCKET_LEASES)
        lease = wire.Lease(device="d1", agent="a1", incarnation="i1", acquired_ns=time.time_ns())
        token = await leases.create("d1", wire.encode_kv(lease))
        for tok, seq in ((token, 1), (token + 1_000_000, 2)):
            b = wire.TelemetryBatch("d1", "a1", tok, seq, "x", [wire.Sample("/c", 1.0, time.time_ns())])
            await agent.js.publish(naming.telemetry_subject("d1", "x"), wire.encode(b),
                                   headers={"Nats-Msg-Id": naming.msg_id("d1", tok, seq)})

        async def settled() -> bool:
            return hub.metrics.batches == 1 and hub.metrics.dead_letters.get("token_not_issued") == 1

        await eventually(settled, timeout=20, what="one batch stored and one forged batch kept aside")
        assert await point_counts(database_url) == (1, 1)
        assert hub.ingest is not None and hub.ingest.drift == {}
        assert not [e for e in errors if "violation" in e.lower()], errors
    finally:
        await hub.stop()
        await hub_nc.close()
