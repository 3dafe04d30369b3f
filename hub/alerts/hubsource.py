"""The hub's alert data source: the inventory from NATS, observations from the database.

Why the database and not the live cache: every hub ingests into the same tables, so a hub elected a
moment ago sees exactly what the one before it saw. Its live cache would be empty (a core subscription
has no replay): every ``absent`` rule would find the fleet silent and fire, and no rate would be known
until two new readings arrived. The cost is one indexed query per rule and evaluation: the latest two
points of each matching series (``points_series_time``), within a look-back window so that only recent
partitions or chunks are read.

Per series the answer is the newest reading, its time and the counter rate between the two newest
readings (:func:`sources.counter_rate`: a decrease is a reset). String series (``states``) give their
newest time with no value, so ``absent`` covers them too. A series with no reading in the window is left
out: for ``above``/``below``/``rate_increase`` that means "no data, state unchanged"; for ``absent`` the
window is the rule's duration plus ``LOOKBACK_S``, and a device with no matching series in it at all is
silent to the engine. ``down_devices`` (optional, the device status model's verdict) makes the listed
devices count as silent for ``absent`` rules: their series are left out of the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime

import asyncpg

from swtel.shared import wire

from .rules import Rule, path_regex
from .sources import Observation, counter_rate

LOOKBACK_S = 900.0

_LATEST = """
SELECT s.device, s.name, p.time, p.value FROM series s
CROSS JOIN LATERAL (SELECT time, value FROM points WHERE series_id = s.id AND time > $3
                    ORDER BY time DESC LIMIT 2) p
WHERE s.kind = 'num' AND s.device = ANY($1::text[]) AND s.name ~ $2
UNION ALL
SELECT s.device, s.name, p.time, NULL FROM series s
CROSS JOIN LATERAL (SELECT time FROM states WHERE series_id = s.id AND time > $3
                    ORDER BY time DESC LIMIT 1) p
WHERE s.kind = 'str' AND s.device = ANY($1::text[]) AND s.name ~ $2
ORDER BY 1, 2, 3 DESC
"""


class HubSource:
    def __init__(self, pool: asyncpg.Pool, devices: Callable[[], Awaitable[list[wire.Device]]], *,
                 down_devices: Callable[[], Awaitable[set[str]]] | None = None,
                 lookback_s: float = LOOKBACK_S) -> None:
        self.pool = pool
        self._devices = devices
        self.down_devices = down_devices
        self.lookback_s = lookback_s

    async def devices(self) -> Iterable[wire.Device]:
        return await self._devices()

    async def samples(self, rule: Rule, devices: Sequence[str], now: float) -> Iterable[Observation]:
        names = list(devices)
        window = self.lookback_s
        if rule.condition == "absent":
            window += rule.threshold
            if self.down_devices is not None:
                down = await self.down_devices()
                names = [d for d in names if d not in down]
        if not names:
            return []
        since = datetime.fromtimestamp(now - window, UTC)
        # path_regex() output is also a PostgreSQL (ARE) regex
        rows = await self.pool.fetch(_LATEST, names, f"^(?:{path_regex(rule.path).pattern})$", since)
        out: list[Observation] = []
        i = 0
        while i < len(rows):  # rows come newest first within each (device, name)
            dev, name, t1, v1 = rows[i]
            rate = None
            if i + 1 < len(rows) and rows[i + 1][0] == dev and rows[i + 1][1] == name:
                _, _, t0, v0 = rows[i + 1]
                if v0 is not None and v1 is not None:
                    rate = counter_rate(v0, t0.timestamp(), v1, t1.timestamp())
                i += 1
            out.append(Observation(dev, name, v1, t1.timestamp(), rate))
            i += 1
        return out
