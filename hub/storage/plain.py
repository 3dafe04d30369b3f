"""Plain PostgreSQL: daily range partitions of ``points`` and ``states``, created ahead and dropped for
retention by the hub (TimescaleDB does both by itself)."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from typing import Any

import asyncpg

from .base import DAY_US, Storage
from .schema import PLAIN

log = logging.getLogger("swtel.hub.storage")
PG_EPOCH_DATE = date(2000, 1, 1)
TABLES = ("points", "states")
_PART_RE = re.compile(r"^(points|states)_p(\d{8})$")


def day_of(day_number: int) -> date:
    """A day number (µs since 2000-01-01 // one day) as a date."""
    return PG_EPOCH_DATE + timedelta(days=day_number)


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def create_partition_sql(table: str, day: date) -> str:
    nxt = day + timedelta(days=1)
    return (f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} PARTITION OF {table} "
            f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') TO ('{nxt.isoformat()} 00:00:00+00')")


class PlainStorage(Storage):
    backend = PLAIN

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._days: set[date] = set()  # partitions known to exist

    async def prepare_days(self, days: set[int]) -> None:
        wanted = {day_of(d) for d in days} - self._days
        if wanted:
            async with self.pool.acquire() as conn:
                await self._ensure(conn, wanted)

    async def _ensure(self, conn: asyncpg.Connection, days: set[date]) -> list[str]:
        created = []
        for day in sorted(days):
            for table in TABLES:
                try:
                    status = await conn.execute(create_partition_sql(table, day))
                except (asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
                    status = "exists"  # another hub created it between our check and create
                if status == "CREATE TABLE":
                    created.append(partition_name(table, day))
            self._days.add(day)
        return created

    async def partitions(self, conn: asyncpg.Connection | None = None) -> dict[str, list[date]]:
        sql = ("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
               "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY($1::text[])")
        rows = await (conn or self.pool).fetch(sql, list(TABLES))
        out: dict[str, list[date]] = {t: [] for t in TABLES}
        for r in rows:
            m = _PART_RE.match(r["relname"])
            if m:
                d = m.group(2)
                out[m.group(1)].append(date(int(d[:4]), int(d[4:6]), int(d[6:])))
        return {t: sorted(v) for t, v in out.items()}

    async def _maintain(self, conn: asyncpg.Connection, today: date | None = None) -> dict[str, Any]:
        today = today or await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
        ahead = {today + timedelta(days=i) for i in range(-1, self.settings.partitions_ahead_days + 1)}
        self._days.clear()  # re-check: partitions may have been dropped by another hub
        created = await self._ensure(conn, ahead)
        # a partition holds [day, day+1); it is past retention once day+1 <= today - retention
        cutoff = today - timedelta(days=self.settings.retention_days)
        dropped = []
        for table, days in (await self.partitions(conn)).items():
            for day in days:
                if day + timedelta(days=1) <= cutoff:
                    await conn.execute(f"DROP TABLE IF EXISTS {partition_name(table, day)}")
                    dropped.append(partition_name(table, day))
        if dropped:
            log.info("retention dropped %s", ", ".join(dropped))
        return {"partitions_created": created, "partitions_dropped": dropped}

    async def maintain_at(self, today: date) -> dict[str, Any]:
        """Upkeep as if it were ``today`` (tests, and operators back-filling)."""
        async with self.pool.acquire() as conn:
            return await self._maintain(conn, today)


__all__ = ["PlainStorage", "DAY_US", "partition_name", "create_partition_sql"]
