"""What the engine reads: a small data-source protocol, and :class:`LiveSource`, an in-memory implementation
fed reading by reading (the hub's live cache of ``swtel.telemetry.>`` can call :meth:`LiveSource.observe`).

A source answers for the devices a rule selects: for every series whose path matches the rule's pattern,
the latest value, its timestamp and the counter rate per second (``None`` where unknown). The hub can
equally back a source with the database (``points`` latest per series, ``fn=rate``) for series the live
cache has not seen since the hub started; the engine does not care where the numbers come from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import msgspec

from .rules import Rule, path_regex


class Observation(msgspec.Struct, frozen=True):
    """The newest knowledge about one series. ``ts`` is seconds since the epoch of the latest reading."""

    device: str
    path: str
    value: float | None
    ts: float | None
    rate_per_s: float | None = None


class DeviceLike(Protocol):
    """What the engine needs of an inventory entry (``shared.wire.Device`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def tags(self) -> Mapping[str, str]: ...


class DataSource(Protocol):
    async def devices(self) -> Iterable[DeviceLike]:
        """The inventory: every device a tag selector may match."""
        ...

    async def samples(self, rule: Rule, devices: Sequence[str], now: float) -> Iterable[Observation]:
        """Observations of every series of ``devices`` whose path matches ``rule.path``. A device with no
        matching series is simply absent from the answer (the engine then treats it as silent)."""
        ...


def counter_rate(prev_value: float, prev_ts: float, value: float, ts: float) -> float | None:
    """Per-second increase between two readings of a counter. A counter that went down was reset (reboot,
    clear): it restarted from zero, so the increase since is ``value`` itself (as Prometheus' rate())."""
    dt = ts - prev_ts
    if dt <= 0:
        return None
    increase = value - prev_value if value >= prev_value else value
    return increase / dt


class _Series:
    __slots__ = ("prev_value", "prev_ts", "value", "ts")

    def __init__(self, value: float | None, ts: float) -> None:
        self.prev_value: float | None = None
        self.prev_ts = 0.0
        self.value = value
        self.ts = ts


class LiveSource:
    """An in-memory source: the latest two readings of every series, and an inventory snapshot."""

    def __init__(self, devices: Iterable[DeviceLike] = ()) -> None:
        self._devices: dict[str, DeviceLike] = {d.name: d for d in devices}
        self._series: dict[str, dict[str, _Series]] = {}

    def set_devices(self, devices: Iterable[DeviceLike]) -> None:
        self._devices = {d.name: d for d in devices}

    def observe(self, device: str, path: str, value: float | int | bool | str | None, ts: float) -> None:
        """Record one reading (``ts`` in seconds). Strings and other non-numbers count as no value."""
        num = float(value) if isinstance(value, (int, float)) else None
        paths = self._series.setdefault(device, {})
        s = paths.get(path)
        if s is None:
            paths[path] = _Series(num, ts)
            return
        if ts <= s.ts:  # a late or duplicate reading does not move time backwards
            return
        s.prev_value, s.prev_ts, s.value, s.ts = s.value, s.ts, num, ts

    async def devices(self) -> Iterable[DeviceLike]:
        return list(self._devices.values())

    async def samples(self, rule: Rule, devices: Sequence[str], now: float) -> Iterable[Observation]:
        rx = path_regex(rule.path)
        out = []
        for dev in devices:
            for path, s in self._series.get(dev, {}).items():
                if rx.fullmatch(path) is None:
                    continue
                rate = None
                if s.prev_value is not None and s.value is not None:
                    rate = counter_rate(s.prev_value, s.prev_ts, s.value, s.ts)
                out.append(Observation(dev, path, s.value, s.ts, rate))
        return out
