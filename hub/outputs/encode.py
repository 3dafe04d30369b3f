"""Telemetry batches → request bodies: Prometheus remote-write (protobuf, snappy) and InfluxDB line protocol.

Both keep, per (device, path), what never changes for a series (its encoded labels, or its line prefix),
so the per-sample work is the value and the timestamp. The remote-write body is protobuf wire format
written directly against the messages in :mod:`.prompb` (tests decode every body with those classes): the
protobuf runtime builds Python objects at several microseconds per field on this hardware, too slow for
100k samples/s.
"""

from __future__ import annotations

import gzip
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cramjam

from swtel.shared import wire

from .mapping import Mapper, Metric

TagsOf = Callable[[str], tuple[tuple[str, str], ...]]  # device → opted-in inventory tags as labels
_DOUBLE = struct.Struct("<d").pack
MAX_SAMPLES = 5000  # per request (Prometheus sends 2000 per request by default; receivers accept far more)
SERIES_CACHE_MAX = 500_000


@dataclass
class Body:
    data: bytes
    samples: int
    marks: dict[str, dict[str, int]] = field(default_factory=dict)  # device → path → newest ms in the body


@dataclass
class Counts:
    """Samples not exported, by reason (strings in drop mode, unknown states, rules that drop, NaN for Influx)."""

    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def _varint_slow(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_varint_slow(i) for i in range(16384)]  # lengths of labels, samples and most series


def _varint(n: int) -> bytes:
    return _SMALL[n] if n < 16384 else _varint_slow(n)


def _ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def labels_of(m: Metric, device: str, tags: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    if not tags and not m.labels:
        return [("__name__", m.name), ("device", device)]
    return sorted({"__name__": m.name, "device": device, **dict(tags), **dict(m.labels)}.items())


class RemoteWriteEncoder:
    def __init__(self, mapper: Mapper, counts: Counts, max_samples: int = MAX_SAMPLES) -> None:
        self.mapper = mapper
        self.counts = counts
        self.max_samples = max_samples
        self._series: dict[str, dict[str, tuple[bytes, Metric] | None]] = {}  # device → path → labels
        self._n = 0
        self._ts: dict[int, tuple[bytes, bytes]] = {}  # ms → (bytes before the value, bytes after it)
        self._pairs: dict[tuple[str, str], bytes] = {}  # encoded Label fields

    def forget(self) -> None:
        """Device tags changed: labels are rebuilt."""
        self._series.clear()
        self._n = 0

    def _labels(self, m: Metric, device: str, tags: tuple[tuple[str, str], ...]) -> bytes:
        out = []
        pairs = self._pairs
        for pair in labels_of(m, device, tags):
            enc = pairs.get(pair)
            if enc is None:  # name and device pairs repeat across series: encoded once
                if len(pairs) > 100_000:
                    pairs.clear()
                enc = pairs[pair] = _ld(0x0A, _ld(0x0A, pair[0].encode()) + _ld(0x12, pair[1].encode()))
            out.append(enc)
        return b"".join(out)

    def _frame(self, ms: int) -> tuple[bytes, bytes]:
        """A Sample field is 0x12, length, 0x09 + 8-byte double, 0x10 + varint(ms): all but the double is
        the same for every sample of one millisecond."""
        if len(self._ts) > 4096:
            self._ts.clear()
        tail = b"\x10" + _varint(ms) if ms > 0 else b""
        f = self._ts[ms] = (b"\x12" + bytes((9 + len(tail),)) + b"\x09", tail)
        return f

    def encode(self, batches: Sequence[wire.TelemetryBatch], tags_of: TagsOf,
               delivered: dict[str, dict[str, int]] | None = None) -> list[Body]:
        """``delivered``: device → path → the newest timestamp (ms) the destination already accepted from
        this hub. Older or equal samples are not sent again (a redelivery after a runner stopped mid-fetch):
        Prometheus refuses a sample older than its newest as out of order, and refuses the whole request
        with it, which would take the not-yet-sent samples of that request along."""
        groups: dict[bytes, list[bytes]] = {}
        bodies: list[Body] = []
        marks: dict[str, dict[str, int]] = {}
        n = 0
        seen_all = delivered if delivered is not None else {}
        mapper, pack, frames, counts = self.mapper, _DOUBLE, self._ts, self.counts
        for b in batches:
            dev = b.device
            series = self._series.get(dev)
            if series is None:
                if self._n >= SERIES_CACHE_MAX:
                    self.forget()
                series = self._series[dev] = {}
            seen = seen_all.get(dev) or {}
            mark = marks.get(dev)
            if mark is None:
                mark = marks[dev] = {}
            tags = None
            for path, v, ts in wire.rows(b):
                hit = series.get(path, False)
                if hit is False:
                    m = mapper.metric(path)
                    if tags is None:
                        tags = tags_of(dev)
                    hit = series[path] = None if m is None else (self._labels(m, dev, tags), m)
                    self._n += 1
                if hit is None:
                    counts.skip("rule_drop")
                    continue
                lb, m = hit
                if v.__class__ is not float:
                    if v.__class__ is int:
                        v = float(v)
                    else:
                        info = mapper.info(m, v)
                        if info is not None:
                            lb, v = self._labels(info, dev, tags_of(dev)), 1.0
                        else:
                            num = mapper.number(m, v)
                            if num is None:
                                counts.skip("string" if isinstance(v, str) else "null")
                                continue
                            v = float(num)
                ms = ts // 1_000_000
                if seen and seen.get(path, -1) >= ms:
                    counts.skip("already_delivered")
                    continue
                g = groups.get(lb)
                if g is None:
                    g = groups[lb] = []
                f = frames.get(ms) or self._frame(ms)
                g.append(f[0] + pack(v) + f[1])
                mark[path] = ms
                n += 1
                if n >= self.max_samples:
                    bodies.append(self._body(groups, n, marks))
                    groups, n = {}, 0
                    marks = {dev: (mark := {})}
        if n:
            bodies.append(self._body(groups, n, marks))
        return bodies

    @staticmethod
    def _body(groups: dict[bytes, list[bytes]], n: int, marks: dict[str, dict[str, int]]) -> Body:
        parts: list[bytes] = []
        add = parts.append
        for lb, samples in groups.items():
            if len(samples) == 1:  # the usual case: one sample per series per request
                sample = samples[0]
                add(b"\x0a")
                add(_varint(len(lb) + len(sample)))
                add(lb)
                add(sample)
            else:
                ts = lb + b"".join(samples)
                add(b"\x0a")
                add(_varint(len(ts)))
                add(ts)
        return Body(bytes(cramjam.snappy.compress_raw(b"".join(parts))), n, marks)


def _esc_key(s: str) -> str:  # measurement names, tag keys and tag values
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


class LineEncoder:
    """InfluxDB line protocol: measurement = metric name, tags = labels, one field ``value``; ns timestamps;
    integers stay exact (``42i``) for counters, everything else is a float."""

    def __init__(self, mapper: Mapper, counts: Counts, max_samples: int = MAX_SAMPLES) -> None:
        self.mapper = mapper
        self.counts = counts
        self.max_samples = max_samples
        self._series: dict[tuple[str, str], tuple[str, Metric] | None] = {}

    def forget(self) -> None:
        self._series.clear()

    @staticmethod
    def _prefix(m: Metric, device: str, tags: tuple[tuple[str, str], ...]) -> str:
        lab = labels_of(m, device, tags)
        return _esc_key(m.name) + "".join(f",{_esc_key(k)}={_esc_key(v)}" for k, v in lab
                                          if k != "__name__" and v != "") + " value="

    def encode(self, batches: Sequence[wire.TelemetryBatch], tags_of: TagsOf) -> list[Body]:
        lines: list[str] = []
        bodies: list[Body] = []
        series, mapper = self._series, self.mapper
        for b in batches:
            tags = tags_of(b.device)
            dev = b.device
            for path, v, ts in wire.rows(b):
                key = (dev, path)
                hit = series.get(key, False)
                if hit is False:
                    m = mapper.metric(path)
                    hit = None if m is None else (self._prefix(m, dev, tags), m)
                    if len(series) >= SERIES_CACHE_MAX:
                        series.clear()
                    series[key] = hit
                if hit is None:
                    self.counts.skip("rule_drop")
                    continue
                prefix, m = hit
                if v.__class__ is int:
                    lines.append(f"{prefix}{v}i {ts}" if m.counter else f"{prefix}{float(v)!r} {ts}")
                elif v.__class__ is float:
                    if math.isnan(v) or math.isinf(v):
                        self.counts.skip("not_finite")
                        continue
                    lines.append(f"{prefix}{v!r} {ts}")
                else:
                    info = mapper.info(m, v)
                    if info is not None:
                        lines.append(f"{self._prefix(info, dev, tags)}1i {ts}")
                    else:
                        num = mapper.number(m, v)
                        if num is None:
                            self.counts.skip("string" if isinstance(v, str) else "null")
                            continue
                        lines.append(f"{prefix}{float(num)!r} {ts}")
                if len(lines) >= self.max_samples:
                    bodies.append(self._body(lines))
                    lines = []
        if lines:
            bodies.append(self._body(lines))
        return bodies

    @staticmethod
    def _body(lines: list[str]) -> Body:
        return Body(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1), len(lines))
