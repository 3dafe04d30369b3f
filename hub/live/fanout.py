"""Fan-out to WebSocket clients: per-client subscriptions, coalesced frames, a bound on slow clients.

A client's outbox is not a queue of frames but *merged state*: the newest value per (device, path), the
set of fleet rows that changed, a flag for the agents view and a short ring of events. Its size is bounded
by what the client watches, never by how fast telemetry arrives or how slowly the client reads; a newer
value simply replaces an unsent older one (merged frames). A frame goes out at most once per
``frame_interval`` (leading edge: an idle client gets an update at once). If the client does not take a
frame within ``send_timeout`` (its TCP window and the server's write buffer are full), it is disconnected.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from swtel.shared import naming
from swtel.shared.errors import InvalidInput

from .cache import Listener, LiveCache, Series
from .fleet import STATUSES, FleetListener, FleetState

PENDING_EVENTS = 200  # events held for one client between frames; older ones are dropped (and counted)
SWEEP_S = 1.0  # how often time-based status changes (stale devices) and samples/s are recomputed
SPS_WINDOW_S = 30.0
MAX_PATH_IDS = 100_000  # per connection; past it the path table starts over (``paths_reset``)

_encoder = msgspec.json.Encoder()


class SlowClient(Exception):
    """The client did not take a frame within the send timeout."""


class Client:
    def __init__(self, hub: Fanout, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.hub = hub
        self._send = send
        self.watched: dict[str, tuple[str, ...]] = {}  # device → path prefixes (empty: all)
        self.fleet = self.agents = self.events = False
        self.leases_dirty = False
        self.pending: dict[str, dict[str, Series]] = {}  # device → path → series (read when the frame is built)
        self.snapshots: dict[str, Any] = {}  # device → full snapshot owed after a watch
        self.fleet_rows: set[str] = set()
        self.fleet_full = False
        self.agents_dirty = False
        self.pending_events: deque[dict[str, Any]] = deque(maxlen=PENDING_EVENTS)
        self.errors: list[str] = []
        self.events_reset = False
        self.path_ids: dict[str, int] = {}
        self.wake = asyncio.Event()
        self.frames = 0
        self.merged = 0  # updates that replaced an unsent older value
        self.events_dropped = 0

    # ---- what the client asked for -----------------------------------------------------------------

    def apply(self, request: dict[str, Any]) -> None:
        """One client request: ``{"op": "watch"|"unwatch", "devices": [...], "paths": [...], "history": …}`` or
        ``{"op": "fleet"|"agents"|"events", "on": bool}``. Bad requests raise :class:`InvalidInput`."""
        op = request.get("op")
        if op in ("watch", "unwatch"):
            devices = request.get("devices")
            paths = request.get("paths") or []
            if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
                raise InvalidInput("devices must be a list of device names")
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise InvalidInput("paths must be a list of path prefixes")
            history = request.get("history", False)
            if not (isinstance(history, bool) or (isinstance(history, list) and all(isinstance(h, str) for h in history))):
                raise InvalidInput("history must be true, false or a list of path endings")
            for name in devices:
                naming.check_name(name)
            if op == "watch":
                self.watch(devices, tuple(paths), history if isinstance(history, bool) else tuple(history))
            else:
                for name in devices:
                    self.hub.unwatch(self, name)
        elif op in ("fleet", "agents", "events"):
            on = bool(request.get("on", True))
            setattr(self, op, on)
            if on:
                self.fleet_full |= op == "fleet"
                if op == "agents":
                    self.agents_dirty = self.leases_dirty = True
                if op == "events":  # replay the recent ones; the frame says so, so a page can start over
                    self.pending_events.clear()
                    self.pending_events.extend(self.hub.cache.events)
                    self.events_reset = True
                self.wake.set()
        else:
            raise InvalidInput(f"unknown op {op!r}; use watch, unwatch, fleet, agents or events")

    def watch(self, devices: list[str], prefixes: tuple[str, ...], history: tuple[str, ...] | bool = False) -> None:
        limit = self.hub.max_devices_per_client
        if len(set(self.watched) | set(devices)) > limit:
            raise InvalidInput(f"a client may watch at most {limit} devices at once")
        for name in devices:
            self.hub.watch(self, name, prefixes)
            latest, past = self.hub.cache.snapshot(name, prefixes, history)
            self.snapshots[name] = {"series": latest, "history": past}
            self.pending.pop(name, None)  # the snapshot supersedes anything older
        self.wake.set()

    # ---- merging (called by the fan-out for every change) ------------------------------------------

    def merge(self, device: str, changes: dict[str, Series]) -> None:
        prefixes = self.watched.get(device, ())
        slot = self.pending.setdefault(device, {})
        for path, series in changes.items():
            if prefixes and not path.startswith(prefixes):
                continue
            if path in slot:
                self.merged += 1
            slot[path] = series
        if not slot:
            del self.pending[device]
        self.wake.set()

    def add_event(self, event: dict[str, Any]) -> None:
        if len(self.pending_events) == self.pending_events.maxlen:
            self.events_dropped += 1
        self.pending_events.append(event)
        self.wake.set()

    # ---- sending -----------------------------------------------------------------------------------

    def take_frame(self) -> bytes | None:
        """Everything owed, as one JSON frame; ``None`` when nothing is."""
        now = self.hub.clock()
        frame: dict[str, Any] = {"type": "frame", "now_ms": time.time_ns() // 1_000_000}
        if len(self.path_ids) > MAX_PATH_IDS:  # a client that browsed many devices: start the table over
            self.path_ids = {}
            frame["paths_reset"] = True
        new_paths: list[list[Any]] = []
        if self.snapshots:
            frame["snapshots"] = {
                d: {"series": [[self._pid(p, new_paths), *v] for p, v in snap["series"].items()],
                    "history": [[self._pid(p, new_paths), h] for p, h in snap["history"].items()]}
                for d, snap in self.snapshots.items()}
            self.snapshots = {}
        if self.pending:  # the newest values now: merged updates went out as one
            frame["devices"] = {d: self._rows(slot, new_paths) for d, slot in self.pending.items()}
            self.pending = {}
        if new_paths:
            frame["paths"] = new_paths
        if self.fleet and (self.fleet_full or self.fleet_rows):
            fleet = self.hub.fleet
            names = fleet.devices.keys() if self.fleet_full else self.fleet_rows
            rows, removed = [], []
            for name in names:
                (rows.append(fleet.row(name, now)) if name in fleet.devices else removed.append(name))
            frame["fleet"] = {"full": self.fleet_full, "rows": rows, "removed": removed,
                              "counts": self.hub.counts(now)}
            self.fleet_full, self.fleet_rows = False, set()
        if self.agents and self.agents_dirty:
            frame["agents"] = {"agents": self.hub.fleet.agents_view(now)}
            if self.leases_dirty:
                frame["agents"]["leases"] = self.hub.fleet.lease_map()
            self.agents_dirty = self.leases_dirty = False
        if self.events_reset:
            frame["events_reset"], self.events_reset = True, False
        if self.events and self.pending_events:
            frame["events"] = list(self.pending_events)
            self.pending_events.clear()
        if self.events_dropped:
            frame["events_dropped"], self.events_dropped = self.events_dropped, 0
        if self.errors:
            frame["errors"], self.errors = self.errors, []
        return _encoder.encode(frame) if len(frame) > 2 else None

    def _rows(self, slot: dict[str, Series], new_paths: list[list[Any]]) -> list[list[Any]]:
        ids = self.path_ids
        rows = []
        for path, s in slot.items():  # the hot loop of a frame: kept flat
            pid = ids.get(path)
            if pid is None:
                pid = self._pid(path, new_paths)
            rows.append([pid, s.ts // 1_000_000, s.value, s.rate if s.counter else None])
        return rows

    def _pid(self, path: str, new_paths: list[list[Any]]) -> int:
        """This connection's number for ``path``; a path's text is sent once, in the frame that first uses it."""
        pid = self.path_ids.get(path)
        if pid is None:
            pid = self.path_ids[path] = len(self.path_ids)
            new_paths.append([pid, path])
        return pid

    async def run(self) -> None:
        """Send coalesced frames until the connection ends; raise :class:`SlowClient` past the bound."""
        loop = asyncio.get_running_loop()
        next_at = 0.0
        while True:
            await self.wake.wait()
            delay = next_at - loop.time()
            if delay > 0:  # rate limit: changes keep merging meanwhile
                await asyncio.sleep(delay)
            self.wake.clear()
            data = self.take_frame()
            if data is None:
                continue
            next_at = loop.time() + self.hub.frame_interval
            try:
                await asyncio.wait_for(self._send(data), self.hub.send_timeout)
            except TimeoutError:
                raise SlowClient(f"a frame was not taken within {self.hub.send_timeout}s") from None
            self.frames += 1


class Fanout(Listener, FleetListener):
    """Routes cache and fleet changes to the clients that want them."""

    def __init__(self, cache: LiveCache, fleet: FleetState, *, frame_interval: float = 0.2,
                 send_timeout: float = 5.0, max_devices_per_client: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache, self.fleet, self.clock = cache, fleet, clock
        self.frame_interval = frame_interval
        self.send_timeout = send_timeout
        self.max_devices_per_client = max_devices_per_client
        self.clients: set[Client] = set()
        self.by_device: dict[str, set[Client]] = {}
        self._statuses: dict[str, str] = {}
        self._counts: tuple[float, dict[str, int]] = (-1.0, {})
        self.stats = {"connected": 0, "disconnected_slow": 0, "refused_origin": 0}
        cache.listener = self
        fleet.listener = self

    def add(self, send: Callable[[bytes], Awaitable[None]]) -> Client:
        client = Client(self, send)
        self.clients.add(client)
        self.stats["connected"] += 1
        return client

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        for name in list(client.watched):
            self.unwatch(client, name)

    def watch(self, client: Client, device: str, prefixes: tuple[str, ...]) -> None:
        client.watched[device] = prefixes
        self.by_device.setdefault(device, set()).add(client)

    def unwatch(self, client: Client, device: str) -> None:
        client.watched.pop(device, None)
        client.pending.pop(device, None)
        watchers = self.by_device.get(device)
        if watchers is not None:
            watchers.discard(client)
            if not watchers:
                del self.by_device[device]

    # ---- listener callbacks ------------------------------------------------------------------------

    def wants(self, device: str) -> bool:
        return device in self.by_device

    def device_updated(self, device: str, changes: dict[str, Series]) -> None:
        for client in self.by_device.get(device, ()):
            client.merge(device, changes)
        self._fleet_dirty((device,))

    def event(self, event: dict[str, Any]) -> None:
        for client in self.clients:
            if client.events:
                client.add_event(event)
        self._fleet_dirty((event["device"],))

    def devices_changed(self, names: list[str]) -> None:
        self._fleet_dirty(names)

    def agents_changed(self) -> None:
        for client in self.clients:
            if client.agents:
                client.agents_dirty = client.leases_dirty = True
                client.wake.set()

    def _fleet_dirty(self, names: Any) -> None:
        for client in self.clients:
            if client.fleet:
                client.fleet_rows.update(names)
                client.wake.set()

    # ---- periodic work -----------------------------------------------------------------------------

    def counts(self, now: float) -> dict[str, int]:
        """Devices per status (computed at most once per sweep for all clients)."""
        if now - self._counts[0] < SWEEP_S / 2:
            return self._counts[1]
        counts = dict.fromkeys(STATUSES, 0)
        for name in self.fleet.devices:
            counts[self.fleet.status(name, now)] += 1
        counts["total"] = len(self.fleet.devices)
        self._counts = (now, counts)
        return counts

    def sweep(self) -> None:
        """Recompute samples/s, and tell fleet clients about rows whose status changed with time alone."""
        now = self.clock()
        for d in self.cache.devices.values():
            d.roll(now, SPS_WINDOW_S)
        changed = []
        for name in self.fleet.devices:
            status = self.fleet.status(name, now)
            if self._statuses.get(name) != status:
                self._statuses[name] = status
                changed.append(name)
        for gone in set(self._statuses) - set(self.fleet.devices):
            del self._statuses[gone]
        if changed:
            self._fleet_dirty(changed)
        if self.fleet.agents:  # heartbeat ages move every second
            for client in self.clients:
                if client.agents:
                    client.agents_dirty = True
                    client.wake.set()

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            self.sweep()


def expand_frame(frame: dict[str, Any], paths: dict[int, str]) -> dict[str, Any]:
    """For Python clients (tests, the bench): resolve path numbers in place, as the dashboard's live.js
    does. ``paths`` is the connection's table, kept between frames (start a new one per connection)."""
    if frame.get("paths_reset"):
        paths.clear()
    paths.update((pid, path) for pid, path in frame.get("paths", ()))
    if "devices" in frame:
        frame["devices"] = {d: {paths[pid]: v for pid, *v in rows} for d, rows in frame["devices"].items()}
    for snap in frame.get("snapshots", {}).values():
        snap["series"] = {paths[pid]: v for pid, *v in snap["series"]}
        snap["history"] = {paths[pid]: h for pid, h in snap["history"]}
    return frame
