"""Telemetry and event ingest: durable JetStream pull consumers → database, acknowledged after commit.

Each worker pulls up to ``hub_fetch_batch`` messages, decodes them with the one reused msgspec decoder,
and hands the good ones to :meth:`Storage.write_telemetry` (one transaction: fencing, exactly-once marks,
binary COPY). Only after the commit are the messages acknowledged. Malformed and unknown messages are
counted, logged once per kind and terminated (never redelivered). While the database is down a worker
holds its messages (telling JetStream it is still working on them), retries with backoff, and reports
the hub unhealthy; nothing is acknowledged until a commit succeeds. Any number of workers and hubs share
one durable consumer: JetStream spreads the pull requests across them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api

from swtel.shared import naming, wire
from swtel.shared.settings import Settings

from . import devstatus
from .metrics import HubMetrics
from .storage import Item, Storage

log = logging.getLogger("swtel.hub.ingest")
FETCH_TIMEOUT_S = 1.0
MAX_BACKOFF_S = 5.0
DECODER = wire.message_decoder  # built once in shared.wire, reused for every message


def transient(e: BaseException) -> bool:
    """A database error worth retrying as is: connection trouble, shutdown, overload, deadlock."""
    if isinstance(e, asyncpg.PostgresError):
        return (e.sqlstate or "")[:2] in ("08", "57", "53", "40", "55", "58")
    return isinstance(e, (OSError, TimeoutError, asyncpg.InterfaceError, ConnectionError))


DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Ingest:
    """One per hub process: ``run()`` until ``close()``."""

    def __init__(self, nc: NATS, storage: Storage, settings: Settings, metrics: HubMetrics) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=5)
        self.storage = storage
        self.settings = settings
        self.metrics = metrics
        self._stop = asyncio.Event()
        self._logged: set[str] = set()
        self.db_ok = True
        self.started = asyncio.Event()  # set once every consumer exists

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.ensure_consumers()
        async with asyncio.TaskGroup() as tg:
            for i in range(self.settings.hub_ingest_workers):
                tg.create_task(self._worker(i, telemetry=True), name=f"ingest-{i}")
            tg.create_task(self._worker(0, telemetry=False), name="ingest-events")
            tg.create_task(self._stats(), name="ingest-stats")

    async def close(self) -> None:
        self._stop.set()

    # ---- consumers -------------------------------------------------------------------------------

    def _consumer_config(self, telemetry: bool) -> api.ConsumerConfig:
        name = self.settings.hub_consumer if telemetry else f"{self.settings.hub_consumer}-events"
        return api.ConsumerConfig(
            name=name,
            durable_name=name,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=self.settings.hub_ack_wait_s,
            max_ack_pending=50_000 if telemetry else 5_000,
            max_deliver=-1,
            filter_subjects=[naming.TELEMETRY_ALL] if telemetry else [naming.EVENT_ALL, naming.CONFIG_ALL],
        )

    async def ensure_consumers(self) -> None:
        """Create (or bind to) the durable consumers; retried until the streams exist."""
        if self.started.is_set():
            return
        for telemetry in (True, False):
            cfg = self._consumer_config(telemetry)
            stream = naming.STREAM_TELEMETRY if telemetry else naming.STREAM_EVENTS
            while True:
                try:
                    await self.js.add_consumer(stream, config=cfg)  # idempotent for an identical config
                    break
                except NatsError as e:
                    if "already" in str(e).lower() or getattr(e, "err_code", None) in (10013, 10148):
                        break  # created by another hub with different options: bind to it as is
                    if self._stop.is_set():
                        return
                    log.warning("cannot create consumer %s on %s (%s); retrying", cfg.durable_name, stream, e)
                    await self._sleep(1.0)
        self.started.set()

    async def _subscribe(self, telemetry: bool) -> object:
        cfg = self._consumer_config(telemetry)
        stream = naming.STREAM_TELEMETRY if telemetry else naming.STREAM_EVENTS
        return await self.js.pull_subscribe_bind(durable=cfg.durable_name, stream=stream)

    # ---- worker loop -----------------------------------------------------------------------------

    async def _worker(self, index: int, *, telemetry: bool) -> None:
        sub = None
        idle = 0
        batch = self.settings.hub_fetch_batch if telemetry else 100
        while not self._stop.is_set():
            try:
                if sub is None:
                    sub = await self._subscribe(telemetry)
                msgs = await sub.fetch(batch, timeout=FETCH_TIMEOUT_S)
            except NatsTimeout:
                idle += 1
                # nats.py issue 504: a pull subscription may not recover after a server restart.
                if idle >= 5 and self.metrics.pending > 0 and sub is not None:
                    await self._drop_sub(sub)
                    sub, idle = None, 0
                continue
            except (NatsError, OSError) as e:
                log.debug("fetch failed (%r); resubscribing", e)
                if sub is not None:
                    await self._drop_sub(sub)
                sub = None
                await self._sleep(0.5)
                continue
            idle = 0
            try:
                if telemetry:
                    await self._handle_telemetry(msgs)
                else:
                    await self._handle_events(msgs)
            except Exception:  # a bug must not stop ingest: log it, hand the messages back, go on
                log.exception("ingest worker failed on a batch of %d messages; they will be redelivered", len(msgs))
                self.metrics.write_errors += 1
                for m in msgs:
                    if not m._ackd:
                        await self._settle(m.nak(delay=5))
                await self._sleep(1.0)
        if sub is not None:
            await self._drop_sub(sub)

    async def _drop_sub(self, sub: object) -> None:
        try:
            await sub.unsubscribe()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 (the connection may be gone; nothing to clean then)
            pass

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    def _bad(self, msg: Msg, reason: str, detail: str) -> None:
        self.metrics.drop(reason)
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning("dropping %s message on %s: %s (logged once per kind; see /metrics)",
                        reason, msg.subject, detail)

    # ---- telemetry -------------------------------------------------------------------------------

    async def _handle_telemetry(self, msgs: Sequence[Msg]) -> None:
        items: list[Item] = []
        keep: list[Msg] = []
        bad: list[Msg] = []
        newest_store = 0.0
        for m in msgs:
            try:
                b = DECODER.decode(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                self._bad(m, "malformed", str(e))
                bad.append(m)
                continue
            if not isinstance(b, wire.TelemetryBatch):
                self._bad(m, "unknown_kind", f"a {type(b).__name__} on a telemetry subject")
                bad.append(m)
                continue
            if b.v > wire.TELEMETRY_VERSION:
                self._bad(m, "unknown_version", f"telemetry v{b.v}; this hub reads v{wire.TELEMETRY_VERSION}")
                bad.append(m)
                continue
            md = m.metadata
            items.append(Item(b, md.sequence.stream))
            keep.append(m)
            newest_store = max(newest_store, md.timestamp.timestamp())
        for m in bad:
            await self._settle(m.term())
        if not items:
            return
        res = await self._write(keep, lambda: self.storage.write_telemetry(items))
        if res is None:
            return  # stopping during an outage: messages were nak'ed
        self.metrics.samples += res.points
        self.metrics.states += res.states
        self.metrics.batches += res.batches
        self.metrics.transactions += 1
        if res.stale:
            self.metrics.drop("stale_token", res.stale)
            if "stale_token" not in self._logged:
                self._logged.add("stale_token")
                log.warning("dropped %d batch(es) with a lease token older than the newest seen for the device",
                            res.stale)
        if res.duplicates:
            self.metrics.drop("duplicate", res.duplicates)
        for reason, n in res.dropped.items():
            self.metrics.drop(reason, n)
        for m in keep:
            await self._settle(m.ack())
        if newest_store:
            self.metrics.lag_s = max(0.0, time.time() - newest_store)

    async def _write(self, msgs: Sequence[Msg], op):  # type: ignore[no-untyped-def]
        """Run ``op`` until it commits. Transient errors: hold the messages and retry with backoff.
        Other errors (a row the database refuses): retried a few times, then the batch is given up."""
        delay = 0.2
        failures = 0
        while True:
            t0 = time.perf_counter()
            try:
                res = await op()
            except DB_ERRORS as e:
                failures += 1
                self.metrics.write_errors += 1
                if transient(e):
                    if self.db_ok:
                        log.error("database unavailable (%s); holding %d messages and retrying", e, len(msgs))
                    self.db_ok = self.metrics.db_up = False
                elif failures >= 3:
                    log.error("database refused a batch %d times (%s); terminating its %d messages", failures, e,
                              len(msgs))
                    for m in msgs:
                        self.metrics.drop("db_rejected")
                        await self._settle(m.term())
                    return None
                if self._stop.is_set():
                    for m in msgs:
                        await self._settle(m.nak())
                    return None
                for m in msgs:  # still working on them: no redelivery to another worker meanwhile
                    await self._settle(m.in_progress())
                await self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self.metrics.write_latency.observe(time.perf_counter() - t0)
            if not self.db_ok:
                log.info("database is back; ingest resumed")
            self.db_ok = self.metrics.db_up = True
            return res

    async def _device_state(self, facts: list[wire.DeviceFacts], events: list[wire.Event]) -> int:
        """Discovery facts and down/up transitions (hub/devstatus.py); idempotent, so retried with the rest."""
        if not facts and not any(e.kind in devstatus.WATCHED for e in events):
            return 0
        async with self.storage.pool.acquire() as conn, conn.transaction():
            return await devstatus.record(conn, facts, events)

    async def _settle(self, coro) -> None:  # type: ignore[no-untyped-def]
        """Ack/nak/term/progress are fire-and-forget publishes; a lost one only means a redelivery,
        which the exactly-once marks absorb."""
        try:
            await coro
        except (NatsError, OSError) as e:
            log.debug("ack not sent: %r", e)

    # ---- events and config backups ---------------------------------------------------------------

    async def _handle_events(self, msgs: Sequence[Msg]) -> None:
        events: list[wire.Event] = []
        configs: list[wire.ConfigBackup] = []
        facts: list[wire.DeviceFacts] = []
        keep: list[Msg] = []
        for m in msgs:
            try:
                e = DECODER.decode(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                self._bad(m, "malformed", str(err))
                await self._settle(m.term())
                continue
            if isinstance(e, wire.Event) and e.v <= wire.EVENT_VERSION:
                events.append(e)
            elif isinstance(e, wire.ConfigBackup) and e.v <= wire.CONFIG_VERSION:
                configs.append(e)
            elif isinstance(e, wire.DeviceFacts) and e.v <= wire.FACTS_VERSION:
                facts.append(e)
            else:
                self._bad(m, "unknown_kind", f"a {type(e).__name__} v{e.v} on an event subject")
                await self._settle(m.term())
                continue
            keep.append(m)
        if not keep:
            return

        async def write() -> int:
            n = await self.storage.write_events(events, configs)
            return n + await self._device_state(facts, events)

        stored = await self._write(keep, write)
        if stored is None:
            return
        self.metrics.events += stored
        for m in keep:
            await self._settle(m.ack())

    # ---- consumer statistics ---------------------------------------------------------------------

    async def _stats(self) -> None:
        while not self._stop.is_set():
            try:
                info = await self.js.consumer_info(naming.STREAM_TELEMETRY, self.settings.hub_consumer)
                self.metrics.pending = info.num_pending or 0
                self.metrics.ack_pending = info.num_ack_pending or 0
            except (NatsError, OSError) as e:
                log.debug("consumer info: %r", e)
            await self._sleep(2.0)
