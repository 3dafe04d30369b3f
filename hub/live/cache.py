"""The live cache: latest value, derived rate and a short history per series, fed by core NATS.

The hub subscribes to ``swtel.telemetry.>`` and ``swtel.event.>`` without JetStream: the live view wants
the newest sample, not every sample, and must never slow ingest down. Counters only grow, so the cache
turns successive readings into per-second rates here, once, rather than in every browser; a counter that
goes backwards (a reboot, a clear) starts a new baseline and yields no rate for that step.

Memory is bounded: at most ``max_series`` series (more are counted and ignored); the first
``history_series`` of them also keep a ring of at most ``history_points`` numeric points (16 bytes each).
"""

from __future__ import annotations

import logging
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
from swtel.shared import naming, wire

log = logging.getLogger("swtel.hub.live")

COUNTER_MARK = "/counters/"
RECENT_EVENTS = 500  # events kept for a client that opens the events page


class Series:
    """One path of one device: the latest two readings (a counter's rate is derived from them when read,
    so ingest stays cheap) and an optional ring of raw ``(ts, value)`` readings in a flat ``array('d')``
    (16 bytes a point) that wraps at ``hpos``. Series past the history budget keep no ring."""

    __slots__ = ("ts", "value", "pts", "pvalue", "counter", "hist", "hpos", "cap")

    def __init__(self, path: str, history_points: int) -> None:
        self.ts = self.pts = 0
        self.value: wire.Value = None
        self.pvalue: wire.Value = None
        self.counter = COUNTER_MARK in path
        self.cap = 2 * history_points
        self.hist: array[float] | None = array("d") if history_points else None
        self.hpos = 0

    def update(self, value: wire.Value, ts: int) -> None:
        if ts <= self.ts:  # a repeated or reordered reading: keep the newer one
            return
        self.pts, self.pvalue, self.ts, self.value = self.ts, self.value, ts, value
        hist = self.hist
        if hist is not None and (value.__class__ is int or value.__class__ is float):  # not bool, not str
            if len(hist) < self.cap:
                hist.append(ts)  # ns as a double: ~100 ns precision, plenty for charts
                hist.append(value)  # type: ignore[arg-type]
            else:
                hist[self.hpos] = ts
                hist[self.hpos + 1] = value  # type: ignore[assignment]
                self.hpos = (self.hpos + 2) % self.cap

    @property
    def rate(self) -> float | None:
        """Per second, for counters; ``None`` for the first reading and across a reset (value went down)."""
        if self.counter and self.pts:
            return _rate(self.pvalue, self.value, self.pts, self.ts)
        return None

    def history(self) -> list[list[float]]:
        """``[[ts_ms, y], …]``, y the value, or for counters the rate between successive readings."""
        h = self.hist
        if not h:
            return []
        flat = h[self.hpos:] + h[: self.hpos]
        if not self.counter:
            return [[int(flat[i] // 1e6), flat[i + 1]] for i in range(0, len(flat), 2)]
        out = []
        for i in range(2, len(flat), 2):
            r = _rate(flat[i - 1], flat[i + 1], flat[i - 2], flat[i])
            if r is not None:
                out.append([int(flat[i] // 1e6), r])
        return out

    def frame(self) -> list[Any]:
        """What a WebSocket frame carries for this series: ``[ts_ms, value, rate]``."""
        return [self.ts // 1_000_000, self.value, self.rate]


def _rate(v0: Any, v1: Any, t0: float, t1: float) -> float | None:
    # A counter that went backwards was reset (reboot, clear): new baseline, no rate for this step.
    try:
        return (v1 - v0) * 1e9 / (t1 - t0) if v1 >= v0 and t1 > t0 else None
    except TypeError:  # not numbers
        return None


class DeviceLive:
    """What the live view knows of one device from its telemetry and events."""

    __slots__ = ("name", "series", "agent", "token", "last_mono", "last_ms", "samples", "event", "event_ms",
                 "event_mono", "sps", "_window", "down")

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
        self.down = False  # the agent said device_down (after N failed attempts), not yet device_up/session_up
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

    def wants(self, device: str) -> bool:
        """Whether anyone watches ``device`` (else the cache does not collect the changed series)."""
        return False

    def device_updated(self, device: str, changes: dict[str, Series]) -> None: ...

    def event(self, event: dict[str, Any]) -> None: ...


class LiveCache:
    def __init__(self, *, history_points: int = 60, max_series: int = 3_000_000, history_series: int = 250_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.history_points = history_points
        self.max_series = max_series
        self.history_series = history_series  # series that get a history ring (first come)
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
        wire.columnar(batch)  # v1 samples into columns (ValueError when they do not fit: malformed)
        d = self.device(batch.device)
        d.agent, d.token = batch.agent, batch.token
        d.last_mono, d.last_ms = self.clock(), time.time_ns() // 1_000_000
        d.samples += len(batch.values)
        changes: dict[str, Series] = {}
        collect = self.listener.wants(batch.device)
        known = d.series
        for path, value, ts in wire.rows(batch):
            series = known.get(path)
            if series is None:
                if self.series_count >= self.max_series:
                    self.stats["series_refused"] += 1
                    continue
                points = self.history_points if self.series_count < self.history_series else 0
                series = known[path] = Series(path, points)
                self.series_count += 1
            series.update(value, ts)
            if collect:
                changes[path] = series
        self.stats["batches"] += 1
        self.stats["samples"] += len(batch.values)
        self.listener.device_updated(batch.device, changes)

    def apply_event(self, ev: wire.Event) -> None:
        d = self.device(ev.device)
        if ev.kind == "device_down":
            d.down = True
        elif ev.kind in ("device_up", "session_up"):  # a new holder starts its count afresh: its session_up is up
            d.down = False
        if ev.kind not in ("lease_acquired", "lease_released", "device_down", "device_up"):
            # lease moves say nothing about the session; down/up keep the failure that caused them readable
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

    def snapshot(self, device: str, prefixes: tuple[str, ...] = (), history: tuple[str, ...] | bool = False,
                 ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """(latest ``[ts_ms, value, rate]`` per path, history ``[[ts_ms, y], …]`` per numeric path).

        History is sent only for paths ending with one of ``history`` (``True``: all): a device's full
        history is large, and a page charts a few series."""
        d = self.devices.get(device)
        if d is None:
            return {}, {}
        latest: dict[str, list[Any]] = {}
        past: dict[str, list[Any]] = {}
        for path, s in d.series.items():
            if prefixes and not path.startswith(prefixes):
                continue
            latest[path] = s.frame()
            if s.hist and (history is True or (history and path.endswith(history))):
                past[path] = s.history()
        return latest, past
