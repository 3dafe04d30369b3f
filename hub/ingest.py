"""Telemetry and event ingest: durable JetStream pull consumers → database, acknowledged after commit.

Each worker pulls up to ``hub_fetch_batch`` messages (hub/pull.py), decodes them with the one reused msgspec decoder,
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
from typing import Any

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api

from swtel.shared import naming, wire
from swtel.shared.settings import Settings

from . import deadletter, devstatus
from .deadletter import Letter
from .fencing import LeaseLedger, Refusal, cutoff_ns
from .metrics import HubMetrics
from .pull import Puller, position
from .storage import Item, Storage, WriteResult

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


def consumer_drift(want: api.ConsumerConfig, have: api.ConsumerConfig) -> list[str]:
    """What in a durable consumer's actual config differs from what this hub needs (only what changes
    correctness: a push consumer leaks data to its deliver subject; max_deliver or a filter loses data)."""
    out = []
    if have.deliver_subject:
        out.append(f"deliver_subject {have.deliver_subject!r} (a push consumer; the hub needs a pull consumer)")
    if have.ack_policy != want.ack_policy:
        out.append(f"ack_policy {have.ack_policy} != {want.ack_policy}")
    if (have.max_deliver or -1) != (want.max_deliver or -1):
        out.append(f"max_deliver {have.max_deliver} != {want.max_deliver} (messages would be dropped after that)")
    filters = set(have.filter_subjects or ([have.filter_subject] if have.filter_subject else []))
    if filters != set(want.filter_subjects or []):
        out.append(f"filter_subjects {sorted(filters)} != {sorted(want.filter_subjects or [])}")
    if want.ack_wait and abs((have.ack_wait or 0) - want.ack_wait) > 1e-3:
        out.append(f"ack_wait {have.ack_wait or 0:g}s != {want.ack_wait:g}s")
    if (have.max_ack_pending or 0) != (want.max_ack_pending or 0):
        out.append(f"max_ack_pending {have.max_ack_pending} != {want.max_ack_pending}")
    return out


class Refused(Exception):
    """The database refused the data itself (not a connection problem): isolate, do not retry as is."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause

    @property
    def reason(self) -> str:
        code = getattr(self.cause, "sqlstate", None)
        return f"{code or type(self.cause).__name__}: {self.cause}"


def _bad_builtins(obj: object) -> str | None:
    """NUL in a string or an integer PostgreSQL's bigint cannot hold, anywhere in a decoded event."""
    if isinstance(obj, str):
        return "NUL character in a text field" if "\x00" in obj else None
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        return None if -(2**63) <= obj < 2**63 else f"integer {obj} outside the int64 range"
    if isinstance(obj, dict):
        return next((p for p in map(_bad_builtins, [*obj.keys(), *obj.values()]) if p), None)
    if isinstance(obj, list):
        return next((p for p in map(_bad_builtins, obj) if p), None)
    return None


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
        self.ledger = LeaseLedger(nc, storage.pool)
        self.drift: dict[str, list[str]] = {}  # durable consumer name → how its config differs from ours

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.ensure_consumers()
        await self.ledger.start()
        async with asyncio.TaskGroup() as tg:
            for i in range(self.settings.hub_ingest_workers):
                tg.create_task(self._worker(i, telemetry=True), name=f"ingest-{i}")
            tg.create_task(self._worker(0, telemetry=False), name="ingest-events")
            tg.create_task(self._stats(), name="ingest-stats")

    async def close(self) -> None:
        self._stop.set()
        await self.ledger.close()

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
                    try:  # it exists, and its config cannot be changed into ours: bind, drift is reported
                        await self.js.consumer_info(stream, cfg.durable_name)
                        log.error("consumer %s on %s exists and cannot be updated to this hub's config (%s)",
                                  cfg.durable_name, stream, e)
                        break
                    except (NatsError, OSError):
                        pass
                    if self._stop.is_set():
                        return
                    log.warning("cannot create consumer %s on %s (%s); retrying", cfg.durable_name, stream, e)
                    await self._sleep(1.0)
        await self.check_consumers()
        self.started.set()

    async def check_consumers(self) -> None:
        """Compare the durable consumers this hub binds to with the config it needs; differences are reported
        in /api/health, /metrics and the log (once per change), never silently run on."""
        for telemetry in (True, False):
            want = self._consumer_config(telemetry)
            stream = naming.STREAM_TELEMETRY if telemetry else naming.STREAM_EVENTS
            try:
                info = await self.js.consumer_info(stream, want.durable_name)
            except (NatsError, OSError) as e:
                log.debug("consumer info %s: %r", want.durable_name, e)
                continue
            if telemetry:
                self.metrics.pending = info.num_pending or 0
                self.metrics.ack_pending = info.num_ack_pending or 0
            diff = consumer_drift(want, info.config)
            name = str(want.durable_name)
            if diff != self.drift.get(name, []):
                if diff:
                    log.error("durable consumer %s on %s differs from this hub's config: %s. Fix it (nats consumer "
                              "edit, or delete it and restart a hub) or align the hub settings", name, stream,
                              "; ".join(diff))
                else:
                    log.info("durable consumer %s on %s matches this hub's config again", name, stream)
            if diff:
                self.drift[name] = diff
            else:
                self.drift.pop(name, None)
        self.metrics.consumer_drift = len(self.drift)

    async def _subscribe(self, telemetry: bool) -> Puller:
        cfg = self._consumer_config(telemetry)
        stream = naming.STREAM_TELEMETRY if telemetry else naming.STREAM_EVENTS
        return await Puller(self.nc, stream, str(cfg.durable_name)).start()

    # ---- worker loop -----------------------------------------------------------------------------

    async def _worker(self, index: int, *, telemetry: bool) -> None:
        sub: Puller | None = None
        idle = 0
        batch = self.settings.hub_fetch_batch if telemetry else 100
        while not self._stop.is_set():
            try:
                if sub is None:
                    sub = await self._subscribe(telemetry)
                msgs = await sub.fetch(batch, timeout=FETCH_TIMEOUT_S)
            except NatsTimeout:
                idle += 1
                # a pull request lost with a restarted server or consumer (as nats.py issue 504 was): with
                # messages pending and nothing coming, start afresh
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

    async def _drop_sub(self, sub: Puller) -> None:
        try:
            await sub.unsubscribe()
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

    def _letter(self, m: Msg, reason: str, detail: str, b: wire.TelemetryBatch | None = None) -> Letter:
        try:
            seq = m.metadata.sequence.stream
        except Exception:  # noqa: BLE001 (not a JetStream message: no sequence)
            seq = 0
        x = Letter(m.subject, seq, reason, detail, m.data)
        if b is not None:
            x.device, x.agent, x.token, x.seq = b.device, b.agent, b.token, b.seq
        return x

    async def _handle_telemetry(self, msgs: Sequence[Msg]) -> None:
        items: list[Item] = []
        keep: list[Msg] = []
        letters: list[tuple[Msg, Letter]] = []
        newest_store = 0.0
        for m in msgs:
            try:
                b = DECODER.decode(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                letters.append((m, self._letter(m, "malformed", str(e))))
                continue
            if not isinstance(b, wire.TelemetryBatch):
                letters.append((m, self._letter(m, "unknown_kind", f"a {type(b).__name__} on a telemetry subject")))
                continue
            if b.v > wire.TELEMETRY_VERSION:
                letters.append((m, self._letter(
                    m, "unknown_version", f"telemetry v{b.v}; this hub reads v{wire.TELEMETRY_VERSION}", b)))
                continue
            problem = wire.problems(b)
            if problem is not None:
                letters.append((m, self._letter(m, problem[0], problem[1], b)))
                continue
            wire.columnar(b)  # v1 samples into columns: storage reads one form
            seq, stored_ns = position(m)
            items.append(Item(b, seq))
            keep.append(m)
            newest_store = max(newest_store, stored_ns / 1e9)
        if items:  # fencing: only genuine holders' batches go on (hub/fencing.py)
            verdicts = await self.ledger.verdicts({(it.batch.device, it.batch.agent, it.batch.token) for it in items})
            genuine: list[Item] = []
            genuine_msgs: list[Msg] = []
            for it, m in zip(items, keep):
                v = verdicts[(it.batch.device, it.batch.agent, it.batch.token)]
                if isinstance(v, Refusal):
                    letters.append((m, self._letter(m, v.reason, v.detail, it.batch)))
                else:
                    it.cutoff_ns = cutoff_ns(v, self.settings.fence_grace_s)
                    genuine.append(it)
                    genuine_msgs.append(m)
            items, keep = genuine, genuine_msgs
        if letters:
            await self._dead_letters(letters)
        if not items:
            return
        total = WriteResult()
        done = await self._store(items, keep, total)
        self.metrics.samples += total.points
        self.metrics.states += total.states
        self.metrics.batches += total.batches
        if total.duplicates:
            self.metrics.drop("duplicate", total.duplicates)
        for reason, n in total.dropped.items():
            self.metrics.drop(reason, n)
        if done and newest_store:
            self.metrics.lag_s = max(0.0, time.time() - newest_store)

    async def _store(self, items: list[Item], msgs: list[Msg], total: WriteResult) -> bool:
        """Write ``items`` in one transaction and ack them; if the database refuses the data, halve the set
        and try each half, so one poison message ends in the dead letters and its neighbours are stored.
        False when stopping during an outage (the messages were handed back)."""
        try:
            res = await self._write(msgs, lambda: self.storage.write_telemetry(items), refuse=True)
        except Refused as e:
            if len(items) == 1:
                log.error("database refused a telemetry batch of %s (%s); kept aside as a dead letter",
                          items[0].batch.device, e.reason)
                await self._dead_letters([(msgs[0], self._letter(msgs[0], "db_refused", e.reason, items[0].batch))])
                return True
            mid = len(items) // 2
            first = await self._store(items[:mid], msgs[:mid], total)
            return await self._store(items[mid:], msgs[mid:], total) and first
        if res is None:
            return False
        self.metrics.transactions += 1
        total.points += res.points
        total.states += res.states
        total.batches += res.batches
        total.duplicates += res.duplicates
        for reason, n in res.dropped.items():
            total.drop(reason, n)
        for m in msgs:
            await self._settle(m.ack())
        return True

    async def _dead_letters(self, letters: list[tuple[Msg, Letter]]) -> None:
        """Keep refused messages aside (and raise forged tokens as events), then terminate them."""
        rows = [x for _, x in letters]

        async def write() -> int:
            async with self.storage.pool.acquire() as conn, conn.transaction():
                await deadletter.add(conn, rows)
                await deadletter.events(conn, rows)
            return len(rows)

        if await self._write([m for m, _ in letters], write) is None:
            return
        for m, x in letters:
            self._bad(m, x.reason, x.detail)
            self.metrics.dead_letters[x.reason] = self.metrics.dead_letters.get(x.reason, 0) + 1
            await self._settle(m.term())

    async def _write(self, msgs: Sequence[Msg], op, *, refuse: bool = False):  # type: ignore[no-untyped-def]
        """Run ``op`` until it commits. Transient errors: hold the messages and retry with backoff.
        Other errors (a row the database refuses): with ``refuse``, raised at once as :class:`Refused` for the
        caller to isolate; else retried a few times, then the messages are given up (``db_rejected``)."""
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
                elif refuse and isinstance(e, asyncpg.PostgresError):
                    raise Refused(e) from e
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
        entries: list[tuple[Msg, Any]] = []  # (message, decoded Event / ConfigBackup / DeviceFacts)
        for m in msgs:
            try:
                e = DECODER.decode(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                self._bad(m, "malformed", str(err))
                await self._settle(m.term())
                continue
            known = ((isinstance(e, wire.Event) and e.v <= wire.EVENT_VERSION)
                     or (isinstance(e, wire.ConfigBackup) and e.v <= wire.CONFIG_VERSION)
                     or (isinstance(e, wire.DeviceFacts) and e.v <= wire.FACTS_VERSION))
            if not known:
                self._bad(m, "unknown_kind", f"a {type(e).__name__} v{e.v} on an event subject")
                await self._settle(m.term())
                continue
            problem = _bad_builtins(msgspec.to_builtins(e))
            if problem is not None:  # what PostgreSQL would refuse: kept aside instead of failing the fetch
                await self._dead_letters([(m, self._letter(m, "invalid", problem))])
                continue
            entries.append((m, e))
        if entries:
            await self._store_events(entries)

    async def _store_events(self, entries: list[tuple[Msg, Any]]) -> bool:
        """Write events, config backups and facts in one transaction and ack them; a message the database
        refuses is isolated by halving the set (as telemetry is), kept aside as a dead letter, and its
        neighbours are stored. False when stopping during an outage (the messages were handed back)."""
        events = [e for _, e in entries if isinstance(e, wire.Event)]
        configs = [e for _, e in entries if isinstance(e, wire.ConfigBackup)]
        facts = [e for _, e in entries if isinstance(e, wire.DeviceFacts)]
        msgs = [m for m, _ in entries]

        async def write() -> int:
            n = await self.storage.write_events(events, configs)
            return n + await self._device_state(facts, events)

        try:
            stored = await self._write(msgs, write, refuse=True)
        except Refused as e:
            if len(entries) == 1:
                log.error("database refused an event message on %s (%s); kept aside as a dead letter",
                          msgs[0].subject, e.reason)
                await self._dead_letters([(msgs[0], self._letter(msgs[0], "db_refused", e.reason))])
                return True
            mid = len(entries) // 2
            first = await self._store_events(entries[:mid])
            return await self._store_events(entries[mid:]) and first
        if stored is None:
            return False
        self.metrics.events += stored
        for m in msgs:
            await self._settle(m.ack())
        return True

    # ---- consumer statistics ---------------------------------------------------------------------

    async def _stats(self) -> None:
        while not self._stop.is_set():
            await self.check_consumers()  # pending counts, and config drift of both durable consumers
            await self._sleep(2.0)
