"""Storage on the real test database, on whichever backend it offers (plain PostgreSQL or TimescaleDB,
tests/support/backend.py): migrations, exactly-once writes, fencing, counter rates across resets and
wraps, aggregate answers equal to raw ones over exactly [start, end), retention per resolution, job
health and `swtel db status`; backend-specific upkeep is marked and skipped on the other backend."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import asyncpg
import pytest

from support.telemetry import db, make_batch, migrate
from swtel.hub.storage import BACKENDS, Item, Storage, open_storage
from swtel.hub.storage import migrate as migrate_mod
from swtel.hub.storage.copybin import POINT_PACK, point_run
from swtel.hub.storage.plain import PlainStorage, create_partition_sql
from swtel.hub.storage.query import aggregate_for, timescale_plan
from swtel.hub.storage.schema import MIGRATIONS, TIMESCALE, timescale_policies
from swtel.shared import settings, wire
from swtel.shared.errors import UserError

S = 1_000_000_000


async def _storage(database_url: str, **extra: object) -> tuple[Storage, asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    st = await open_storage(pool, settings.load({"database_url": database_url, **extra}, env={}))
    async with db(database_url) as conn:
        assert isinstance(st, BACKENDS[await conn.fetchval("SELECT value FROM swtel_meta WHERE key = 'backend'")])
    return st, pool


@pytest.mark.asyncio
async def test_migrate_is_idempotent_and_a_hub_refuses_an_unmigrated_database(database_url: str, db_backend: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        with pytest.raises(UserError, match="swtel db migrate"):
            await open_storage(pool, settings.load(env={}))
        assert await migrate(database_url) == db_backend
        assert await migrate(database_url) == db_backend
        async with db(database_url) as conn:
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)
            assert await conn.fetchval("SELECT value FROM swtel_meta WHERE key = 'backend'") == db_backend
            relkinds = {r["relname"]: r["relkind"] for r in await conn.fetch(
                "SELECT relname, relkind::text FROM pg_class WHERE relname = ANY('{points,points_1m,points_1h}')")}
        # plain: partitioned raw table and rollup tables; TimescaleDB: a hypertable and continuous aggregates
        assert relkinds == ({"points": "p", "points_1m": "r", "points_1h": "r"} if db_backend == "plain"
                            else {"points": "r", "points_1m": "v", "points_1h": "v"}), relkinds
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_redelivered_batches_are_skipped_and_any_genuine_token_stored(database_url: str) -> None:
    await migrate(database_url)
    st, pool = await _storage(database_url)
    try:
        b1, b2 = make_batch("sw1", 1, token=3, paths=4), make_batch("sw1", 2, token=3, paths=4)
        r = await st.write_telemetry([Item(b1, 1), Item(b2, 2), Item(b1, 1)])
        assert (r.batches, r.points, r.duplicates) == (2, 8, 1)
        r = await st.write_telemetry([Item(b2, 2)])  # a redelivery after commit: nothing stored twice
        assert (r.batches, r.points, r.duplicates) == (0, 0, 1)
        newer = make_batch("sw1", 1, token=9, paths=4)
        older = make_batch("sw1", 3, token=3, paths=4)
        # fencing is decided before storage (hub/fencing.py): a genuine older holder's batch is stored even
        # after a newer holder's; samples past its tenure's cutoff are not
        r = await st.write_telemetry([Item(newer, 3), Item(older, 4)])
        assert (r.batches, r.points) == (2, 8)
        late = make_batch("sw1", 4, token=3, paths=4, ts_ns=time.time_ns())
        r = await st.write_telemetry([Item(late, 5, cutoff_ns=late.samples[0].ts - 1)])
        assert (r.batches, r.points, r.dropped) == (1, 0, {"after_tenure": 4})
        mixed = wire.TelemetryBatch(device="sw2", agent="a", token=1, seq=1, subscription="s", samples=[
            wire.Sample("/state/oper-status", "UP\x00", time.time_ns()),
            wire.Sample("/state/enabled", True, time.time_ns()),
            wire.Sample("/state/nothing", None, time.time_ns()),
            wire.Sample("/state/ancient", 1.0, 1_000_000_000),
        ])
        r = await st.write_telemetry([Item(mixed, 6)])
        assert (r.points, r.states, r.dropped) == (1, 1, {"null_value": 1, "out_of_range": 1})
        async with db(database_url) as conn:
            assert await conn.fetchval("SELECT count(*) FROM points") == 17  # 4 batches of 4 and one boolean
            assert await conn.fetchval("SELECT value FROM states") == "UP"
            assert await conn.fetchval("SELECT kind FROM series WHERE name = '/state/oper-status'") == "str"
    finally:
        await pool.close()


def test_a_run_of_points_is_the_rows_pack_would_give_and_anything_else_goes_sample_by_sample() -> None:
    t = 123_456_789_012_345
    ids = [1, 2, 2**31 - 1, 70_000, 5, 6]
    values = [0, -1, 2**62 + 1, 1.5e300, True, -0.0]
    assert point_run(t, ids, values) == b"".join(POINT_PACK(3, 8, t, 4, i, 8, v) for i, v in zip(ids, values))
    assert point_run(t, [], []) == b""
    for bad_ids, bad_values in (([1, None], [1, 2]), ([1, 2], [1, "UP"]), ([1, 2], [1, None]), ([1], [1, 2])):
        with pytest.raises(TypeError):
            point_run(t, bad_ids, bad_values)


async def _rates(st: Storage, values: list[float], step_s: float = 60.0) -> list[float]:
    t0 = (time.time_ns() // (60 * S) - 30) * 60 * S
    samples = [wire.Sample("/c", v, t0 + i * 10 * S) for i, v in enumerate(values)]
    await st.write_telemetry([Item(wire.TelemetryBatch(device="r", agent="a", token=1, seq=int(t0 // S),
                                                      subscription="s", samples=samples), 1)])
    (sid,) = [s["id"] for s in await st.list_series("r")]
    start = datetime.fromtimestamp(t0 / S, tz=timezone.utc)
    source, points = await st.query(sid, "num", start, start + timedelta(seconds=10 * len(values)), step_s, "rate")
    assert source == "points"
    return [v for _, v in points]


@pytest.mark.asyncio
async def test_rate_across_a_counter_reset_and_a_32_bit_wrap(database_url: str) -> None:
    await migrate(database_url)
    st, pool = await _storage(database_url)
    try:
        # +100 per 10 s, then a reboot (reset to 0), then +100 per 10 s again; one bucket per sample
        rates = await _rates(st, [1000, 1100, 1200, 1300, 0, 100, 200], step_s=10)
        assert rates == [10.0, 10.0, 10.0, 0.0, 10.0, 10.0], rates  # reset bucket: its value (0) / 10 s
        assert min(rates) >= 0
    finally:
        await pool.close()
    async with db(database_url) as conn:
        await conn.execute("TRUNCATE points, series, ingest_marks CASCADE")
    st, pool = await _storage(database_url)
    try:
        top = 2**32
        rates = await _rates(st, [top - 250, top - 150, top - 50, 50, 150], step_s=10)
        assert rates == [10.0, 10.0, 10.0, 10.0], rates  # the wrap counts as +100, not a reset
    finally:
        await pool.close()


@pytest.mark.plain
@pytest.mark.asyncio
async def test_partitions_are_created_ahead_and_dropped_after_retention(database_url: str) -> None:
    await migrate(database_url)
    st, pool = await _storage(database_url, retention_days=3, partitions_ahead_days=2)
    assert isinstance(st, PlainStorage)
    try:
        today = date(2030, 6, 15)
        out = await st.maintain_at(today)
        assert "points_p20300614" in out["partitions_created"] and "states_p20300617" in out["partitions_created"]
        parts = await st.partitions()
        assert parts["points"] == [today + timedelta(days=i) for i in range(-1, 3)]
        async with db(database_url) as conn:
            await conn.execute("INSERT INTO points VALUES ('2030-06-14 12:00+00', 1, 1.0), ('2030-06-16 12:00+00', 1, 2.0)")
        out = await st.maintain_at(today + timedelta(days=4))  # 2030-06-19: keeps 06-16 onwards
        assert out["partitions_dropped"] == ["points_p20300614", "points_p20300615", "states_p20300614",
                                             "states_p20300615"]
        async with db(database_url) as conn:
            assert await conn.fetchval("SELECT count(*) FROM points") == 1  # the 06-14 row left with its day
        assert (await st.maintain_at(today + timedelta(days=4)))["partitions_dropped"] == []  # idempotent
        async with db(database_url) as conn:  # fencing facts and dead letters older than needed go too
            await conn.execute("INSERT INTO lease_tenures (device, token, agent, started, ended) VALUES "
                               "('sw1', 1, 'a1', now() - interval '30 days', now() - interval '29 days'), "
                               "('sw1', 2, 'a2', now() - interval '29 days', NULL)")
            await conn.execute("INSERT INTO dead_letters (at, subject, reason) VALUES "
                               "(now() - interval '30 days', 's', 'malformed'), (now(), 's', 'malformed')")
        out = await st.maintain()  # the hub's periodic round: today's partitions, marks and events pruned
        assert out["marks_pruned"] == 0 and out["events_pruned"] == 0
        assert out["tenures_pruned"] == 1 and out["dead_letters_pruned"] == 1  # the current tenure stays
        real_today = datetime.now(timezone.utc).date()
        assert real_today in (await st.partitions())["points"]
        # a day without a partition is created on demand when data for it arrives
        assert create_partition_sql("points", date(2030, 1, 2)).endswith(
            "FROM ('2030-01-02 00:00:00+00') TO ('2030-01-03 00:00:00+00')")
    finally:
        await pool.close()


def test_timescale_statements_are_chosen_when_the_extension_is_reported_present() -> None:
    sql = MIGRATIONS[0].sql(TIMESCALE, chunk_hours=6)
    assert "SELECT create_hypertable('points', by_range('time', INTERVAL '6 hours'))" in sql
    assert "timescaledb.compress_segmentby = 'series_id'" in sql
    assert "CREATE MATERIALIZED VIEW points_1m WITH (timescaledb.continuous" in sql
    assert "time_bucket(INTERVAL '1 hour', bucket)" in sql and "PARTITION BY RANGE" not in sql
    assert "PARTITION BY RANGE (time)" in MIGRATIONS[0].sql("plain") and "create_hypertable" not in MIGRATIONS[0].sql("plain")
    policies = timescale_policies(retention_days=30, compress_after_days=2, retention_1m_days=90, retention_1h_days=700)
    assert "SELECT add_retention_policy('points', INTERVAL '30 days')" in policies
    assert "SELECT add_retention_policy('points_1m', INTERVAL '90 days')" in policies
    assert "SELECT add_retention_policy('points_1h', INTERVAL '700 days')" in policies
    assert "SELECT add_compression_policy('points', INTERVAL '2 days')" in policies
    assert "SELECT add_compression_policy('points_1h', compress_after => INTERVAL '2 days')" in policies
    # the refresh windows reach back as far as ingest accepts samples
    assert any("'points_1m', start_offset => INTERVAL '30 days'" in p for p in policies)
    assert any(p.startswith("SELECT add_continuous_aggregate_policy('points_1m'") for p in policies)
    # a bucket is materialized once it ended aggregate_lag_s ago (default 300 s; at least one bucket)
    assert any("'points_1m'" in p and "end_offset => INTERVAL '300 seconds'" in p for p in policies)
    assert any("'points_1h'" in p and "end_offset => INTERVAL '3600 seconds'" in p for p in policies)
    # refresh batches oldest first: newest first, a real-time aggregate misses data while a backlog refreshes
    assert all("refresh_newest_first => false" in p for p in policies if "add_continuous_aggregate_policy" in p)
    assert aggregate_for(300) == ("points_1m", 60) and aggregate_for(7200) == ("points_1h", 3600)
    assert aggregate_for(90) is None and aggregate_for(10) is None
    assert aggregate_for(300, "rate") == ("points_1m", 60)  # exact from the counter summaries (migration 8)
    assert timescale_plan(kind="num", fn="avg", step_s=3600).source == "points_1h"
    assert "sum(sum) / sum(n)" in timescale_plan(kind="num", fn="avg", step_s=120).sql
    assert timescale_plan(kind="num", fn="max", step_s=15).source == "points"
    assert timescale_plan(kind="num", fn="rate", step_s=120).source == "points_1m"
    assert timescale_plan(kind="num", fn="rate", step_s=90).source == "points"
    assert "time_bucket(" in timescale_plan(kind="num", fn="max", step_s=15).sql
    assert "date_bin(" in BACKENDS["plain"].plan(BACKENDS["plain"].__new__(BACKENDS["plain"]), kind="num",
                                                 fn="max", step_s=15).sql


@pytest.mark.asyncio
async def test_timescale_probe_matches_the_test_database(database_url: str, db_backend: str) -> None:
    """The probe says TimescaleDB is usable exactly where the suite detected it (installed and preloaded)."""
    conn = await asyncpg.connect(database_url)
    try:
        usable, why = await migrate_mod.probe_timescale(conn)
        assert usable is (db_backend == "timescale") and why == "", why
    finally:
        await conn.close()
