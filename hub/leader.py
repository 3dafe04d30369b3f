"""The fleet-work election: at most one hub holds ``swtel_hubs/fleet-work`` and runs fleet work.

The same lease mechanism as the agents' (docs/LEASES.md, docs/FLEET-WORK.md): a candidate wins by creating
the key (over a tombstone or an expiry marker too), the winner rewrites it every ``heartbeat_s`` with a
compare-and-set on the revision it last wrote (the revision is its fencing token), and the server
expires it ``presence_ttl_s`` (the bucket's max age) after the last write it received. A write that
finds another revision means the key expired and someone else won: the hub stops its work at once.

Self-fencing: the leader keeps a monotonic deadline measured from *before* its last successful write was
sent, minus ``fence_margin_s``. If no refresh succeeds before it, the hub stops its fleet work there, so
the work has stopped before the server can expire the key and let another hub start it. A graceful stop
stops the work first, then deletes the key (compare-and-set), so a follower takes over at its next poll
instead of after the TTL. Followers poll the key every ``heartbeat_s / 4``: one request each.

The election uses its own NATS connection, so its writes never queue behind telemetry on the hub's
main connection. Safety of the work itself does not rest on this alone: alert transitions are
conditional updates and maintenance holds an advisory lock, so a brief overlap is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from nats.js.errors import BucketNotFoundError

from swtel.shared import kvcas, naming, wire
from swtel.shared.natsconn import connect
from swtel.shared.settings import Settings

log = logging.getLogger("swtel.hub.leader")
GRACE_S = 5.0  # a graceful stop lets the work finish what it is doing this long, at most
RETRY_SETUP_S = 2.0
WORK_RESTART_S = 10.0


class Work(Protocol):
    async def run(self) -> None: ...

    def close(self) -> None: ...


class Election:
    """Campaigns for fleet work (``candidate``) or only watches who leads; runs ``work()`` while leading."""

    def __init__(self, settings: Settings, hub_id: str, work: Callable[[], Work], *, candidate: bool = True,
                 on_change: Callable[[Election], None] = lambda _: None) -> None:
        self.settings = settings
        self.hub_id = hub_id
        self.make_work = work
        self.candidate = candidate
        self.on_change = on_change  # called when it wins, fences or stops (metrics)
        self.incarnation = secrets.token_hex(6)
        self.ttl = settings.presence_ttl_s  # lowered to the bucket's max age if that is shorter
        self.period = settings.heartbeat_s
        self.revision: int | None = None  # our entry's revision while leading: the fencing token
        self.deadline = 0.0  # monotonic; the work may run only before it
        self.renewed_sent = 0.0  # monotonic, when the last successful write of the key was sent
        self.leader: str | None = None  # who leads, as last seen
        self.elected = 0  # times this hub won
        self.fenced = 0  # times it stopped because it could not refresh in time, or lost the key
        self.work_stopped_at = 0.0  # monotonic, when the work last stopped (tests measure the fence)
        self._work: Work | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._js: Any = None
        self._kv: Any = None

    @property
    def is_leader(self) -> bool:
        return self._task is not None

    def _value(self) -> bytes:
        return wire.encode_kv(wire.FleetLeader(hub=self.hub_id, incarnation=self.incarnation,
                                               host=socket.gethostname(), since_ns=time.time_ns()))

    # ---- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        nc, warned = None, False
        try:
            while not self._stop.is_set() and self._kv is None:
                try:
                    nc = nc or await connect(self.settings, name=f"swtel-hub-election:{self.hub_id}", long_running=True)
                    self._js = nc.jetstream(timeout=2)
                    self._kv = await self._js.key_value(naming.BUCKET_HUBS)
                    info = await self._js.stream_info(f"KV_{naming.BUCKET_HUBS}")
                    if info.config.max_age:
                        self.ttl = min(self.ttl, info.config.max_age)
                    else:  # a key that never expires would make a dead leader lead forever
                        log.error("bucket %s has no max age: not taking part in the election (run swtel nats init)",
                                  naming.BUCKET_HUBS)
                        self.candidate = False
                except Exception as e:  # noqa: BLE001 (NATS down or bucket missing: keep trying, quietly)
                    self._kv = None
                    reason = (f"bucket {naming.BUCKET_HUBS} is missing: run `swtel nats init`"
                              if isinstance(e, BucketNotFoundError) else repr(e))
                    log.log(logging.DEBUG if warned else logging.WARNING,
                            "fleet-work election not ready (%s); retrying every %gs", reason, RETRY_SETUP_S)
                    warned = True
                    await self._sleep(RETRY_SETUP_S)
            while not self._stop.is_set():
                if self._task is not None:
                    ok = await self._refresh()
                    wake = time.monotonic() + (self.period if ok else min(self.period, 0.2))
                    wake = min(wake, self.deadline) if self._task is not None else wake
                else:
                    await self._poll()
                    wake = time.monotonic() + self.period / 4
                await self._sleep(max(0.0, wake - time.monotonic()))
                if self._task is not None and time.monotonic() >= self.deadline:
                    self.fenced += 1
                    log.warning("fleet work: no refresh of the election key in time; stopping the work (self-fence)")
                    await self._end_work(grace=0.0)
        finally:
            await self._resign()
            if nc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 3)

    async def stop(self) -> None:
        self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _poll(self) -> None:
        """Follower: read the key; take it if it is free (or still ours from before a fence)."""
        try:
            sent = time.monotonic()
            msg = await kvcas.last_message(self._js, naming.BUCKET_HUBS, naming.FLEET_WORK_KEY)
            rev = None
            if msg is None or kvcas.is_tombstone(msg):
                self.leader = None
                if self.candidate and not self._stop.is_set():
                    rev = await kvcas.create(self._js, self._kv, naming.BUCKET_HUBS, naming.FLEET_WORK_KEY,
                                             self._value())
            else:
                cur = wire.leader_decoder.decode(msg.data)
                self.leader = cur.hub
                if cur.incarnation == self.incarnation and self.candidate and not self._stop.is_set():
                    rev = await kvcas.update_if(self._kv, naming.FLEET_WORK_KEY, self._value(), msg.seq)
        except Exception as e:  # noqa: BLE001 (NATS trouble or a malformed entry: look again next poll)
            log.debug("fleet-work election poll failed: %r", e)
            return
        if rev is not None:
            self._start_work(rev, sent)

    async def _refresh(self) -> bool:
        """Leader: rewrite the key at our revision. False if it failed; the work stops if the key moved."""
        assert self.revision is not None
        sent = time.monotonic()
        try:
            # never wait past the point where the write could no longer help
            rev = await asyncio.wait_for(
                kvcas.update_if(self._kv, naming.FLEET_WORK_KEY, self._value(), self.revision),
                max(0.05, self.deadline - sent))
        except Exception as e:  # noqa: BLE001 (timeouts, disconnects: all mean "not refreshed")
            log.debug("fleet-work refresh failed: %r", e)
            return False
        if rev is None:
            self.fenced += 1
            log.warning("fleet work: the election key moved (it expired and another hub won); stopping the work")
            await self._end_work(grace=0.0)
            return False
        self._renewed(rev, sent)
        return True

    def _renewed(self, rev: int, sent: float) -> None:
        self.revision = rev
        self.renewed_sent = sent
        self.deadline = sent + self.ttl - self.settings.fence_margin_s

    # ---- the work --------------------------------------------------------------------------------

    def _start_work(self, rev: int, sent: float) -> None:
        self._renewed(rev, sent)
        self.leader = self.hub_id
        self.elected += 1
        log.info("fleet work: hub %s elected (token %d)", self.hub_id, rev)
        self._work = self.make_work()
        self._task = asyncio.create_task(self._run_work(self._work), name="fleet-work")
        self.on_change(self)

    async def _run_work(self, work: Work) -> None:
        while True:
            try:
                await work.run()
                return
            except Exception:  # a bug: log it and start afresh a little later, still leading
                log.exception("fleet work failed; restarting it in %gs", WORK_RESTART_S)
            await asyncio.sleep(WORK_RESTART_S)
            work = self._work = self.make_work()

    async def _end_work(self, grace: float) -> None:
        """Stop the work: ``close()`` it and wait up to ``grace``, then cancel. Returns once it stopped."""
        task, work = self._task, self._work
        self._task = self._work = None
        self.revision = None
        if self.leader == self.hub_id:
            self.leader = None
        if task is None or work is None:
            return
        work.close()
        if grace > 0 and not task.done():
            await asyncio.wait({task}, timeout=grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self.work_stopped_at = time.monotonic()
        log.info("fleet work stopped on hub %s", self.hub_id)
        self.on_change(self)

    async def _resign(self) -> None:
        """Graceful: stop the work (bounded by the fencing deadline), then free the key for the next hub."""
        rev = self.revision
        await self._end_work(grace=max(0.0, min(GRACE_S, self.deadline - time.monotonic())))
        if rev is not None and self._kv is not None:
            try:
                await asyncio.wait_for(kvcas.delete_if(self._kv, naming.FLEET_WORK_KEY, rev), 2.0)
            except Exception as e:  # noqa: BLE001 (it expires by itself)
                log.warning("could not free the fleet-work key (it expires by itself): %r", e)
