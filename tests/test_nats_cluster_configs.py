"""nats/cluster/n1-3.conf as committed: a 3-node JetStream cluster with the role users, which keeps
serving agents and hubs when the node leading the telemetry stream is killed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from nats.js.errors import KeyNotFoundError

from support.natsconfigs import DEV_USERS, INBOX, ConfiguredCluster
from support.waits import eventually
from swtel.shared import buckets, naming, settings
from swtel.shared.natsconn import connect

pytestmark = pytest.mark.cluster


def role_settings(url: str, role: str) -> settings.Settings:
    user, password = DEV_USERS[role]
    return settings.load(
        {"nats_url": url, "nats_user": user, "nats_password": password, "nats_inbox_prefix": INBOX[role]}, env={}
    )


@pytest.fixture
def cluster() -> Iterator[ConfiguredCluster]:
    c = ConfiguredCluster().start()
    try:
        yield c
    finally:
        c.cleanup()


async def _quiet(err: Exception) -> None:
    pass


async def attempt(coro: Any) -> Any:
    """One try of a JetStream call during failover: its result, or None when it failed."""
    try:
        return await coro
    except Exception:
        return None


@pytest.mark.asyncio
async def test_cluster_from_the_configs_survives_losing_a_node(cluster: ConfiguredCluster) -> None:
    admin_s = role_settings(cluster.url, "admin")

    async def initialised() -> bool:
        try:
            nc = await connect(admin_s, name="test-cluster-init", error_cb=_quiet)
        except Exception:
            return False
        try:
            await buckets.ensure(nc.jetstream(timeout=5), buckets.specs(admin_s, replicas=3, markers=True))
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    await eventually(initialised, timeout=30, what="`nats init --replicas 3` on the new cluster", interval=0.5)

    agent = await connect(role_settings(cluster.url, "agent"), name="test-cluster-agent", long_running=True, error_cb=_quiet)
    hub = await connect(role_settings(cluster.url, "hub"), name="test-cluster-hub", long_running=True, error_cb=_quiet)
    try:
        ajs, hjs = agent.jetstream(timeout=2), hub.jetstream(timeout=2)
        subject = naming.telemetry_subject("d1", "interfaces")
        # The first publishes may still race the new R3 stream's leader election (no responders): retry,
        # Nats-Msg-Id keeps a retried batch single.
        for i in range(10):
            await eventually(
                lambda i=i: attempt(ajs.publish(subject, f"b{i}".encode(), headers={"Nats-Msg-Id": f"d1:1:{i}"})),
                timeout=30, what=f"batch {i} accepted by the new cluster", interval=0.2,
            )
        presence = await ajs.key_value(naming.BUCKET_AGENTS)
        await presence.put("a1", b'{"id": "a1"}')

        # Kill the node that leads the telemetry stream: the hardest single loss for ingest.
        leader = (await hjs.stream_info(naming.STREAM_TELEMETRY)).cluster.leader
        victim = next(n for n in cluster.nodes if n.config.stem == leader.removeprefix("swtel-"))
        victim.kill()

        # Publishing resumes after the re-election; every batch is stored once (Nats-Msg-Id de-duplicates
        # the retries of a publish whose ack was lost).
        for i in range(10, 20):
            await eventually(
                lambda i=i: attempt(ajs.publish(subject, f"b{i}".encode(), headers={"Nats-Msg-Id": f"d1:1:{i}"})),
                timeout=30, what=f"batch {i} accepted after losing {leader}", interval=0.2,
            )
        assert await eventually(lambda: attempt(presence.put("a1", b'{"id": "a1", "n": 2}')), timeout=30,
                                what="presence writable after losing a node", interval=0.2)
        leases = await eventually(lambda: attempt(ajs.key_value(naming.BUCKET_LEASES)), timeout=30,
                                  what="the leases bucket after losing a node", interval=0.2)
        # (put, not create: a create retried after a lost ack would find its own first write)
        assert await eventually(lambda: attempt(leases.put("d1", b'{"agent": "a1"}')), timeout=30,
                                what="a lease write after losing a node", interval=0.2)

        from types import SimpleNamespace

        from swtel.hub.ingest import Ingest
        from swtel.shared import settings as settings_mod

        # the hub's own durable, as hub/ingest.py creates it (the hub role may create only that name)
        cfg = Ingest._consumer_config(SimpleNamespace(settings=settings_mod.load({}, env={})), True)  # type: ignore[arg-type]

        async def bind() -> object:
            await hjs.add_consumer(naming.STREAM_TELEMETRY, config=cfg)
            return await hjs.pull_subscribe_bind(durable=cfg.durable_name, stream=naming.STREAM_TELEMETRY)

        sub = await eventually(lambda: attempt(bind()), timeout=30, what="the hub's durable consumer", interval=0.2)
        got: list[bytes] = []

        async def drained() -> bool:
            try:
                msgs = await sub.fetch(20, timeout=1)
            except Exception:
                return False
            for m in msgs:
                got.append(m.data)
                await m.ack_sync(timeout=2)
            return len(got) >= 20

        await eventually(drained, timeout=30, what="the hub to receive all 20 batches", interval=0.1)
        assert got == [f"b{i}".encode() for i in range(20)]
        assert (await hjs.stream_info(naming.STREAM_TELEMETRY)).cluster.leader != leader
        # (presence expires after 3 s, so the hub reads the lease, which has no age limit)
        kv = await eventually(lambda: attempt(hjs.key_value(naming.BUCKET_LEASES)), timeout=30,
                              what="the hub reading leases", interval=0.2)
        assert (await kv.get("d1")).value == b'{"agent": "a1"}'
        with pytest.raises(KeyNotFoundError):
            await kv.get("nobody")
    finally:
        await asyncio.gather(agent.close(), hub.close(), return_exceptions=True)
