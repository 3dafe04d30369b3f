"""The hub's pull fetch (hub/pull.py) against a real nats-server: batch limits, no waiting when the stream
holds fewer than a batch, waiting for the first message when it holds none, and messages delivered past a
fetch handed back when the puller stops."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api

from support.waits import eventually
from swtel.hub.pull import Puller, position


async def _stream(js, n: int) -> None:  # type: ignore[no-untyped-def]
    await js.add_stream(name="T", subjects=["t.>"])
    for i in range(n):
        await js.publish(f"t.{i % 3}", str(i).encode())
    # ack_wait far above the test's length: a message comes again only when handed back
    await js.add_consumer("T", api.ConsumerConfig(durable_name="c", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=60))


@pytest.mark.asyncio
async def test_fetch_takes_what_the_stream_holds_without_waiting(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await _stream(nc.jetstream(), 300)
        p = await Puller(nc, "T", "c").start()
        first = await p.fetch(256, timeout=5)
        assert [m.data for m in first] == [str(i).encode() for i in range(256)]
        assert first[0].subject == "t.0" and first[1].subject == "t.1"  # the stream subject, not the inbox
        t0 = time.monotonic()
        rest = await p.fetch(256, timeout=5)  # fewer than a batch: the server says so at once
        assert time.monotonic() - t0 < 2.5
        assert [m.metadata.sequence.stream for m in rest] == list(range(257, 301))
        for m in first[:3] + rest[-3:]:  # what nats-py's metadata says, without building it
            seq, stored_ns = position(m)
            assert seq == m.metadata.sequence.stream
            assert abs(stored_ns / 1e9 - m.metadata.timestamp.timestamp()) < 1e-5
        for m in first + rest:
            await m.ack()
        t0 = time.monotonic()
        with pytest.raises(NatsTimeout):  # nothing at all: about the timeout, then the worker's usual timeout
            await p.fetch(256, timeout=0.5)
        assert 0.2 < time.monotonic() - t0 < 2.5
        await p.unsubscribe()
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_a_waiting_fetch_returns_with_the_first_message_and_keeps_later_ones(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await _stream(js, 0)
        p = await Puller(nc, "T", "c").start()
        # a batch of 3: once "b" and "c" below fill its request, the server holds no request of this puller, so
        # their redelivery after the nak cannot go to its dropped inbox
        waiting = asyncio.create_task(p.fetch(3, timeout=20))
        # the no_wait request found nothing and the waiting one is out (same connection: it reaches the server first)
        await eventually(lambda: _ready(p._n == 2), timeout=10, what="the waiting pull request")
        t0 = time.monotonic()
        await js.publish("t.x", b"a")
        got = await waiting
        assert [m.data for m in got] == [b"a"] and time.monotonic() - t0 < 5  # not the 20 s timeout
        await got[0].ack()
        # the waiting request is still open on the server: later messages arrive and wait for the next fetch
        await js.publish("t.x", b"b")
        await js.publish("t.x", b"c")
        await eventually(lambda: _ready(len(p._buf) == 2), timeout=10, what="two messages buffered")
        await p.unsubscribe()  # they are handed back at once (nak), not after ack_wait
        q = await Puller(nc, "T", "c").start()
        again: list[Msg] = []
        while len(again) < 2:  # (the server may take the request before the naks: then one at a time)
            again += await q.fetch(256, timeout=5)
        assert sorted(m.data for m in again) == [b"b", b"c"]
        assert [m.metadata.num_delivered for m in again] == [2, 2]
        await q.unsubscribe()
    finally:
        await nc.close()


def test_position_reads_both_ack_subject_layouts_and_refuses_others() -> None:
    v1 = "$JS.ACK.T.c.1.42.7.1700000000123456789.3"
    v2 = "$JS.ACK.dom.hash.T.c.1.42.7.1700000000123456789.3.rnd"
    for reply in (v1, v2, v2.rsplit(".", 1)[0]):  # (the v2 layout may end without its random token)
        m = Msg(None, subject="t.x", reply=reply)  # type: ignore[arg-type]
        assert position(m) == (42, 1700000000123456789) and m.metadata.sequence.stream == 42
    for reply in ("", "_INBOX.x.y", "$JS.ACK.T.c.1.42", "$JS.NAK.T.c.1.42.7.1.3"):
        with pytest.raises(NotJSMessageError):
            position(Msg(None, subject="t.x", reply=reply))  # type: ignore[arg-type]


async def _ready(value: bool) -> bool:
    return value
