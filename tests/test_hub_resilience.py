"""Zero loss, zero duplicates: the hub killed with -9 mid-batch, the database crashed and restarted, NATS
restarted. Rows are counted against what was published."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from support.hubs import hub_proc as _hub_proc
from support.natsserver import NatsServer
from support.pgproc import PrivatePostgres
from support.ports import free_port
from support.telemetry import hub_settings, make_batch, migrate, point_counts, publish
from support.waits import eventually
from swtel.hub.app import create_app

PATHS = 10
pytestmark = pytest.mark.slow


async def _quiet(_: Exception) -> None:
    pass


async def publish_all(url: str, device: str, seqs: range, *, pace: float = 0.0) -> None:
    """Publish batches; a publish that fails (server restarting) is retried with the same Nats-Msg-Id."""
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=_quiet)
    js = nc.jetstream(timeout=2)
    try:
        for seq in seqs:
            batch = make_batch(device, seq, paths=PATHS)
            while True:
                try:
                    await publish(js, batch)
                    break
                except Exception:  # noqa: BLE001 (server down or no JetStream yet: try again)
                    await asyncio.sleep(0.2)
            if pace:
                await asyncio.sleep(pace)
    finally:
        await nc.close()


async def stored_exactly(database_url: str, expected: int, timeout: float) -> None:
    async def probe() -> tuple[int, int] | None:
        try:
            counts = await point_counts(database_url)
        except (OSError, asyncpg.PostgresError):
            return None
        return counts if counts[0] >= expected else None

    counts = await eventually(probe, timeout=timeout, what=f"{expected} points stored")
    assert counts == (expected, expected), f"rows, distinct (series, time): {counts}; expected {expected}"


@pytest.mark.asyncio
async def test_hub_killed_with_sigkill_mid_batch_loses_and_duplicates_nothing(
    bootstrapped: str, database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    log = tmp_path / "hub.log"
    total_batches = 3000
    await publish_all(bootstrapped, "sw-kill", range(1, total_batches + 1))
    expected = total_batches * PATHS
    port = free_port()
    hub = _hub_proc(bootstrapped, database_url, port, log)
    try:
        async def some() -> int | None:
            n = (await point_counts(database_url))[0]
            return n if 2000 <= n else None

        seen = await eventually(some, timeout=60, what="the first hub to store some points")
        hub.send_signal(signal.SIGKILL)
        hub.wait(10)
        at_kill = (await point_counts(database_url))[0]
        assert seen <= at_kill < expected, "the hub was not killed mid-ingest; the test proves nothing"
        hub = _hub_proc(bootstrapped, database_url, port, log)
        try:
            await stored_exactly(database_url, expected, timeout=90)
        except AssertionError as e:
            raise AssertionError(f"{e}\nhub log:\n{log.read_text()[-3000:]}") from None
        async with _conn(database_url) as conn:
            assert await conn.fetchval("SELECT count(*) FROM ingest_marks") == total_batches
    finally:
        hub.kill()
        hub.wait(10)


class _conn:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> asyncpg.Connection:
        self.c = await asyncpg.connect(self.url)
        return self.c

    async def __aexit__(self, *exc: object) -> None:
        await self.c.close()


@pytest.fixture
def private_pg(pg_admin_url: str) -> Iterator[PrivatePostgres]:
    """A crashable server like the test server (same binaries and preload: the same storage backend)."""
    from support.backend import server_binaries

    bindir, preload = asyncio.run(server_binaries(pg_admin_url))
    pg = PrivatePostgres(bindir, preload).init()
    pg.start()
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest_asyncio.fixture
async def private_db(private_pg: PrivatePostgres) -> str:
    async def up() -> bool:
        try:
            c = await asyncpg.connect(private_pg.url, timeout=2)
        except (OSError, asyncpg.PostgresError):
            return False
        await c.close()
        return True

    await eventually(up, timeout=30, what="the private PostgreSQL")
    return private_pg.url


@pytest.mark.asyncio
async def test_database_crash_and_restart_loses_and_duplicates_nothing(
    bootstrapped: str, private_pg: PrivatePostgres, private_db: str, db_backend: str
) -> None:
    assert await migrate(private_db) == db_backend  # the crashed server runs the suite's backend
    app = create_app(hub_settings(bootstrapped, private_db, hub_fetch_batch=32, hub_ack_wait_s=3), auth=False)
    total = 600
    async with AsyncTestClient(app, timeout=10) as client:
        publisher = asyncio.create_task(publish_all(bootstrapped, "sw-db", range(1, total + 1), pace=0.005))

        async def some() -> bool:
            return (await point_counts(private_db))[0] > 500

        await eventually(some, timeout=30, what="points before the crash")
        private_pg.crash()

        async def unhealthy() -> dict | None:
            r = await client.get("/api/health")
            return r.json() if r.status_code == 503 else None

        body = await eventually(unhealthy, timeout=20, what="/api/health to report 503")
        assert body["database"] is False and body["nats"] is True
        await asyncio.sleep(1.0)  # publishing goes on while the database is down (not a synchronisation)
        private_pg.start()
        await publisher
        await stored_exactly(private_db, total * PATHS, timeout=60)

        async def healthy() -> bool:
            r = await client.get("/api/health")
            return r.status_code == 200 and r.json()["ingest"]

        await eventually(healthy, timeout=20, what="/api/health back to 200 with ingest running")
        assert "swtel_hub_db_write_errors_total 0" not in (await client.get("/metrics")).text


@pytest.mark.asyncio
async def test_nats_restart_loses_and_duplicates_nothing(
    nats_server: NatsServer, bootstrapped: str, database_url: str
) -> None:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url, hub_fetch_batch=32, hub_ack_wait_s=3), auth=False)
    total = 600
    async with AsyncTestClient(app, timeout=10) as client:
        publisher = asyncio.create_task(publish_all(bootstrapped, "sw-nats", range(1, total + 1), pace=0.005))

        async def some() -> bool:
            return (await point_counts(database_url))[0] > 500

        await eventually(some, timeout=30, what="points before the restart")
        await asyncio.to_thread(nats_server.restart)
        await publisher
        await stored_exactly(database_url, total * PATHS, timeout=60)

        async def healthy() -> bool:
            return (await client.get("/api/health")).status_code == 200

        await eventually(healthy, timeout=20, what="/api/health back to 200")
