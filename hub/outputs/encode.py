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
import operator
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cramjam

from swtel.shared import wire

from .mapping import Mapper, Metric

TagsOf = Callable[[str], tuple[tuple[str, str], ...]]  # device → opted-in inventory tags as labels
_DOUBLE = struct.Struct("<d").pack
MAX_SAMPLES = 5000  # per request (Prometheus sends 2000 per request by default; receivers accept far more)
# Requests in flight per output (each to its own share of the series). 1: measured on this 2-core machine
# under load, 4 shards were slower (VictoriaMetrics 0.72x in the same run: CPU, not latency, is the limit
# when the destination shares the cores); raise it where the destination has cores of its own.
SHARDS = 1
SERIES_CACHE_MAX = 500_000


@dataclass
class Body:
    data: bytes
    samples: int
    marks: dict[str, dict[str, int]] = field(default_factory=dict)  # device → path → newest ms in the body
    shard: int = 0  # bodies of one shard are sent in order; shards concurrently


_FIELDS = operator.attrgetter("path", "value", "ts")


def samples_of(b: wire.TelemetryBatch) -> Iterator[tuple[str, Any, int]]:
    """(path, value, ts in ns) of each sample: the one place the encoders and the scrape store read samples.
    Batches are columns by now (``runner.decode`` made them :func:`wire.columnar`)."""
    return wire.rows(b)


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


def _timeseries(lb: bytes, sample: bytes) -> bytes:
    """A TimeSeries field (0x0a) of one labels block and one Sample field."""
    return b"\x0a" + _varint(len(lb) + len(sample)) + lb + sample


def _tail(ms: int) -> bytes:
    """A Sample's timestamp field; proto3 omits a zero (and the runtime would: tests decode with it)."""
    return b"\x10" + _varint(ms) if ms > 0 else b""


# The usual tail: a timestamp of 2^35..2^42 ms (1971-2109) is a 6-byte varint. A series caches the bytes of
# its TimeSeries up to the double for that length; other timestamps take the slow path.
_TAIL_LEN = 7
_SAMPLE_HEAD = b"\x12" + bytes((9 + _TAIL_LEN,)) + b"\x09"


class Shards:
    """Per-request bodies of one fetch, ``n`` at a time in flight: a series always goes to the same shard, so
    each series reaches the destination in time order (Prometheus refuses out-of-order samples) while
    the shards' requests run concurrently (as Prometheus' own remote-write sender shards)."""

    def __init__(self, n: int, max_samples: int, finish: Callable[[list[bytes]], bytes]) -> None:
        self.parts: list[list[bytes]] = [[] for _ in range(n)]
        self.marks: list[dict[str, dict[str, int]]] = [{} for _ in range(n)]
        self.bodies: list[Body] = []
        self.max_samples = max_samples
        self.finish = finish

    def device(self, dev: str) -> list[dict[str, int]]:
        """Each shard's marks of ``dev`` (device → path → newest ms in the body)."""
        return [m.setdefault(dev, {}) for m in self.marks]

    def flush(self, k: int, dev: str | None) -> list[dict[str, int]] | None:
        """Close shard ``k``'s body (full); returns the device's fresh marks list when ``dev`` is given."""
        parts = self.parts[k]
        self.bodies.append(Body(self.finish(parts), len(parts), self.marks[k], k))
        self.parts[k] = []
        self.marks[k] = {}
        return self.device(dev) if dev is not None else None

    def done(self) -> list[Body]:
        for k, parts in enumerate(self.parts):
            if parts:
                self.flush(k, None)
        return self.bodies


class _SeriesCache:
    """What both encoders keep between fetches: per device, per path, the series' encoded prefix (or None:
    dropped by a rule), and per path the labels around the device; bounded by ``SERIES_CACHE_MAX``."""

    def __init__(self, mapper: Mapper, counts: Counts, max_samples: int = MAX_SAMPLES, shards: int | None = None) -> None:
        self.mapper = mapper
        self.counts = counts
        self.max_samples = max_samples
        self.shards = shards or SHARDS
        self._series: dict[str, dict[str, Any]] = {}
        self._paths: dict[str, Any] = {}
        self._n = 0

    def forget(self) -> None:
        """Device tags changed (or the cache is full): labels are rebuilt."""
        self._series.clear()
        self._paths.clear()
        self._n = 0

    def _device_series(self, dev: str) -> dict[str, Any]:
        series = self._series.get(dev)
        if series is None:
            if self._n >= SERIES_CACHE_MAX:
                self.forget()
            series = self._series[dev] = {}
        return series


class RemoteWriteEncoder(_SeriesCache):
    def __init__(self, mapper: Mapper, counts: Counts, max_samples: int = MAX_SAMPLES, shards: int | None = None) -> None:
        super().__init__(mapper, counts, max_samples, shards)
        # _series: device → path → (bytes of the TimeSeries up to the double, metric, labels, shard) or None;
        # _paths: path → (metric, labels before and after `device`) or None
        self._tails: dict[int, bytes] = {}  # ms → timestamp field
        self._pairs: dict[tuple[str, str], bytes] = {}  # encoded Label fields

    def _labels(self, m: Metric, device: str, tags: tuple[tuple[str, str], ...]) -> bytes:
        return self._labels_of_pairs(labels_of(m, device, tags))

    def _labels_of_pairs(self, labels: Sequence[tuple[str, str]]) -> bytes:
        out = []
        pairs = self._pairs
        for pair in labels:
            enc = pairs.get(pair)
            if enc is None:  # name and device pairs repeat across series: encoded once
                if len(pairs) > 100_000:
                    pairs.clear()
                enc = pairs[pair] = _ld(0x0A, _ld(0x0A, pair[0].encode()) + _ld(0x12, pair[1].encode()))
            out.append(enc)
        return b"".join(out)

    def _around_device(self, path: str) -> tuple[Metric, bytes, bytes] | None:
        """The path's metric and its encoded labels before and after ``device`` (the same for every device:
        labels are sorted by name), so a new series of a known path costs one concatenation."""
        hit = self._paths.get(path, False)
        if hit is False:
            m = self.mapper.metric(path)
            if m is None:
                hit = None
            else:
                pairs = labels_of(m, "", ())
                i = pairs.index(("device", ""))
                hit = (m, self._labels_of_pairs(pairs[:i]), self._labels_of_pairs(pairs[i + 1:]))
            if len(self._paths) >= SERIES_CACHE_MAX:
                self._paths.clear()
            self._paths[path] = hit
        return hit

    def _new_series(self, path: str, dev: str, tags_of: TagsOf) -> tuple[bytes, Metric, bytes, int] | None:
        self._n += 1
        tags = tags_of(dev)
        if tags:  # inventory tags as labels: sorted in among the path's
            m = self.mapper.metric(path)
            if m is None:
                return None
            lb = self._labels(m, dev, tags)
        else:
            around = self._around_device(path)
            if around is None:
                return None
            m, before, after = around
            lb = before + self._labels_of_pairs((("device", dev),)) + after
        head = b"\x0a" + _varint(len(lb) + 2 + 9 + _TAIL_LEN) + lb + _SAMPLE_HEAD
        return head, m, lb, hash(lb) % self.shards

    def _tail(self, ms: int) -> bytes:
        if len(self._tails) > 4096:
            self._tails.clear()
        t = self._tails[ms] = _tail(ms)
        return t

    def encode(self, batches: Sequence[wire.TelemetryBatch], tags_of: TagsOf,
               delivered: dict[str, dict[str, int]] | None = None) -> list[Body]:
        """One TimeSeries per sample, as Prometheus' own sender writes them (no grouping pass: the per-series
        bytes are cached across fetches, a sample adds its double and timestamp).

        ``delivered``: device → path → the newest timestamp (ms) the destination already accepted from
        this hub. Older or equal samples are not sent again (a redelivery after a runner stopped mid-fetch):
        Prometheus refuses a sample older than its newest as out of order, and refuses the whole request
        with it, which would take the not-yet-sent samples of that request along."""
        out = Shards(self.shards, self.max_samples, _snappy)
        parts, limit = out.parts, self.max_samples
        seen_all = delivered if delivered is not None else {}
        pack, tails, counts = _DOUBLE, self._tails, self.counts
        for b in batches:
            dev = b.device
            series = self._device_series(dev)
            seen = seen_all.get(dev)
            marks = out.device(dev)
            for path, v, ts in samples_of(b):
                hit = series.get(path, False)
                if hit is False:
                    hit = series[path] = self._new_series(path, dev, tags_of)
                if hit is None:
                    counts.skip("rule_drop")
                    continue
                head, m, lb, k = hit
                ms = ts // 1_000_000
                if seen and seen.get(path, -1) >= ms:
                    counts.skip("already_delivered")
                    continue
                tail = tails.get(ms) or self._tail(ms)
                if v.__class__ is int:
                    v = float(v)  # type: ignore[arg-type]
                if v.__class__ is float and len(tail) == _TAIL_LEN:
                    parts[k].append(head + pack(v) + tail)  # the hot path
                else:
                    x = self._slow(m, lb, dev, v, tags_of)
                    if x is None:
                        continue
                    lb2, v = x
                    if lb2 is lb and len(tail) == _TAIL_LEN:
                        parts[k].append(head + pack(v) + tail)
                    else:
                        sample = b"\x09" + pack(v) + tail
                        parts[k].append(_timeseries(lb2, b"\x12" + _varint(len(sample)) + sample))
                marks[k][path] = ms
                if len(parts[k]) >= limit:
                    marks = out.flush(k, dev)  # type: ignore[assignment]
        return out.done()

    def _slow(self, m: Metric, lb: bytes, dev: str, v: object, tags_of: TagsOf) -> tuple[bytes, float] | None:
        """(labels, value) of a sample that is not a float: integers, states, info metrics; None: skipped."""
        if v.__class__ is int:
            return lb, float(v)  # type: ignore[arg-type]
        if v.__class__ is float:
            return lb, v  # type: ignore[return-value]
        info = self.mapper.info(m, v)
        if info is not None:
            return self._labels(info, dev, tags_of(dev)), 1.0
        num = self.mapper.number(m, v)
        if num is None:
            self.counts.skip("string" if isinstance(v, str) else "null")
            return None
        return lb, float(num)


def _snappy(parts: list[bytes]) -> bytes:
    return bytes(cramjam.snappy.compress_raw(b"".join(parts)))


def _esc_key(s: str) -> str:  # measurement names, tag keys and tag values
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


class LineEncoder(_SeriesCache):
    """InfluxDB line protocol: measurement = metric name, tags = labels, one field ``value``; ns timestamps;
    integers stay exact (``42i``) for counters, everything else is a float."""

    # _series: device → path → (line up to the value, metric, shard) or None; _paths: path → line prefix
    # around the device (metric, before, after) or None

    @staticmethod
    def _prefix(m: Metric, device: str, tags: tuple[tuple[str, str], ...]) -> str:
        lab = labels_of(m, device, tags)
        return _esc_key(m.name) + "".join(f",{_esc_key(k)}={_esc_key(v)}" for k, v in lab
                                          if k != "__name__" and v != "") + " value="

    def _new_series(self, path: str, dev: str, tags_of: TagsOf) -> tuple[str, Metric, int] | None:
        self._n += 1
        tags = tags_of(dev)
        if tags:
            m = self.mapper.metric(path)
            if m is None:
                return None
            prefix = self._prefix(m, dev, tags)
        else:  # the path's line around `,device=…` is the same for every device (tags are sorted by name)
            hit = self._paths.get(path, False)
            if hit is False:
                m = self.mapper.metric(path)
                hit = None if m is None else (m, *self._prefix(m, "\x00", ()).split(",device=\x00"))
                if len(self._paths) >= SERIES_CACHE_MAX:
                    self._paths.clear()
                self._paths[path] = hit
            if hit is None:
                return None
            m, before, after = hit
            prefix = f"{before},device={_esc_key(dev)}{after}"
        return prefix, m, hash(prefix) % self.shards

    def encode(self, batches: Sequence[wire.TelemetryBatch], tags_of: TagsOf) -> list[Body]:
        out = Shards(self.shards, self.max_samples, _gzip)
        parts, limit, isfinite = out.parts, self.max_samples, math.isfinite
        for b in batches:
            dev = b.device
            series = self._device_series(dev)
            for path, v, ts in samples_of(b):
                hit = series.get(path, False)
                if hit is False:
                    hit = series[path] = self._new_series(path, dev, tags_of)
                if hit is None:
                    self.counts.skip("rule_drop")
                    continue
                prefix, m, k = hit
                if v.__class__ is int:
                    line = f"{prefix}{v}i {ts}" if m.counter else f"{prefix}{float(v)!r} {ts}"
                elif v.__class__ is float:
                    if not isfinite(v):
                        self.counts.skip("not_finite")
                        continue
                    line = f"{prefix}{v!r} {ts}"
                else:
                    line = self._slow(m, prefix, dev, v, ts, tags_of)
                    if line is None:
                        continue
                parts[k].append(line)  # type: ignore[arg-type]
                if len(parts[k]) >= limit:
                    out.flush(k, None)
        return out.done()

    def _slow(self, m: Metric, prefix: str, dev: str, v: object, ts: int, tags_of: TagsOf) -> str | None:
        info = self.mapper.info(m, v)
        if info is not None:
            return f"{self._prefix(info, dev, tags_of(dev))}1i {ts}"
        num = self.mapper.number(m, v)
        if num is None:
            self.counts.skip("string" if isinstance(v, str) else "null")
            return None
        return f"{prefix}{float(num)!r} {ts}"


def _gzip(lines: list[str]) -> bytes:  # type: ignore[type-arg]
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)
