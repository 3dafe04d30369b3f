"""The live cache: latest value, derived rate and a short history per series, fed by core NATS.

The hub subscribes to ``swtel.telemetry.>`` and ``swtel.event.>`` without JetStream: the live view wants
the newest sample, not every sample, and must never slow ingest down. Counters only grow, so the cache
turns successive readings into per-second rates here, once, rather than in every browser; a counter that
goes backwards (a reboot, a clear) starts a new baseline and yields no rate for that step.

Memory is bounded: at most ``max_series`` series (more are counted and ignored), each with a history of at
most ``history_points`` numeric points in a ring.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from swtel.shared import naming, wire

log = logging.getLogger("swtel.hub.live")

COUNTER_MARK = "/counters/"
RECENT_EVENTS = 500  # events kept for a client that opens the events page


def is_counter(path: str) -> bool:
    return COUNTER_MARK in path


class Series:
    """One path of one device. ``hist`` holds ``(ts_ms, y)`` with y the rate for counters, else the value."""

    __slots__ = ("ts", "value", "rate", "hist")

    def __init__(self, history_points: int) -> None:
        self.ts = 0
        self.value: wire.Value = None
        self.rate: float | None = None
        self.hist: deque[tuple[int, float]] | None = deque(maxlen=history_points) if history_points else None

    def update(self, path: str, value: wire.Value, ts: int) -> None:
        if is_counter(path) and isinstance(value, int | float) and isinstance(self.value, int | float):
            dt = (ts - self.ts) / 1e9
            if dt <= 0:  # a repeated or reordered reading: keep the newer one only
                return
            # A counter that went backwards was reset: new baseline, no rate for this step.
            self.rate = (value - self.value) / dt if value >= self.value else None
        self.ts, self.value = ts, value
        y = self.rate if is_counter(path) else value
        if self.hist is not None and isinstance(y, int | float) and not isinstance(y, bool):
            self.hist.append((ts // 1_000_000, y))

    def frame(self) -> list[Any]:
        """What a WebSocket frame carries for this series: ``[ts_ms, value, rate]``."""
        return [self.ts // 1_000_000, self.value, self.rate]


class DeviceLive:
    """What the live view knows of one device from its telemetry and events."""

    __slots__ = ("name", "series", "agent", "token", "last_mono", "last_ms", "samples", "event", "event_ms",
                 "event_mono", "sps", "_window")

    def __init__(self, name: str) -> None:
        self.name = name
        self.series: dict[str, Series] = {}
        self.agent = ""
        self.token = 0
        self.last_mono = 0.0  # monotonic time of the last batch (0: none yet)
        self.last_ms = 0  # wall-clock of the last batch, for display
        self.samples = 0  # total samples received
        self.event = ""  # kind of the last event
        self.event_ms = 0
        self.event_mono = 0.0
        self.sps = 0.0  # samples per second over the recent window
        self._window: deque[tuple[float, int]] = deque()

    def roll(self, now: float, window_s: float) -> None:
        """Update ``sps`` from the sample count at ``now`` and a window of earlier counts."""
        self._window.append((now, self.samples))
        while len(self._window) > 2 and now - self._window[0][0] > window_s:
            self._window.popleft()
        t0, n0 = self._window[0]
        self.sps = (self.samples - n0) / (now - t0) if now > t0 else 0.0


class Listener:
    """What the cache tells the fan-out; the default does nothing (the cache also works alone)."""

    def device_updated(self, device: str, changes: dict[str, Series]) -> None: ...

    def event(self, event: dict[str, Any]) -> None: ...


class LiveCache:
    def __init__(self, *, history_points: int = 120, max_series: int = 1_000_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.history_points = history_points
        self.max_series = max_series
        self.clock = clock
        self.devices: dict[str, DeviceLive] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self.listener: Listener = Listener()
        self.series_count = 0
        self.stats = {"batches": 0, "samples": 0, "events": 0, "malformed": 0, "newer_version": 0,
                      "series_refused": 0}

    def device(self, name: str) -> DeviceLive:
        d = self.devices.get(name)
        if d is None:
            d = self.devices[name] = DeviceLive(name)
        return d

    # ---- NATS message handlers (never raise: a bad message is counted and dropped) ------------------

    async def on_message(self, msg: Any) -> None:
        self.handle(msg.subject, msg.data)

    def handle(self, subject: str, data: bytes) -> None:
        try:
            message = wire.message_decoder.decode(data)
            if isinstance(message, wire.TelemetryBatch):
                if message.v > wire.TELEMETRY_VERSION:
                    self.stats["newer_version"] += 1
                    return
                naming.check_name(message.device)
                self.apply_batch(message)
            elif isinstance(message, wire.Event):
                if message.v > wire.EVENT_VERSION:
                    self.stats["newer_version"] += 1
                    return
                naming.check_name(message.device)
                self.apply_event(message)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as e:
            self.stats["malformed"] += 1
            log.debug("dropped a malformed message on %s: %s", subject, e)

    def apply_batch(self, batch: wire.TelemetryBatch) -> None:
        d = self.device(batch.device)
        d.agent, d.token = batch.agent, batch.token
        d.last_mono, d.last_ms = self.clock(), time.time_ns() // 1_000_000
        d.samples += len(batch.samples)
        changes: dict[str, Series] = {}
        for s in batch.samples:
            series = d.series.get(s.path)
            if series is None:
                if self.series_count >= self.max_series:
                    self.stats["series_refused"] += 1
                    continue
                series = d.series[s.path] = Series(self.history_points)
                self.series_count += 1
            series.update(s.path, s.value, s.ts)
            changes[s.path] = series
        self.stats["batches"] += 1
        self.stats["samples"] += len(batch.samples)
        self.listener.device_updated(batch.device, changes)

    def apply_event(self, ev: wire.Event) -> None:
        d = self.device(ev.device)
        if ev.kind not in ("lease_acquired", "lease_released"):  # lease moves say nothing about the session
            d.event, d.event_ms, d.event_mono = ev.kind, ev.ts // 1_000_000, self.clock()
        view = {"device": ev.device, "agent": ev.agent, "kind": ev.kind, "ts_ms": ev.ts // 1_000_000,
                "detail": ev.detail}
        self.events.append(view)
        self.stats["events"] += 1
        self.listener.event(view)

    def forget(self, device: str) -> None:
        """Drop a device removed from the inventory."""
        d = self.devices.pop(device, None)
        if d is not None:
            self.series_count -= len(d.series)

    # ---- reads for clients --------------------------------------------------------------------------

    def snapshot(self, device: str, prefixes: tuple[str, ...] = ()) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """(latest ``[ts_ms, value, rate]`` per path, history ``[[ts_ms, y], …]`` per numeric path)."""
        d = self.devices.get(device)
        if d is None:
            return {}, {}
        latest, history = {}, {}
        for path, s in d.series.items():
            if prefixes and not path.startswith(prefixes):
                continue
            latest[path] = s.frame()
            if s.hist:
                history[path] = [list(p) for p in s.hist]
        return latest, history
