"""Running one output: a loop over its durable consumer (push kinds) or an ordered consumer (scrape).

Push kinds (remote_write, influx) — for every fetch of up to ``batch`` messages:

1. decode each message with the one shared decoder (malformed or unknown ones are counted and skipped, as
   ingest does);
2. note how many stream messages were skipped since the previous first delivery: the stream dropped them
   (retention) before this output read them. They are counted as ``missed`` and recorded as an event —
   never silently;
3. encode the samples into request bodies and send each until the destination takes it (``retry`` and
   ``hold`` verdicts wait a bounded backoff, 0.5 s doubling to 30 s, and tell JetStream the messages are
   still being worked on), or refuses it for good (``reject``: counted, not retried);
4. acknowledge every message of the fetch, and only then fetch again.

So the destination gets everything at least once, in stream order, and a destination that is down holds
only this output: storage and other outputs read their own consumers. Only one hub runs a push output at a
time (the hub that holds fleet work, hub/leader.py), which keeps each series in time order at the
destination — Prometheus refuses out-of-order samples — and makes the missed count exact; its position is
JetStream's, so the hub that takes over resumes where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.errors import NotFoundError

from swtel.agent.credentials import Credentials
from swtel.shared import naming, wire
from swtel.shared.errors import SwtelError

from . import http
from ..fencing import LeaseLedger, Refusal, cutoff_ns
from ..pull import Puller
from .encode import Body, Counts, LineEncoder, RemoteWriteEncoder, TagsOf
from .mapping import Mapper
from .model import OutputDef, consumer_config
from .scrape import ScrapeStore

log = logging.getLogger("swtel.hub.outputs")
DECODER = wire.message_decoder  # the same reused decoder as ingest
FETCH_TIMEOUT_S = 1.0
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
PROGRESS_EVERY_S = 10.0
EVENTS_KEPT = 20
LEDGER_DOWN = "cannot read the lease history to fence this data"
SENT_MAX = 200_000  # devices


@dataclass
class OutputState:
    """What /metrics, /api/health and /api/outputs show of one output on this hub."""

    name: str
    kind: str
    running: bool = False  # this hub runs it now
    paused: bool = False
    status: str = "standby"  # standby (another hub runs it), ok, retrying, error, paused, stopped
    error: str = ""
    error_since: float = 0.0
    samples: int = 0  # samples delivered (accepted by the destination, or held for scraping)
    requests: int = 0
    messages: int = 0  # stream messages acknowledged
    rejected: int = 0  # samples the destination refused for good (4xx)
    retries: int = 0
    missed: int = 0  # stream messages removed by retention before this output read them
    bad_messages: int = 0  # malformed or unknown messages skipped
    lag_messages: int = 0  # in the consumer, not yet acknowledged
    lag_s: float = 0.0  # age of the oldest message not yet delivered (upper bound), as of the last delivery
    held_since: float = 0.0  # stream time of the oldest message held undelivered now (0: none held)
    oldest_pending: float = 0.0  # stream time of the consumer's oldest unacknowledged message (manager's stats)
    last_delivery: float = 0.0
    counts: Counts = field(default_factory=Counts)
    # remote_write: device → path → newest timestamp (ms) the destination accepted from this hub; kept
    # across runner restarts in this hub, bounded by SENT_MAX devices (then forgotten: a later redelivery
    # may then be refused as out of order, counted in `rejected`)
    sent: dict[str, dict[str, int]] = field(default_factory=dict)
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))

    def event(self, kind: str, detail: str, **extra: Any) -> None:
        self.events.append({"ts": time.time(), "kind": kind, "detail": detail, **extra})

    def fail(self, status: str, error: str) -> None:
        if self.status != status or self.error != error:
            self.event(status, error)
        if not self.error_since:
            self.error_since = time.time()
        self.status, self.error = status, error

    def healthy(self) -> None:
        if self.error:
            self.event("recovered", f"delivering again after: {self.error}")
        self.status, self.error, self.error_since = "ok", "", 0.0

    def lag_seconds(self) -> float:
        """The age now of the oldest message not yet delivered: held by the runner (a destination failing),
        or waiting in the consumer (no runner reads it: a missing credential, another hub's standby view)."""
        now, lag = time.time(), self.lag_s
        if self.held_since:
            lag = max(lag, now - self.held_since)
        if self.oldest_pending and self.lag_messages:
            lag = max(lag, now - self.oldest_pending)
        return max(0.0, lag)

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "running": self.running, "paused": self.paused,
            "status": self.status, "error": self.error, "error_since": self.error_since or None,
            "samples": self.samples, "requests": self.requests, "messages": self.messages,
            "rejected": self.rejected, "retries": self.retries, "missed": self.missed,
            "bad_messages": self.bad_messages, "skipped": dict(self.counts.skipped),
            "lag_messages": self.lag_messages, "lag_seconds": round(self.lag_seconds(), 3),
            "last_delivery": self.last_delivery or None, "events": list(self.events),
        }


def decode(msgs: Sequence[Msg], state: OutputState) -> list[wire.TelemetryBatch]:
    """The telemetry batches of a fetch, as ingest reads them: malformed, unknown and unstorable
    (``wire.problems``) messages are counted and skipped."""
    out = []
    for m in msgs:
        try:
            b = DECODER.decode(m.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            state.bad_messages += 1
            continue
        if not isinstance(b, wire.TelemetryBatch) or b.v > wire.TELEMETRY_VERSION or wire.problems(b) is not None:
            state.bad_messages += 1
            continue
        try:
            wire.columnar(b)  # v1 samples into columns: the fence and the encoders read one form
        except ValueError:
            state.bad_messages += 1
            continue
        out.append(b)
    return out


def within(b: wire.TelemetryBatch, cutoff: int) -> wire.TelemetryBatch:
    """``b`` (columns) without the samples stamped at or after ``cutoff`` (ns), compared in µs as storage
    does (hub/storage/base.py ``_rows``). A run shares one timestamp, so runs are kept or cut whole. The one
    place outputs read samples for fencing."""
    limit = cutoff // 1000
    if all(t // 1000 < limit for t in b.times):
        return b
    paths: list[str] = []
    values: list[wire.Value] = []
    times: list[int] = []
    runs: list[int] = []
    i = 0
    for t, n in zip(b.times, b.runs):
        if t // 1000 < limit:
            paths += b.paths[i:i + n]
            values += b.values[i:i + n]
            times.append(t)
            runs.append(n)
        i += n
    return msgspec.structs.replace(b, paths=paths, values=values, times=times, runs=runs)


async def admit(batches: list[wire.TelemetryBatch], ledger: LeaseLedger, grace_s: float,
                state: OutputState) -> list[wire.TelemetryBatch]:
    """The batches and samples ingest stores, by the same verdicts (hub/fencing.py): a batch whose token is
    not a genuine lease of its device and agent is skipped (counted by the refusal's reason); a genuine
    one goes out whenever it arrives, without the samples stamped after its holder's tenure ended
    (``after_tenure``)."""
    if not batches:
        return batches
    verdicts = await ledger.verdicts({(b.device, b.agent, b.token) for b in batches})
    out = []
    skip = state.counts.skip
    for b in batches:
        v = verdicts[(b.device, b.agent, b.token)]
        if isinstance(v, Refusal):
            skip(v.reason, wire.count(b))
            continue
        cut = cutoff_ns(v, grace_s)
        if cut is not None:
            kept = within(b, cut)
            if wire.count(kept) != wire.count(b):
                skip("after_tenure", wire.count(b) - wire.count(kept))
            b = kept
        out.append(b)
    return out


@dataclass
class Fencing:
    """The hub's lease ledger (shared with ingest) and its grace, as one runner argument."""

    ledger: LeaseLedger
    grace_s: float

    async def admit(self, batches: list[wire.TelemetryBatch], state: OutputState,
                    stop: asyncio.Event) -> list[wire.TelemetryBatch]:
        """:func:`admit`, retried with backoff while the lease history cannot be read (NATS or PostgreSQL
        down): the messages are held meanwhile, as ingest holds them. Empty once ``stop`` is set."""
        delay = BACKOFF_MIN_S
        while True:
            try:
                out = await admit(batches, self.ledger, self.grace_s, state)
                if state.error.startswith(LEDGER_DOWN):
                    state.healthy()
                return out
            except (NatsError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                state.fail("retrying", f"{LEDGER_DOWN}: {e!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return []
            delay = min(delay * 2, BACKOFF_MAX_S)


class _Stop(Exception):
    pass


async def _drop(sub: Puller) -> None:
    with contextlib.suppress(Exception):  # the connection may be gone: nothing to clean then
        await sub.unsubscribe()


class PushRunner:
    def __init__(self, nc: NATS, d: OutputDef, state: OutputState, tags_of: TagsOf, creds: Credentials,
                 fencing: Fencing) -> None:
        self.nc = nc
        self.fencing = fencing
        self.js = nc.jetstream(timeout=5)
        self.d = d
        self.state = state
        self.tags_of = tags_of
        self.creds = creds
        mapper = Mapper(d)
        self.encoder = (RemoteWriteEncoder if d.kind == "remote_write" else LineEncoder)(mapper, state.counts)
        self._stop = asyncio.Event()
        self.watermark = 0  # highest stream sequence delivered to this output for the first time
        self.holding: list[Msg] = []  # messages fetched and not yet acknowledged

    def close(self) -> None:
        self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _url_and_headers(self) -> tuple[str, dict[str, str]]:
        d = self.d
        headers = http.auth_header(d, self.creds)
        if d.kind == "remote_write":
            headers.update({"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                            "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "switch-telemetry"})
            return d.url, headers
        headers.update({"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"})
        base = d.url.rstrip("/")
        if d.influx_version == 2:
            q = httpx.QueryParams({"org": d.org, "bucket": d.database, "precision": "ns"})
            return f"{base}/api/v2/write?{q}", headers
        return f"{base}/write?{httpx.QueryParams({'db': d.database, 'precision': 'ns'})}", headers

    async def run(self) -> None:
        self.state.running = True
        try:
            await self._run()
        finally:
            self.state.running = False
            self.state.held_since = 0.0
            if self.holding:  # stopping mid-retry: hand the messages back at once
                for m in self.holding:
                    with contextlib.suppress(Exception):
                        await m.nak()
                self.holding = []

    async def _run(self) -> None:
        try:
            url, headers = self._url_and_headers()
        except SwtelError as e:
            self.state.fail("error", str(e))
            await self._stop.wait()
            return
        sub = None
        idle = 0
        async with http.client(self.d) as client:
            while not self._stop.is_set():
                try:
                    if sub is None:
                        sub = await self._subscribe()
                    msgs = await sub.fetch(self.d.batch, timeout=FETCH_TIMEOUT_S)
                except NatsTimeout:
                    if self.state.status in ("standby", "stopped"):
                        self.state.healthy()
                    idle += 1
                    # nats.py issue 504: a pull subscription may not recover after a server restart
                    if idle >= 5 and self.state.lag_messages > 0 and sub is not None:
                        await _drop(sub)
                        sub, idle = None, 0
                    continue
                except (NatsError, OSError) as e:
                    log.debug("output %s: fetch failed (%r); resubscribing", self.d.name, e)
                    if sub is not None:
                        await _drop(sub)
                    sub = None
                    await self._sleep(0.5)
                    continue
                idle = 0
                if not msgs:
                    continue
                if self._stop.is_set():  # stopped while fetching: hand them back for the next runner
                    for m in msgs:
                        with contextlib.suppress(NatsError, OSError):
                            await m.nak()
                    break
                try:
                    await self._deliver(msgs, client, url, headers)
                except _Stop:
                    break
            if sub is not None:  # messages the server sends it from now on come back after the ack wait
                await _drop(sub)

    async def _subscribe(self) -> Puller:
        # `swtel output add` (admin) creates the durable consumer; a hub only binds to it. Its NATS user may
        # not create consumers other than its own two (nats/permissions.conf), so it creates one only when
        # it is missing (where the credential allows it, e.g. development without permissions).
        try:
            info = await self.js.consumer_info(naming.STREAM_TELEMETRY, self.d.consumer)
        except NotFoundError:
            try:
                await self.js.add_consumer(naming.STREAM_TELEMETRY, config=consumer_config(self.d))
            except NatsError as e:  # created meanwhile with other options (older version): use it
                if "already" not in str(e).lower() and getattr(e, "err_code", None) not in (10013, 10148):
                    raise
            info = await self.js.consumer_info(naming.STREAM_TELEMETRY, self.d.consumer)
        self.watermark = info.delivered.stream_seq or 0 if info.delivered else 0
        return await Puller(self.nc, naming.STREAM_TELEMETRY, self.d.consumer).start()

    async def _note_gaps(self, msgs: Sequence[Msg]) -> None:
        """First deliveries come in stream order. A gap before one is either messages the stream dropped
        (retention) or messages first delivered to a runner that stopped before reading them (they come
        back as redeliveries). Only those below the stream's first sequence are gone: they are counted."""
        for m in msgs:
            md = m.metadata
            if md.num_delivered != 1:
                continue
            seq = md.sequence.stream
            if seq > self.watermark + 1:
                lo = self.watermark + 1
                first = await self._first_seq()
                hi = seq - 1 if first is None else min(seq - 1, first - 1)
                gap = hi - lo + 1
                if gap > 0:
                    self.state.missed += gap
                    sure = "" if first is not None else " (the stream did not answer: not confirmed)"
                    self.state.event("missed", f"{gap} messages left the stream (retention) before this output "
                                     f"read them{sure}", count=gap, first_seq=lo, last_seq=hi)
                    log.error("output %s: %d telemetry messages (stream sequences %d-%d) were removed by the "
                              "stream's retention before this output read them%s", self.d.name, gap, lo, hi, sure)
            self.watermark = max(self.watermark, seq)

    async def _first_seq(self) -> int | None:
        for _ in range(3):
            try:
                return int((await self.js.stream_info(naming.STREAM_TELEMETRY)).state.first_seq)
            except (NatsError, OSError):
                await asyncio.sleep(0.2)
        return None

    async def _deliver(self, msgs: list[Msg], client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.holding = msgs
        self.state.held_since = msgs[0].metadata.timestamp.timestamp()
        await self._note_gaps(msgs)
        batches = await self.fencing.admit(decode(msgs, self.state), self.state, self._stop)
        if self._stop.is_set():
            raise _Stop
        if not batches:
            bodies: list[Body] = []
        elif isinstance(self.encoder, RemoteWriteEncoder):
            bodies = self.encoder.encode(batches, self.tags_of, self.state.sent)
        else:
            bodies = self.encoder.encode(batches, self.tags_of)
        await self._send_shards(bodies, client, url, headers)
        last = msgs[-1]
        for m in msgs:
            with contextlib.suppress(NatsError, OSError):  # a lost ack means a redelivery: at least once
                await m.ack()
        self.holding = []
        st = self.state
        st.messages += len(msgs)
        st.last_delivery = time.time()
        st.lag_s = max(0.0, time.time() - last.metadata.timestamp.timestamp())
        st.held_since = 0.0

    async def _send_shards(self, bodies: list[Body], client: httpx.AsyncClient, url: str,
                           headers: dict[str, str]) -> None:
        """Each shard's bodies in order (a series is in one shard: its samples stay in time order at the
        destination), the shards concurrently; returns when every body was delivered or refused for good."""
        shards: dict[int, list[Body]] = {}
        for body in bodies:
            shards.setdefault(body.shard, []).append(body)
        if len(shards) <= 1:
            for body in bodies:
                await self._send(body, client, url, headers)
            return

        async def one(shard: list[Body]) -> None:
            for body in shard:
                await self._send(body, client, url, headers)

        try:
            async with asyncio.TaskGroup() as tg:
                for shard in shards.values():
                    tg.create_task(one(shard))
        except* _Stop:
            raise _Stop from None

    async def _send(self, body: Body, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        delay = BACKOFF_MIN_S
        progress_at = time.monotonic() + PROGRESS_EVERY_S
        st = self.state
        while True:
            res = await http.post(client, url, body.data, headers)
            st.requests += 1
            if res.verdict == "ok":
                st.samples += body.samples
                if body.marks:
                    if len(st.sent) > SENT_MAX:
                        st.sent.clear()
                    for dev, marks in body.marks.items():
                        got = st.sent.get(dev)
                        if got is None:
                            st.sent[dev] = dict(marks)
                        else:
                            got.update(marks)
                if st.status != "ok":
                    st.healthy()
                return
            if res.verdict == "reject":
                st.rejected += body.samples
                st.event("rejected", res.detail, samples=body.samples)
                log.warning("output %s: destination refused %d samples (%s); not retried", self.d.name,
                            body.samples, res.detail)
                return
            st.retries += 1
            kind = "error" if res.verdict == "hold" else "retrying"
            if st.status != kind:
                log.warning("output %s: %s; holding %d messages and retrying with backoff", self.d.name,
                            res.detail, len(self.holding))
            st.fail(kind, res.detail)
            st.lag_s = max(0.0, time.time() - st.held_since)
            if self._stop.is_set():
                raise _Stop
            if time.monotonic() >= progress_at:  # still working on them: no redelivery meanwhile
                progress_at = time.monotonic() + PROGRESS_EVERY_S
                for m in self.holding:
                    with contextlib.suppress(NatsError, OSError):
                        await m.in_progress()
            await self._sleep(delay)
            if self._stop.is_set():
                raise _Stop
            delay = min(delay * 2, BACKOFF_MAX_S)


class ScrapeRunner:
    """Keeps the newest value per series from an ordered consumer (newest batch per subject, then live)."""

    def __init__(self, nc: NATS, d: OutputDef, state: OutputState, tags_of: TagsOf, fencing: Fencing) -> None:
        self.nc = nc
        self.fencing = fencing
        self.d = d
        self.state = state
        self.tags_of = tags_of
        self.store = ScrapeStore(Mapper(d), state.counts, d.max_series)
        self._stop = asyncio.Event()

    def close(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        js = self.nc.jetstream(timeout=5)
        self.state.running = True
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=10_000)

        async def cb(m: Msg) -> None:
            await queue.put(m)

        sub = None
        try:
            while not self._stop.is_set():
                try:
                    sub = await js.subscribe(naming.TELEMETRY_ALL, stream=naming.STREAM_TELEMETRY, cb=cb,
                                             ordered_consumer=True, deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                                             pending_msgs_limit=100_000)
                    break
                except (NatsError, OSError) as e:
                    self.state.fail("retrying", f"cannot follow the telemetry stream: {e!r}")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 2.0)
            self.state.healthy()
            stop = asyncio.ensure_future(self._stop.wait())
            try:
                while not self._stop.is_set():
                    get = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if get not in done:
                        get.cancel()
                        break
                    msgs = [get.result()]
                    while not queue.empty() and len(msgs) < 1000:
                        msgs.append(queue.get_nowait())
                    batches = await self.fencing.admit(decode(msgs, self.state), self.state, self._stop)
                    n = self.store.update(batches, self.tags_of)
                    self.state.samples += n
                    self.state.messages += len(msgs)
                    self.state.last_delivery = time.time()
                    self.state.lag_s = max(0.0, time.time() - msgs[-1].metadata.timestamp.timestamp())
            finally:
                stop.cancel()
        finally:
            self.state.running = False
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()


Runner = PushRunner | ScrapeRunner
MakeRunner = Callable[[OutputDef, OutputState], Runner]
