"""Job health from each job's latest runs, and `swtel db status`, on whichever backend the test database
offers; and backend detection that never crashes: TimescaleDB installed but not preloaded falls back to
plain PostgreSQL with a one-line warning that says how to enable it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from support.telemetry import db, migrate
from support.waits import eventually
from swtel.hub.metrics import HubMetrics
from swtel.hub.storage import open_storage
from swtel.hub.storage.schema import MIGRATIONS
from swtel.shared import settings


@pytest.mark.asyncio
async def test_db_status_reports_schema_backend_storage_and_jobs(swtel: Any, database_url: str, db_backend: str) -> None:
    r = await asyncio.to_thread(swtel, "db", "status", "--db", database_url)
    assert r.code == 2 and "run `swtel db migrate` first" in r.err and "Traceback" not in r.err, r
    assert await migrate(database_url) == db_backend
    r = await asyncio.to_thread(swtel, "db", "status", "--db", database_url, "--json")
    st = json.loads(r.out)
    assert st["backend"] == db_backend and st["schema_version"] == MIGRATIONS[-1].version
    assert set(st["aggregates"]) == {"points_1m", "points_1h"}
    assert r.code == (1 if any(j["consecutive_failures"] for j in st["jobs"]) else 0), r
    if db_backend == "timescale":
        assert st["timescaledb_version"]
        # compression and retention of raw data and both aggregates, refresh of both aggregates
        by = {(j["proc"], j["target"]) for j in st["jobs"]}
        assert {("policy_compression", t) for t in ("points", "states", "points_1m", "points_1h")} <= by, by
        assert {("policy_retention", t) for t in ("points", "states", "points_1m", "points_1h")} <= by, by
        assert {("policy_refresh_continuous_aggregate", t) for t in ("points_1m", "points_1h")} <= by, by
        assert all(j["name"].endswith(f"[{j['job_id']}]") for j in st["jobs"]), st["jobs"]
    else:
        (job,) = st["jobs"]
        assert job["last_run_status"] is None and job["consecutive_failures"] == 0  # never ran yet
        assert st["chunks"]["points"]["total"] == 0 and st["compression"] == {}
    r = await asyncio.to_thread(swtel, "db", "status", "--db", database_url)
    assert f"backend {db_backend}" in r.out and "points_1m: complete up to" in r.out, r


@pytest.mark.plain
@pytest.mark.asyncio
async def test_plain_maintenance_health_follows_its_latest_runs(database_url: str) -> None:
    """A failing round makes the job failing (health and metrics name it, with its error); the next
    successful round makes it healthy again: one failure is not "degraded" for good."""
    assert await migrate(database_url) == "plain"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        st = await open_storage(pool, settings.load({"database_url": database_url}, env={}))
        await st.maintain()
        assert await st.job_failures() == []
        async with db(database_url) as conn:  # a broken watermark: the rollup refresh fails for real
            await conn.execute("UPDATE swtel_meta SET value = 'not a time' WHERE key = 'rollup:points_1m'")
        for n in (1, 2):
            with pytest.raises(asyncpg.PostgresError):
                await st.maintain()
            (failing,) = await st.job_failures()
            assert failing["consecutive_failures"] == n and "not a time" in failing["last_error"], failing
            assert failing["name"].startswith("swtel maintenance") and failing["next_start"]
        metrics = HubMetrics()
        metrics.set_jobs(await st.job_failures())
        text = metrics.render()
        assert "swtel_hub_timescaledb_job_failures 1" in text
        assert 'swtel_hub_db_job_consecutive_failures{job="swtel maintenance (partitions, retention, rollups)"} 2' in text
        async with db(database_url) as conn:
            await conn.execute("DELETE FROM swtel_meta WHERE key = 'rollup:points_1m'")
        await st.maintain()
        assert await st.job_failures() == []
        (job,) = await st.jobs()
        assert (job["last_run_status"], job["total_runs"], job["total_failures"]) == ("Success", 4, 2), job
    finally:
        await pool.close()


@pytest.mark.timescale
@pytest.mark.asyncio
async def test_timescale_job_health_comes_from_the_latest_runs(database_url: str) -> None:
    """A real background job's runs as TimescaleDB records them: a job is failing exactly while its latest
    run failed, and then its name, error and next start are reported."""
    assert await migrate(database_url) == "timescale"
    async with db(database_url) as conn:
        await conn.execute("CREATE TABLE flip (fail boolean NOT NULL)")
        await conn.execute("INSERT INTO flip VALUES (true)")
        await conn.execute("""
            CREATE PROCEDURE swtel_test_job(job_id int, config jsonb) LANGUAGE plpgsql AS $$
            BEGIN IF (SELECT fail FROM flip) THEN RAISE EXCEPTION 'flip says fail'; END IF; END $$""")
        job_id = await conn.fetchval("SELECT add_job('swtel_test_job', INTERVAL '1 hour', initial_start => now())")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        st = await open_storage(pool, settings.load({"database_url": database_url}, env={}))

        async def ran() -> dict | None:
            job = next(j for j in await st.jobs() if j["job_id"] == job_id)
            return job if job["total_runs"] >= 1 and job["last_run_status"] else None

        job = await eventually(ran, timeout=60, what="the background scheduler to run the test job")
        # >= 1: the scheduler may have retried it already by the time we look
        assert job["last_run_status"] == "Failed" and job["consecutive_failures"] >= 1, job
        assert "flip says fail" in job["last_error"] and job["name"].endswith(f"[{job_id}]"), job
        assert any(f["job_id"] == job_id and "flip says fail" in f["last_error"] for f in await st.job_failures())
    finally:
        await pool.close()


@pytest.mark.timescale
@pytest.mark.asyncio
async def test_installed_but_not_preloaded_falls_back_to_plain_with_one_line(swtel: Any, pg_admin_url: str) -> None:
    """The state right after installing the package: `swtel db migrate` uses plain PostgreSQL and says, in
    one line, how to enable TimescaleDB; no traceback, and the hub then runs on plain."""
    from support.backend import server_binaries
    from support.pgproc import PrivatePostgres

    bindir, _ = await server_binaries(pg_admin_url)
    pg = PrivatePostgres(bindir, preload="")  # the same installation, TimescaleDB not preloaded
    await asyncio.to_thread(pg.init)
    await asyncio.to_thread(pg.start)
    try:
        async def up() -> bool:
            try:
                await (await asyncpg.connect(pg.url, timeout=2)).close()
                return True
            except (OSError, asyncpg.PostgresError):
                return False

        await eventually(up, timeout=30, what="the private PostgreSQL")
        async with db(pg.url) as conn:
            assert await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == 1
        r = await asyncio.to_thread(swtel, "db", "migrate", "--db", pg.url)
        assert r.code == 0 and "backend plain" in r.out and "Traceback" not in r.err, r
        (line,) = r.err.strip().splitlines()
        assert "not preloaded" in line and "shared_preload_libraries" in line, line
        async with db(pg.url) as conn:  # nothing of TimescaleDB was created
            assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
    finally:
        await asyncio.to_thread(pg.cleanup)
