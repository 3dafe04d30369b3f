"""Plain PostgreSQL: daily range partitions of ``points`` and ``states``, created ahead and dropped for
retention by the hub, and the 1 m / 1 h rollup tables (``points_1m``, ``points_1h``: the columns of
TimescaleDB's continuous aggregates) filled and pruned by the hub. TimescaleDB does all of it by itself.

Rollups work like TimescaleDB's refresh policies: each maintenance round re-aggregates a window that ends
one bucket before now and starts ``start_offset`` before the previous watermark, plus every older day
whose raw partition received rows since the last round (late samples), upserting whole buckets, and
moves the watermark (``swtel_meta`` ``rollup:<table>``) to the window's end in the same transaction. Queries read rollups below the watermark
and raw points above it, like a real-time aggregate."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg

from .base import DAY_US, Storage
from .query import ORIGIN, QueryPlan, RawSQL, aggregate_for, aggregate_plan
from .schema import COUNTER_OF_BUCKETS, COUNTER_OF_POINTS, PLAIN
from .status import plain_jobs, record_maintenance

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


_UPSERT = ("ON CONFLICT (series_id, bucket) DO UPDATE SET avg = EXCLUDED.avg, min = EXCLUDED.min, max = EXCLUDED.max, "
           "first = EXCLUDED.first, last = EXCLUDED.last, sum = EXCLUDED.sum, n = EXCLUDED.n, "
           "second = EXCLUDED.second, last2 = EXCLUDED.last2, inc = EXCLUDED.inc")
# the columns of TimescaleDB's continuous aggregates (schema.py TIMESCALE_V8), counter summary included; first and
# last come from the summary too (one sort per bucket instead of three)
ROLLUP_SQL = {
    "points_1m": f"""
INSERT INTO points_1m (series_id, bucket, avg, min, max, first, last, sum, n, second, last2, inc)
SELECT series_id, bucket, avg, min, max, (c).first, (c).last, sum, n, (c).second, (c).last2, (c).inc FROM (
  SELECT series_id, date_bin(INTERVAL '1 minute', time, {ORIGIN}) AS bucket, avg(value) AS avg, min(value) AS min,
         max(value) AS max, sum(value) AS sum, count(*) AS n, {COUNTER_OF_POINTS} AS c
  FROM points WHERE time >= $1 AND time < $2 GROUP BY 1, 2) r {_UPSERT}""",
    "points_1h": f"""
INSERT INTO points_1h (series_id, bucket, avg, min, max, first, last, sum, n, second, last2, inc)
SELECT series_id, hour, avg, min, max, (c).first, (c).last, sum, n, (c).second, (c).last2, (c).inc FROM (
  SELECT series_id, date_bin(INTERVAL '1 hour', bucket, {ORIGIN}) AS hour, sum(sum) / sum(n) AS avg, min(min) AS min,
         max(max) AS max, sum(sum) AS sum, sum(n) AS n, {COUNTER_OF_BUCKETS} AS c
  FROM points_1m WHERE bucket >= $1 AND bucket < $2 GROUP BY 1, 2) r {_UPSERT}""",
}
# (table, bucket width s, source, start_offset): late samples older than start_offset are found per day
# (PlainStorage._late_days), so the window itself can stay short
ROLLUPS = (("points_1m", 60, "points", timedelta(hours=3)), ("points_1h", 3600, "points_1m", timedelta(days=3)))


def watermark_key(table: str) -> str:
    return f"rollup:{table}"


def watermark_sql(table: str) -> str:
    return (f"coalesce((SELECT value::timestamptz FROM swtel_meta WHERE key = '{watermark_key(table)}'), "
            f"'-infinity'::timestamptz)")


async def rollup_watermarks(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, str | None]:
    rows = {r["key"]: r["value"] for r in await conn.fetch(
        "SELECT key, value FROM swtel_meta WHERE key = ANY($1::text[])", [watermark_key(t) for t, *_ in ROLLUPS])}
    return {t: rows.get(watermark_key(t)) for t, *_ in ROLLUPS}


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
        out: dict[str, Any] = {"partitions_created": created, "partitions_dropped": dropped}
        out.update(await self.refresh_rollups(conn))
        return out

    async def refresh_rollups(self, conn: asyncpg.Connection) -> dict[str, Any]:
        """One refresh round of each rollup (then its retention); returns rows written and pruned."""
        out: dict[str, Any] = {}
        keep = {"points_1m": self.settings.retention_1m_days, "points_1h": self.settings.retention_1h_days}
        late: list[tuple[Any, Any]] = []  # days below the window that got samples since the last round
        for table, width, source, start_offset in ROLLUPS:
            async with conn.transaction():
                wm = await conn.fetchval("SELECT value::timestamptz FROM swtel_meta WHERE key = $1",
                                         watermark_key(table))
                # the window ends at the last bucket that ended at least aggregate_lag_s ago (and at least one
                # bucket before now): a bucket still receiving rows is never materialized, and a sample that
                # arrives up to aggregate_lag_s after its timestamp lands above the watermark, where queries
                # read raw points; for 1 h, also where the 1 m rollup is complete
                hi = await conn.fetchval(
                    f"SELECT date_bin(make_interval(secs => $1), now() - make_interval(secs => greatest($1, $2)), "
                    f"{ORIGIN})", float(width), float(self.settings.aggregate_lag_s))
                if source != "points":
                    src_wm = await conn.fetchval("SELECT value::timestamptz FROM swtel_meta WHERE key = $1",
                                                 watermark_key(source))
                    if src_wm is None:
                        continue
                    hi = min(hi, await conn.fetchval(
                        f"SELECT date_bin(make_interval(secs => $1), $2::timestamptz, {ORIGIN})", float(width), src_wm))
                if wm is None:  # first round: everything the source still holds
                    lo = await conn.fetchval(
                        f"SELECT date_bin(make_interval(secs => $1), now() - make_interval(days => $2), {ORIGIN})",
                        float(width), self.settings.retention_days)
                else:
                    lo = min(wm, hi) - start_offset
                if source == "points":
                    late = await self._late_days(conn, lo, first=wm is None)
                rows = 0
                for a, b in [*((d0, min(d1, lo)) for d0, d1 in late if d0 < lo), (lo, hi)]:
                    rows += int((await conn.execute(ROLLUP_SQL[table], a, b)).split()[-1])
                out[f"{table}_rows"] = rows
                await conn.execute(
                    "INSERT INTO swtel_meta (key, value) VALUES ($1, $2) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", watermark_key(table), hi.isoformat())
            r = await conn.execute(f"DELETE FROM {table} WHERE bucket < now() - make_interval(days => $1)", keep[table])
            out[f"{table}_pruned"] = int(r.split()[-1])
        return out

    async def _late_days(self, conn: asyncpg.Connection, lo: Any, *, first: bool) -> list[tuple[Any, Any]]:
        """Days before ``lo`` whose raw partition got rows since the last round: samples that arrived later
        than the refresh window reaches back (ingest accepts them up to ``retention_days`` old). Detected
        from each partition's cumulative insert count (``pg_stat_get_tuples_inserted``), recorded per round
        in ``swtel_meta``; a changed or reset count re-aggregates that day, which is always safe."""
        rows = await conn.fetch(
            "SELECT c.relname, pg_stat_get_tuples_inserted(c.oid) AS n FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'points'")
        counts = {r["relname"]: r["n"] for r in rows}
        raw = await conn.fetchval("SELECT value FROM swtel_meta WHERE key = 'rollup:inserts'")
        seen = json.loads(raw) if raw else {}
        await conn.execute("INSERT INTO swtel_meta (key, value) VALUES ('rollup:inserts', $1) "
                           "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", json.dumps(counts))
        if first:
            return []
        out = []
        for rel, n in sorted(counts.items()):
            m = _PART_RE.match(rel)
            if m and n != seen.get(rel):
                d = m.group(2)
                d0 = datetime(int(d[:4]), int(d[4:6]), int(d[6:]), tzinfo=timezone.utc)
                if d0 < lo:
                    out.append((d0, d0 + timedelta(days=1)))
        return out

    def plan(self, *, kind: str, fn: str, step_s: float, many: bool = False) -> QueryPlan:
        agg = aggregate_for(step_s, fn) if kind == "num" else None
        if agg is None:
            return RawSQL.plan(kind=kind, fn=fn, step_s=step_s, dialect=PLAIN, many=many)
        view, width = agg
        return aggregate_plan(view=view, width=width, fn=fn, dialect=PLAIN, watermark=watermark_sql(view), many=many)

    async def jobs(self) -> list[dict[str, Any]]:
        return await plain_jobs(self.pool)

    async def _record_run(self, conn: asyncpg.Connection, started: Any, error: str | None) -> None:
        from ..fleet import MAINTAIN_EVERY_S, MAINTAIN_RETRY_S  # the elected hub's schedule (lazy: hub imports storage)

        try:
            await record_maintenance(conn, started, error, MAINTAIN_EVERY_S if error is None else MAINTAIN_RETRY_S)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:  # never hide the run's own error
            log.warning("maintenance run not recorded: %s", e)

    async def maintain_at(self, today: date) -> dict[str, Any]:
        """Upkeep as if it were ``today`` (tests, and operators back-filling)."""
        async with self.pool.acquire() as conn:
            return await self._maintain(conn, today)


__all__ = ["PlainStorage", "DAY_US", "partition_name", "create_partition_sql"]
