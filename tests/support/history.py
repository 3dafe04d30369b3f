"""Stored history written straight into the database, as the ingest would have stored it earlier.

Charts over 1 h – 24 h read the query API, not the live cache; these helpers give them something to read
without waiting hours for an agent. Used by the browser tests and ``bench/dashboards``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable

import asyncpg

_KEY = re.compile(r"\[([^=\]]+)=([^\]]*)\]")


def split_keys(name: str) -> tuple[str, dict[str, str]]:
    """``/a/b[name=Et1]/c`` → (``/a/b/c``, {"name": "Et1"}) as the storage keeps them."""
    return _KEY.sub("", name), dict(_KEY.findall(name))


async def ensure_series(conn: asyncpg.Connection, device: str, name: str) -> int:
    path, keys = split_keys(name)
    sid = await conn.fetchval(
        "INSERT INTO series (device, name, path, keys, kind) VALUES ($1, $2, $3, $4::jsonb, 'num') "
        "ON CONFLICT (device, name) DO UPDATE SET kind = series.kind RETURNING id",
        device, name, path, json.dumps(keys))
    return int(sid)


async def seed(conn: asyncpg.Connection, device: str, names: Iterable[str], *, hours: float = 6,
               interval_s: float = 60, until_s_ago: float = 600, counter_rate: float = 1e5,
               gauge: float | None = None) -> dict[str, int]:
    """Points every ``interval_s`` from ``hours`` ago until ``until_s_ago`` seconds ago for each series.

    Counters (``/counters/`` in the name) grow by ``counter_rate`` (per second, times the series' position
    + 1, so lines differ); other series hold ``gauge`` plus a small wave. Returns name → series id."""
    now = time.time()
    ids: dict[str, int] = {}
    rows: list[tuple[object, int, float]] = []
    from datetime import datetime, timezone

    times = []
    t = now - hours * 3600
    while t <= now - until_s_ago:
        times.append(t)
        t += interval_s
    for k, name in enumerate(names):
        sid = ids[name] = await ensure_series(conn, device, name)
        for j, ts in enumerate(times):
            if "/counters/" in name:
                v = (ts - times[0]) * counter_rate * (k + 1)
            else:
                v = (gauge if gauge is not None else 40.0) + 10 * ((j % 20) / 20)
            rows.append((datetime.fromtimestamp(ts, tz=timezone.utc), sid, v))
    if rows and await conn.fetchval("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'points'::regclass"):
        from swtel.hub.storage.plain import create_partition_sql  # plain PostgreSQL: one partition a day

        for day in sorted({r[0].date() for r in rows}):
            await conn.execute(create_partition_sql("points", day))
    await conn.copy_records_to_table("points", records=rows, columns=["time", "series_id", "value"])
    return ids
