"""The agent's local view of the three buckets, kept current by KV watchers.

Each bucket has one watcher task. A watcher delivers the current values, a ``None`` marking "initial values
done", then live changes; the initial values are gathered into a fresh map and swapped in at once, so the
agent never acts on half a picture. Watchers are re-created with backoff when they fail, when the
connection comes back (a watcher can go silent for ~20 s after a server restart, nats.py issue 510), and
when the agent stops hearing its own heartbeats through the agents watcher (the watch pipeline is stale).
Malformed values are counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from nats.js.kv import KeyValue

from swtel.shared import naming, wire

log = logging.getLogger("swtel.agent.view")


@dataclass
class LeaseEntry:
    lease: wire.Lease | None  # None: a tombstone (deleted, purged or expired), kept for its revision
    revision: int


@dataclass
class AgentEntry:
    presence: wire.AgentPresence
    first_seen: float  # monotonic, when this incarnation was first seen (for the handover settle period)
    last_seen: float  # monotonic, when any write of it was last seen


@dataclass
class View:
    devices: dict[str, tuple[wire.Device, int]] = field(default_factory=dict)
    agents: dict[str, AgentEntry] = field(default_factory=dict)
    leases: dict[str, LeaseEntry] = field(default_factory=dict)
    malformed: int = 0
    ready: dict[str, bool] = field(default_factory=lambda: {"devices": False, "agents": False, "leases": False})

    # --- applying entries -------------------------------------------------------------------------------

    def apply_device(self, target: dict, entry: KeyValue.Entry) -> str | None:
        name = self._name(entry.key)
        if name is None:
            return None
        if entry.operation is not None or not entry.value:
            target.pop(name, None)
            return name
        try:
            dev = wire.device_decoder.decode(entry.value)
        except msgspec.DecodeError:
            self.malformed += 1
            return None
        target[dev.name] = (dev, entry.revision or 0)
        return dev.name

    def apply_agent(self, target: dict, entry: KeyValue.Entry) -> str | None:
        name = self._name(entry.key)
        if name is None:
            return None
        if entry.operation is not None or not entry.value:
            target.pop(name, None)
            return name
        try:
            p = wire.presence_decoder.decode(entry.value)
        except msgspec.DecodeError:
            self.malformed += 1
            return None
        now = time.monotonic()
        old = target.get(p.id) or self.agents.get(p.id)
        first = old.first_seen if old and old.presence.incarnation == p.incarnation else now
        target[p.id] = AgentEntry(p, first, now)
        return p.id

    def apply_lease(self, target: dict, entry: KeyValue.Entry) -> str | None:
        name = self._name(entry.key)
        if name is None:
            return None
        rev = entry.revision or 0
        old = target.get(name)
        if old is not None and old.revision > rev:
            return None  # an older event after a newer one we wrote ourselves
        if entry.operation is not None or not entry.value:
            target[name] = LeaseEntry(None, rev)
            return name
        try:
            lease = wire.lease_decoder.decode(entry.value)
        except msgspec.DecodeError:
            self.malformed += 1
            return None
        target[name] = LeaseEntry(lease, rev)
        return name

    def _name(self, key: str) -> str | None:
        try:
            return naming.decode_name(key)
        except ValueError:
            self.malformed += 1
            return None


Apply = Callable[[dict, KeyValue.Entry], str | None]


class Watcher:
    """Keeps one map of the view current; calls ``changed(keys)`` with what changed (``None``: everything)."""

    def __init__(self, name: str, kv: KeyValue, target: Callable[[], dict], swap: Callable[[dict], None],
                 apply: Apply, changed: Callable[[set[str] | None], None], view: View) -> None:
        self.name = name
        self.kv = kv
        self.target = target
        self.swap = swap
        self.apply = apply
        self.changed = changed
        self.view = view
        self.restarts = 0
        self.last_event = time.monotonic()
        self._current: asyncio.Task[None] | None = None
        self._restart_requested = False

    def restart(self) -> None:
        """Re-create the watcher now (after a reconnect, or when it seems stale)."""
        if self._current is not None and not self._current.done():
            self._restart_requested = True
            self._current.cancel()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            self._current = asyncio.create_task(self._watch_once())
            try:
                await self._current
                backoff = 0.2
            except asyncio.CancelledError:
                if not self._restart_requested:
                    self._current.cancel()
                    raise
                self._restart_requested = False
                log.info("watcher %s re-created", self.name)
            except Exception as e:
                log.warning("watcher %s failed, re-creating in %.1fs: %r", self.name, backoff, e)
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, 5.0)
            self.restarts += 1

    async def _watch_once(self) -> None:
        watcher = await asyncio.wait_for(self.kv.watchall(), 15.0)
        queue = watcher._updates  # drained in batches: one wake-up per burst, not per entry
        fresh: dict = {}
        initial = True
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < 2048:
                    try:
                        batch.append(queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                self.last_event = time.monotonic()
                keys: set[str] = set()
                for entry in batch:
                    if entry is watcher.STOP_ITER:
                        raise RuntimeError("watcher stopped")
                    if entry is None:
                        if initial:
                            initial = False
                            self.swap(fresh)
                            self.view.ready[self.name] = True
                            self.changed(None)
                        continue
                    if initial:
                        self.apply(fresh, entry)
                    else:
                        key = self.apply(self.target(), entry)
                        if key is not None:
                            keys.add(key)
                if keys:
                    self.changed(keys)
        finally:
            try:
                await watcher.stop()
            except Exception:
                pass
