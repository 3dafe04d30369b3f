"""``swtel db migrate``: choose the backend once (probe TimescaleDB), then apply missing migrations.

The backend is recorded in ``swtel_meta`` at the first migrate and never switched afterwards: the data
layout of the two differs. Concurrent migrators (several hubs starting) serialise on an advisory lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg

from swtel.shared.settings import Settings

from .schema import MIGRATIONS, PLAIN, TIMESCALE, META, timescale_policies

log = logging.getLogger("swtel.hub.migrate")
MIGRATE_LOCK = 0x5377_7465_6C01  # pg_advisory_lock key shared by every migrator


@dataclass
class MigrateResult:
    backend: str
    applied: list[int] = field(default_factory=list)
    policies: int = 0


async def probe_timescale(conn: asyncpg.Connection) -> bool:
    """True when ``CREATE EXTENSION timescaledb`` works here (installed and preloaded)."""
    available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not available:
        return False
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as e:  # e.g. not in shared_preload_libraries
        log.warning("TimescaleDB is installed but cannot be enabled (%s); using plain PostgreSQL", e)
        return False
    return True


async def recorded_backend(conn: asyncpg.Connection) -> str | None:
    exists = await conn.fetchval("SELECT to_regclass('swtel_meta') IS NOT NULL")
    if not exists:
        return None
    return await conn.fetchval("SELECT value FROM swtel_meta WHERE key = 'backend'")


async def migrate(conn: asyncpg.Connection, settings: Settings, *, prefer: str | None = None) -> MigrateResult:
    """Apply every missing migration; idempotent. ``prefer`` forces a backend for a new database (tests)."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
    try:
        await conn.execute(META)
        backend = await recorded_backend(conn)
        if backend is None:
            backend = prefer or (TIMESCALE if await probe_timescale(conn) else PLAIN)
            await conn.execute("INSERT INTO swtel_meta (key, value) VALUES ('backend', $1)", backend)
        result = MigrateResult(backend)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in MIGRATIONS:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql(backend, chunk_hours=settings.chunk_interval_hours))
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
            result.applied.append(m.version)
            log.info("applied migration %d (%s) on %s", m.version, m.name, backend)
        if backend == TIMESCALE:
            statements = timescale_policies(
                retention_days=settings.retention_days,
                compress_after_days=settings.compress_after_days,
                aggregate_retention_days=settings.aggregate_retention_days,
            )
            async with conn.transaction():
                for sql in statements:
                    await conn.execute(sql)
            result.policies = len(statements)
        return result
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)
