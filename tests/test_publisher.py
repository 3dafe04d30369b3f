"""The agent's publisher against a real nats-server: sequence numbers, message ids, de-duplication,
events on core NATS, and bounded waits when the server stops answering."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from support.natsserver import NatsServer
from support.waits import eventually

from swtel.agent.publisher import Publisher
from swtel.shared import naming, wire


async def stopped(server: NatsServer) -> bool:
    """SIGSTOP is delivered asynchronously: wait until the kernel shows the process stopped ("T")."""
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def samples(n: int) -> list[wire.Sample]:
    return [wire.Sample(f"/p/{i}", i, 1) for i in range(n)]


async def stream_messages(js: nats.js.JetStreamContext, count: int) -> list[tuple[dict[str, str], wire.TelemetryBatch]]:
    out = []
    for seq in range(1, count + 1):
        raw = await js.get_msg(naming.STREAM_TELEMETRY, seq)
        out.append((raw.headers or {}, wire.batch_decoder.decode(raw.data)))
    return out


@pytest.mark.asyncio
async def test_sequence_per_device_and_token_with_message_ids(bootstrapped: str) -> None:
    nc = await nats.connect(bootstrapped)
    try:
        pub = Publisher(nc, "agent-1")
        a5 = pub.bind("leaf-1.dc1", 5)
        for n in (3, 2, 1):
            await a5.batch("interfaces", samples(n))
        await pub.bind("leaf-1.dc1", 6).batch("system", samples(4))  # a new lease starts at 1 again
        await a5.batch("interfaces", [])  # nothing to say: nothing published, no seq used
        js = nc.jetstream()
        info = await js.stream_info(naming.STREAM_TELEMETRY)
        assert info.state.messages == 4
        msgs = await stream_messages(js, 4)
        assert [h["Nats-Msg-Id"] for h, _ in msgs] == ["leaf-1.dc1:5:1", "leaf-1.dc1:5:2", "leaf-1.dc1:5:3",
                                                       "leaf-1.dc1:6:1"]
        b = msgs[0][1]
        assert (b.device, b.agent, b.token, b.seq, b.subscription, b.v) == (
            "leaf-1.dc1", "agent-1", 5, 1, "interfaces", 2)
        assert wire.samples_of(b) == samples(3)  # written as columns (v2), read back as the same samples
        assert msgs[3][1].subscription == "system" and msgs[3][1].seq == 1
        assert (pub.stats.batches, pub.stats.samples, pub.stats.dropped) == (4, 10, 0)
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_a_resent_batch_is_dropped_by_the_stream(bootstrapped: str) -> None:
    nc = await nats.connect(bootstrapped)
    try:
        pub = Publisher(nc, "agent-1")
        payload = wire.encode(wire.TelemetryBatch("d", "agent-1", 1, 1, "s", samples(1)))
        subject = naming.telemetry_subject("d", "s")
        assert await pub.publish_batch(subject, payload, naming.msg_id("d", 1, 1))
        assert await pub.publish_batch(subject, payload, naming.msg_id("d", 1, 1))
        info = await nc.jetstream().stream_info(naming.STREAM_TELEMETRY)
        assert info.state.messages == 1
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_events_on_core_nats(bootstrapped: str) -> None:
    nc = await nats.connect(bootstrapped)
    try:
        got: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()
        await nc.subscribe(naming.EVENT_ALL, cb=got.put)
        await Publisher(nc, "agent-1").bind("sw:1", 3).event("auth_failed", "login refused")
        msg = await asyncio.wait_for(got.get(), 5)
        assert msg.subject == naming.event_subject("sw:1", "auth_failed")
        ev = wire.message_decoder.decode(msg.data)
        assert isinstance(ev, wire.Event) and (ev.device, ev.agent, ev.kind, ev.detail) == (
            "sw:1", "agent-1", "auth_failed", "login refused")
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_a_silent_server_costs_a_bounded_wait_and_counts_a_drop(bootstrapped: str,
                                                                       nats_server: NatsServer) -> None:
    nc = await nats.connect(bootstrapped)
    try:
        pub = Publisher(nc, "agent-1", ack_timeout_s=0.3, attempts=2)
        dev = pub.bind("d", 1)
        await dev.batch("s", samples(1))
        nats_server.pause()
        await eventually(lambda: stopped(nats_server), timeout=5, what="nats-server stopped by SIGSTOP")
        try:
            started = time.monotonic()
            await dev.batch("s", samples(1))
            elapsed = time.monotonic() - started
        finally:
            nats_server.resume()
        assert elapsed < 2.0
        assert (pub.stats.batches, pub.stats.dropped, pub.stats.retries) == (1, 1, 1)
        await dev.batch("s", samples(1))  # the server is back: publishing works again, seq went on
        js = nc.jetstream()
        count = (await js.stream_info(naming.STREAM_TELEMETRY)).state.messages
        # The "dropped" batch sat in the socket and may have been stored on resume: once, never twice.
        assert [b.seq for _, b in await stream_messages(js, count)] in ([1, 3], [1, 2, 3])
    finally:
        await nc.close()
