"""Publishing telemetry batches (JetStream, acknowledged) and session events (core NATS).

Each held device gets a :class:`DevicePublish` bound to its lease token. Batches carry a sequence number
per (device, token) starting at 1 and ``Nats-Msg-Id = device:token:seq``, so a batch re-sent after a lost
ack is dropped by the stream's duplicate window. ``publish_async`` has no ack timeout of its own and can
leave a future unresolved (nats.py issue 985), so every ack is bounded with ``asyncio.timeout``; a
semaphore bounds the batches in flight for the whole agent, so a slow server slows collectors down
(gRPC flow control then slows the devices) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext

from swtel.shared import naming, wire

log = logging.getLogger("swtel.agent.publisher")


@dataclass
class PublisherStats:
    batches: int = 0  # acknowledged by JetStream
    samples: int = 0
    retries: int = 0
    dropped: int = 0  # gave up after retries (the seq gap shows the loss downstream)
    events: int = 0
    bytes: int = 0


class Publisher:
    """One per agent: owns the in-flight bound and the counters."""

    def __init__(self, nc: NATS, agent_id: str, *, js: JetStreamContext | None = None, max_in_flight: int = 256,
                 ack_timeout_s: float = 5.0, attempts: int = 3) -> None:
        self.nc = nc
        self.js = js or nc.jetstream(publish_async_max_pending=max_in_flight)
        self.agent_id = agent_id
        self.ack_timeout_s = ack_timeout_s
        self.attempts = attempts
        self.stats = PublisherStats()
        self._in_flight = asyncio.Semaphore(max_in_flight)

    def bind(self, device: str, token: int) -> DevicePublish:
        return DevicePublish(self, device, token)

    async def publish_batch(self, subject: str, payload: bytes, msg_id: str) -> bool:
        """JetStream publish with a bounded ack wait, retried with the same message id; False if dropped."""
        headers = {"Nats-Msg-Id": msg_id}
        async with self._in_flight:
            for attempt in range(self.attempts):
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
                    # races with the result, and a collector must stop when its lease is released.
                    async with asyncio.timeout(self.ack_timeout_s):
                        fut = await self.js.publish_async(subject, payload, headers=headers)
                        await fut
                    self.stats.bytes += len(payload)
                    return True
                except MaxPayloadError:
                    break  # too big for this server: retrying cannot help
                except (TimeoutError, NatsError) as e:
                    if attempt + 1 < self.attempts:
                        self.stats.retries += 1
                        log.debug("publish %s failed (%s); retrying", msg_id, type(e).__name__)
                        await asyncio.sleep(0.1 * 2**attempt)
            self.stats.dropped += 1
            log.warning("dropped message %s after %d attempts", msg_id, self.attempts)
            return False

    async def publish_event(self, device: str, kind: str, detail: str) -> None:
        msg = wire.Event(device=device, agent=self.agent_id, kind=kind, ts=time.time_ns(), detail=detail[:1000])
        log.info("%s %s: %s", device, kind, detail[:200])  # transitions only: what changed, for the operator
        try:
            await self.nc.publish(naming.event_subject(device, kind), wire.encode(msg))
            self.stats.events += 1
        except NatsError as e:  # the connection is closed or draining: events are best effort
            log.debug("event %s for %s not published: %s", kind, device, e)


class DevicePublish:
    """The :class:`~swtel.agent.collectors.base.Publish` of one device under one lease token."""

    def __init__(self, publisher: Publisher, device: str, token: int) -> None:
        self.publisher = publisher
        self.device = device
        self.token = token
        self.seq = 0
        self._subjects: dict[str, str] = {}

    async def batch(self, subscription: str, samples: wire.Columns | list[wire.Sample]) -> None:
        """Publish ``samples`` as one v2 (columnar) batch; collectors that make Sample objects are converted here."""
        if not samples:
            return
        cols = samples if isinstance(samples, wire.Columns) else wire.Columns.of(samples)
        subject = self._subjects.get(subscription)
        if subject is None:
            subject = self._subjects[subscription] = naming.telemetry_subject(self.device, subscription)
        self.seq += 1
        p = self.publisher
        payload = wire.encode(wire.telemetry(self.device, p.agent_id, self.token, self.seq, subscription, cols))
        if await p.publish_batch(subject, payload, naming.msg_id(self.device, self.token, self.seq)):
            p.stats.batches += 1
            p.stats.samples += len(cols)

    async def event(self, kind: str, detail: str = "") -> None:
        await self.publisher.publish_event(self.device, kind, detail)

    async def config(self, format: str, text: str) -> bool:
        """A running-config backup, through JetStream (stream SWTEL_EVENTS) so no hub outage loses it; the
        hub stores it only when it differs from the device's latest. False if it could not be published."""
        ts = time.time_ns()
        p = self.publisher
        payload = wire.encode(wire.ConfigBackup(device=self.device, agent=p.agent_id, token=self.token, ts=ts,
                                                format=format, text=text))
        return await p.publish_batch(naming.config_subject(self.device), payload,
                                     f"{naming.msg_id(self.device, self.token, 0)}:config:{ts}")

    async def facts(self, facts: wire.DeviceFacts) -> bool:
        """Discovery results, through JetStream (kept in SWTEL_EVENTS); the message id makes a re-send
        after a lost ack land once. False when it could not be published (the job retries later)."""
        facts.agent, facts.token = self.publisher.agent_id, self.token
        payload = wire.encode(facts)
        msg_id = f"{naming.msg_id(self.device, self.token, 0)}:facts:{facts.ts}"
        return await self.publisher.publish_batch(naming.event_subject(self.device, "facts"), payload, msg_id)
