"""The scrape output: the newest value of every series, in Prometheus text format with the device's timestamps.

Memory is bounded: at most ``max_series`` series are held (further ones are counted and ignored), and a
series not updated for ``STALE_S`` is forgotten at the next render. Every hub keeps its own copy, fed by an
ordered consumer that starts with the newest batch of every subject (device × subscription) in the stream
and then follows it, so a hub that just started answers with current values at once and any hub can be
scraped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from swtel.shared import wire

from .encode import Counts, TagsOf, labels_of, samples_of
from .mapping import Mapper, Metric

STALE_S = 3600.0


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v) if isinstance(v, float) else str(v)


class ScrapeStore:
    def __init__(self, mapper: Mapper, counts: Counts, max_series: int) -> None:
        self.mapper = mapper
        self.counts = counts
        self.max_series = max_series
        # metric name → series text (name{labels}) → [value, ts_ms, wall time of the update]
        self.families: dict[str, dict[str, list[float]]] = {}
        self.types: dict[str, str] = {}
        self.keys: dict[tuple[str, str], tuple[str, str] | None] = {}  # (device, path) → (family, series)
        self.series = 0
        self.newest_ns = 0

    def forget(self) -> None:
        self.families.clear()
        self.keys.clear()
        self.series = 0

    def _text(self, m: Metric, device: str, tags: tuple[tuple[str, str], ...]) -> str:
        lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels_of(m, device, tags) if k != "__name__")
        return f"{m.name}{{{lab}}}"

    def _slot(self, m: Metric, text: str) -> list[float] | None:
        fam = self.families.get(m.name)
        if fam is None:
            fam = self.families[m.name] = {}
            self.types[m.name] = "counter" if m.counter else "gauge"
        slot = fam.get(text)
        if slot is None:
            if self.series >= self.max_series:
                self.counts.skip("max_series")
                return None
            slot = fam[text] = [0.0, 0, 0.0]
            self.series += 1
        return slot

    def update(self, batches: Sequence[wire.TelemetryBatch], tags_of: TagsOf) -> int:
        now = time.time()
        n = 0
        for b in batches:
            tags = tags_of(b.device)
            for path, value, ts in samples_of(b):
                m = self.mapper.metric(path)
                if m is None:
                    self.counts.skip("rule_drop")
                    continue
                v = value
                if v.__class__ is not int and v.__class__ is not float:
                    info = self.mapper.info(m, v)
                    if info is not None:
                        m, v = info, 1
                        # one info series per path: the previous value's series goes
                        old = self.keys.get((b.device, path))
                        text = self._text(m, b.device, tags)
                        if old is not None and old[1] != text and old[1] in self.families.get(old[0], {}):
                            del self.families[old[0]][old[1]]
                            self.series -= 1
                        self.keys[(b.device, path)] = (m.name, text)
                        slot = self._slot(m, text)
                        if slot is not None:
                            slot[0], slot[1], slot[2] = 1, ts // 1_000_000, now
                            n += 1
                        continue
                    v = self.mapper.number(m, v)
                    if v is None:
                        self.counts.skip("string" if isinstance(value, str) else "null")
                        continue
                key = (b.device, path)
                hit = self.keys.get(key)
                if hit is None:
                    hit = self.keys[key] = (m.name, self._text(m, b.device, tags))
                slot = self._slot(m, hit[1])
                if slot is None:
                    continue
                if ts // 1_000_000 >= slot[1]:  # an older sample (a replay) never replaces a newer one
                    slot[0], slot[1], slot[2] = v, ts // 1_000_000, now
                n += 1
                if ts > self.newest_ns:
                    self.newest_ns = ts
        return n

    def render(self) -> str:
        cutoff = time.time() - STALE_S
        out: list[str] = []
        for name in sorted(self.families):
            fam = self.families[name]
            for text in [t for t, slot in fam.items() if slot[2] < cutoff]:
                del fam[text]
                self.series -= 1
            if not fam:
                continue
            out.append(f"# TYPE {name} {self.types[name]}")
            out.extend(f"{text} {_fmt(slot[0])} {int(slot[1])}" for text, slot in fam.items())
        return "\n".join(out) + "\n" if out else ""
