"""Queries on 1 m / 1 h aggregates (TimescaleDB continuous aggregates or the plain backend's rollup
tables, whichever the test database offers) answer exactly what raw points answer over [start, end):
any start and end, any step that the aggregate width divides, before and after materialization. And
retention per resolution: each resolution is kept for its own setting."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from support.telemetry import db, migrate, refresh_aggregates, timescale_refresh
from support.waits import eventually
from swtel.hub.storage import Item, Storage, open_storage
from swtel.hub.storage.query import ORIGIN, RawSQL
from swtel.shared import settings, wire

S = 1_000_000_000
HOUR = 3600


async def _open(database_url: str, **extra: object) -> tuple[Storage, asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    return await open_storage(pool, settings.load({"database_url": database_url, **extra}, env={})), pool


async def _materialize(st: Storage, database_url: str) -> None:
    """What the background jobs do: TimescaleDB's refresh policies, the plain backend's maintenance."""
    if st.backend == "timescale":
        async with db(database_url) as conn:  # (CALL must run outside a transaction)
            await refresh_aggregates(conn)
    else:
        await st.maintain()


def _temperature(i: int) -> float:
    """Not monotonic: rises and falls every few samples, with a spike."""
    return round(40 + 5 * math.sin(i / 7) + (3 if i % 13 == 0 else 0) - (i % 5) * 0.25, 3)


WRAP_AT = 2**32


def _counters(count: int) -> list[float]:
    """An interface counter every 10 s: uneven increases, resets (mid-minute, on an hour's first sample, on
    a minute's second sample: the increase at a bucket's seam needs the previous bucket's samples) and a
    32-bit wrap."""
    out, v = [], 1_000.0
    for i in range(count):
        if i in (150, 360, 367):
            v = float(7 * (i % 5))  # reset: restarted from (near) zero
        elif i == 500:
            v = WRAP_AT - 2_500.0  # about to wrap
        else:
            v = (v + 1_000 * (i % 7 + 1)) % WRAP_AT
        out.append(v)
    return out


async def _write(st: Storage, t0_ns: int, seconds: int, seq: int = 1, path: str = "/temp") -> int:
    n = seconds // 10
    values = _counters(n) if path == "/counter" else [_temperature(i + seq) for i in range(n)]
    samples = [wire.Sample(path, v, t0_ns + i * 10 * S) for i, v in enumerate(values)]
    batch = wire.TelemetryBatch(device="agg", agent="a", token=1, seq=seq, subscription="s", samples=samples)
    r = await st.write_telemetry([Item(batch, 1)])
    assert r.points == len(samples), r
    (sid,) = [s["id"] for s in await st.list_series("agg") if s["name"] == path]
    return sid


async def _raw(pool: asyncpg.Pool, backend: str, sid: int, start: datetime, end: datetime, step: float,
               fn: str) -> list[tuple[float, float]]:
    plan = RawSQL.plan(kind="num", fn=fn, step_s=step, dialect=backend)
    return [(r["t"].timestamp(), r["v"]) for r in await pool.fetch(plan.sql, sid, start, end, step)]


def _same(got: list[tuple[float, float]], want: list[tuple[float, float]]) -> bool:
    return [t for t, _ in got] == [t for t, _ in want] and all(
        v == pytest.approx(w, rel=1e-9, abs=1e-9) for (_, v), (_, w) in zip(got, want))


@pytest.mark.asyncio
async def test_aggregate_answers_equal_raw_answers_over_exactly_start_to_end(database_url: str, db_backend: str) -> None:
    assert await migrate(database_url) == db_backend
    st, pool = await _open(database_url)
    try:
        hour0 = (time.time_ns() // (HOUR * S) - 4) * HOUR * S  # four whole hours ago
        gauge = await _write(st, hour0, 3 * HOUR)  # a temperature: rises and falls (rate: resets everywhere)
        counter = await _write(st, hour0, 3 * HOUR, seq=2, path="/counter")  # resets and a wrap
        base = datetime.fromtimestamp(hour0 / S, tz=timezone.utc)
        cases = [  # (start, end) offsets in seconds: on and off bucket boundaries, shorter than one bucket
            (25, 13 * 60 + 5), (0, 3 * HOUR), (59, 61), (3599, 2 * HOUR + 17), (90, 2 * HOUR + 30 * 60 + 1), (5, 35),
            (3595, 3 * HOUR), (3660, 3 * HOUR - 60),
        ]
        steps = {60: "points_1m", 120: "points_1m", 300: "points_1m", HOUR: "points_1h", 2 * HOUR: "points_1h"}
        for phase in ("before materialization", "after materialization"):
            for a, b in cases:
                start, end = base + timedelta(seconds=a), base + timedelta(seconds=b)
                for step, view in steps.items():
                    for sid, fn in [(gauge, f) for f in ("avg", "min", "max", "last", "rate")] + [(counter, "rate")]:
                        source, got = await st.query(sid, "num", start, end, step, fn)
                        want = await _raw(pool, db_backend, sid, start, end, step, fn)
                        assert source == view and want, (phase, a, b, step, fn)
                        assert _same(got, want), (phase, sid, a, b, step, fn, got[:3], want[:3])
            await _materialize(st, database_url)
        async with db(database_url) as conn:  # (the counter summaries were read: the whole-hour case needs them)
            assert await conn.fetchval("SELECT count(*) FROM points_1h WHERE series_id = $1 AND inc IS NOT NULL",
                                       counter) == 3
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_samples_arriving_hours_late_reach_the_aggregates(database_url: str, db_backend: str) -> None:
    """Ingest accepts samples up to ``retention_days`` old: a refresh must reach back that far, or the
    aggregate (which shows only materialized data below its watermark) would differ from raw points."""
    assert await migrate(database_url) == db_backend
    st, pool = await _open(database_url)
    try:
        hour0 = (time.time_ns() // (HOUR * S) - 6) * HOUR * S  # six whole hours ago: older than 3 h
        sid = await _write(st, hour0, HOUR)
        await _materialize(st, database_url)
        await _write(st, hour0 + 5 * S, HOUR, seq=2)  # late: between the first samples, in the same minutes
        start = datetime.fromtimestamp(hour0 / S, tz=timezone.utc)
        end = start + timedelta(hours=1)

        async def same() -> bool:  # (plain: a partition's insert count reaches the statistics within ~1 s)
            await _materialize(st, database_url)
            for fn in ("avg", "min", "max"):
                if not _same((await st.query(sid, "num", start, end, 60, fn))[1],
                             await _raw(pool, db_backend, sid, start, end, 60, fn)):
                    return False
            return True

        await eventually(same, timeout=20, what="the late samples in the 1 m aggregate")
        async with db(database_url) as conn:
            if db_backend == "timescale":  # the refresh policy itself reaches back to raw retention
                offset = await conn.fetchval(
                    "SELECT (config->>'start_offset')::interval FROM timescaledb_information.jobs "
                    "WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = 'points_1m'")
                assert offset == timedelta(days=settings.load(env={}).retention_days)
    finally:
        await pool.close()


async def _drop_after(conn: asyncpg.Connection, rel: str) -> timedelta:
    return await conn.fetchval(
        "SELECT (config->>'drop_after')::interval FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = $1", rel)


@pytest.mark.timescale
@pytest.mark.asyncio
async def test_timescale_keeps_each_resolution_for_its_setting_and_compresses_aggregates(database_url: str) -> None:
    extra = {"retention_days": 7, "retention_1m_days": 30, "retention_1h_days": 365, "compress_after_days": 1}
    assert await migrate(database_url, **extra) == "timescale"
    async with db(database_url) as conn:
        assert await _drop_after(conn, "points") == timedelta(days=7)
        assert await _drop_after(conn, "points_1m") == timedelta(days=30)
        assert await _drop_after(conn, "points_1h") == timedelta(days=365)
        compressed = {r["hypertable_name"] for r in await conn.fetch(
            "SELECT hypertable_name FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'")}
        assert compressed == {"points", "states", "points_1m", "points_1h"}
    assert await migrate(database_url, retention_1m_days=10) == "timescale"  # changed settings: re-applied
    async with db(database_url) as conn:
        assert await _drop_after(conn, "points_1m") == timedelta(days=10)


@pytest.mark.plain
@pytest.mark.asyncio
async def test_plain_rollups_are_kept_for_their_own_retention(database_url: str) -> None:
    assert await migrate(database_url) == "plain"
    st, pool = await _open(database_url, retention_1m_days=10, retention_1h_days=100)
    try:
        async with db(database_url) as conn:
            for table, age in (("points_1m", 9), ("points_1m", 11), ("points_1h", 99), ("points_1h", 101)):
                await conn.execute(
                    f"INSERT INTO {table} VALUES (1, date_trunc('hour', now()) - make_interval(days => $1), "
                    "1, 1, 1, 1, 1, 1, 1)", age)
        out = await st.maintain()
        assert (out["points_1m_pruned"], out["points_1h_pruned"]) == (1, 1), out
        async with db(database_url) as conn:
            ages = "SELECT array_agg(extract(day FROM date_trunc('hour', now()) - bucket)::int ORDER BY bucket) FROM "
            assert await conn.fetchval(ages + "points_1m") == [9]
            assert await conn.fetchval(ages + "points_1h") == [99, 9]  # (the 1 m row rolled up into 1 h)
            wm = await conn.fetchval("SELECT value::timestamptz FROM swtel_meta WHERE key = 'rollup:points_1m'")
            assert wm.second == 0 and wm <= datetime.now(timezone.utc) - timedelta(minutes=1)
    finally:
        await pool.close()


@pytest.mark.plain
@pytest.mark.asyncio
async def test_plain_rollups_answer_after_the_raw_data_is_gone(database_url: str) -> None:
    """Retention per resolution on plain PostgreSQL: once raw partitions are dropped, whole-minute and
    whole-hour queries still answer from the rollups, with the same values as before."""
    assert await migrate(database_url) == "plain"
    st, pool = await _open(database_url, retention_days=4)
    try:
        day0 = (time.time_ns() // (86_400 * S) - 2) * 86_400 * S  # the day before yesterday, 00:00 UTC
        sid = await _write(st, day0, 2 * HOUR)
        counter = await _write(st, day0, 2 * HOUR, seq=2, path="/counter")
        await st.maintain()  # rollups filled (the first round covers all of raw retention)
        start = datetime.fromtimestamp(day0 / S, tz=timezone.utc)
        end = start + timedelta(hours=2)
        later = {60: timedelta(minutes=1), HOUR: timedelta(0)}  # (on a bucket boundary; 1 m: with a look-back)
        before = {(s, step, fn): (await st.query(s, "num", start + later[step], end, step, fn))[1]
                  for s, fn in ((sid, "avg"), (counter, "rate")) for step in (60, HOUR)}
        assert len(before[sid, 60, "avg"]) == 119 and len(before[counter, 60, "rate"]) == 119
    finally:
        await pool.close()
    st, pool = await _open(database_url, retention_days=1)  # raw kept 1 day: that day's partition goes
    try:
        out = await st.maintain()
        assert any(p.startswith("points_p") for p in out["partitions_dropped"]), out
        async with db(database_url) as conn:
            assert await conn.fetchval("SELECT count(*) FROM points WHERE series_id = $1", sid) == 0
        for (s, step, fn), want in before.items():  # (rate: the first minute's increase needs the look-back)
            source, got = await st.query(s, "num", start + later[step], end, step, fn)
            assert source == ("points_1h" if step == HOUR else "points_1m") and _same(got, want), (step, fn, got[:2])
    finally:
        await pool.close()


async def _refresh_round(st: Storage, database_url: str) -> None:
    """One scheduled refresh, as the background work runs it (unlike ``_materialize``, which materializes
    everything): the plain maintenance round, or TimescaleDB's 1 m refresh policy run in the foreground."""
    if st.backend == "timescale":
        async with db(database_url) as conn:
            job = await conn.fetchval(
                "SELECT job_id FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = 'points_1m'")
            await timescale_refresh(conn, f"CALL run_job({int(job)})")
    else:
        await st.maintain()


@pytest.mark.asyncio
async def test_a_refresh_round_during_ingest_does_not_freeze_a_minute_still_receiving_rows(
        database_url: str, db_backend: str) -> None:
    """Samples reach the hub some time after their timestamps (agent batching, a NATS backlog). A refresh
    round between two batches of one minute must not materialize that minute from the first batch alone:
    buckets are materialized only once they ended ``aggregate_lag_s`` ago, newer ones are read raw."""
    assert await migrate(database_url) == db_backend
    st, pool = await _open(database_url)
    try:
        minute = (time.time_ns() // (60 * S) - 3) * 60 * S  # ended 2-3 minutes ago: less than aggregate_lag_s
        one = [wire.Sample("/c", float(v), minute + i * 10 * S) for i, v in enumerate((100, 200, 300))]
        two = [wire.Sample("/c", float(v), minute + (30 + i * 10) * S) for i, v in enumerate((50, 150, 250))]
        for seq, samples in ((1, one), (2, two)):
            batch = wire.TelemetryBatch(device="late", agent="a", token=1, seq=seq, subscription="s", samples=samples)
            assert (await st.write_telemetry([Item(batch, seq)])).points == 3
            if seq == 1:
                await _refresh_round(st, database_url)  # between the two batches of the minute
        (sid,) = [s["id"] for s in await st.list_series("late")]
        start = datetime.fromtimestamp(minute / S, tz=timezone.utc) - timedelta(minutes=2)
        end = start + timedelta(minutes=4)
        for fn in ("avg", "max", "rate"):
            source, got = await st.query(sid, "num", start, end, 60, fn)
            want = await _raw(pool, db_backend, sid, start, end, 60, fn)
            assert source == "points_1m" and want and _same(got, want), (fn, got, want)
    finally:
        await pool.close()


@pytest.mark.timescale
@pytest.mark.asyncio
async def test_timescale_answers_stay_exact_while_a_refresh_works_through_a_backlog(database_url: str) -> None:
    """TimescaleDB 2.19+ refreshes in batches, newest first by default: the watermark jumps to the window's
    end after the first batch and the real-time aggregate shows nothing for the older batches until they are
    done. Our policies refresh oldest first, so every answer during the refresh equals the raw one."""
    assert await migrate(database_url) == "timescale"
    st, pool = await _open(database_url)
    try:
        hour0 = (time.time_ns() // (HOUR * S) - 26) * HOUR * S
        sid = await _write(st, hour0, 25 * HOUR)  # 1,500 one-minute buckets: 150 batches of 10
        start = datetime.fromtimestamp(hour0 / S, tz=timezone.utc)
        end = start + timedelta(hours=25)
        want = await _raw(pool, "timescale", sid, start, end, 60, "avg")
        async with db(database_url) as conn:
            job = await conn.fetchval(
                "SELECT job_id FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = 'points_1m'")
            await conn.execute(f"SELECT alter_job({int(job)}, scheduled => false)")  # only our run below
            refresh = asyncio.create_task(timescale_refresh(conn, f"CALL run_job({int(job)})"))
            answers = []
            while not refresh.done():
                answers.append(_same((await st.query(sid, "num", start, end, 60, "avg"))[1], want))
            await refresh
        assert answers and all(answers), f"{answers.count(False)} of {len(answers)} answers differed from raw"
        assert _same((await st.query(sid, "num", start, end, 60, "avg"))[1], want)
    finally:
        await pool.close()


async def _run_refresh_policies(database_url: str) -> None:
    """Each refresh policy once, in the foreground (TimescaleDB), as the scheduler would."""
    async with db(database_url) as conn:
        for view in ("points_1m", "points_1h"):
            job = await conn.fetchval(
                "SELECT job_id FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = $1", view)
            await timescale_refresh(conn, f"CALL run_job({int(job)})")


@pytest.mark.asyncio
async def test_migration_8_keeps_the_buckets_only_the_aggregates_hold(
        database_url: str, db_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrading a schema-7 database: 1 m / 1 h buckets older than raw retention (their raw points are gone)
    answer as before; the buckets raw points still cover get counter summaries, so rate is exact there."""
    from support.history import ensure_series

    from swtel.hub.storage import migrate as migrate_mod
    from swtel.hub.storage import schema

    monkeypatch.setattr(migrate_mod, "MIGRATIONS", tuple(m for m in schema.MIGRATIONS if m.version <= 7))
    # (raw kept 30 days until the upgrade, else TimescaleDB's retention job drops the old points at once)
    assert await migrate(database_url, retention_days=30) == db_backend
    hour = time.time_ns() // (HOUR * S) * HOUR * S
    old, recent = hour - 4 * 86_400 * S, hour - 6 * HOUR * S  # past raw retention at the upgrade; within it
    async with db(database_url) as conn:
        sid = await ensure_series(conn, "upgrade", "/counters/x")
        rows = [(datetime.fromtimestamp((t0 + i * 10 * S) / S, tz=timezone.utc), sid, v)
                for t0 in (old, recent) for i, v in enumerate(_counters(2 * 360))]
        if db_backend == "plain":
            from swtel.hub.storage.plain import create_partition_sql

            for day in sorted({r[0].date() for r in rows}):
                await conn.execute(create_partition_sql("points", day))
        await conn.copy_records_to_table("points", records=rows, columns=["time", "series_id", "value"])
        if db_backend == "timescale":
            await refresh_aggregates(conn)
        else:  # the schema-7 rollup (hub/storage/plain.py before migration 8), watermarks at now
            await conn.execute(f"""
                INSERT INTO points_1m SELECT series_id, date_bin('1 minute', time, {ORIGIN}), avg(value), min(value),
                    max(value), (array_agg(value ORDER BY time))[1], (array_agg(value ORDER BY time DESC))[1],
                    sum(value), count(*) FROM points GROUP BY 1, 2""")
            await conn.execute(f"""
                INSERT INTO points_1h SELECT series_id, date_bin('1 hour', bucket, {ORIGIN}), sum(sum) / sum(n),
                    min(min), max(max), (array_agg(first ORDER BY bucket))[1],
                    (array_agg(last ORDER BY bucket DESC))[1], sum(sum), sum(n) FROM points_1m GROUP BY 1, 2""")
            await conn.execute("INSERT INTO swtel_meta VALUES ('rollup:points_1m', $1), ('rollup:points_1h', $1)",
                               datetime.fromtimestamp(hour / S, tz=timezone.utc).isoformat())
    ranges = {t0: (datetime.fromtimestamp(t0 / S, tz=timezone.utc),
                   datetime.fromtimestamp(t0 / S, tz=timezone.utc) + timedelta(hours=2)) for t0 in (old, recent)}
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        before = {(t0, step, fn): await _raw(pool, db_backend, sid, *ranges[t0], step, fn)
                  for t0 in (old, recent) for step in (60, HOUR) for fn in ("avg", "max", "rate")}
    finally:
        await pool.close()
    async with db(database_url) as conn:  # raw retention: the old day's points are gone
        await conn.execute("DELETE FROM points WHERE time < $1", ranges[old][1] + timedelta(hours=1))
    monkeypatch.undo()
    assert await migrate(database_url, retention_days=2) == db_backend  # applies migration 8
    if db_backend == "timescale":
        await _run_refresh_policies(database_url)
    st, pool = await _open(database_url, retention_days=2)
    try:
        for (t0, step, fn), want in before.items():
            source, got = await st.query(sid, "num", *ranges[t0], step, fn)
            assert source == ("points_1h" if step == HOUR else "points_1m"), (t0, step, fn)
            if t0 == old and fn == "rate":  # no counter summary was ever made for these buckets
                assert got == [], (step, got[:2])
            else:
                assert want and _same(got, want), (t0 == old, step, fn, got[:2], want[:2])
    finally:
        await pool.close()
