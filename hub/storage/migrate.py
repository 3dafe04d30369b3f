"""``swtel db migrate``: choose the backend once (probe TimescaleDB), then apply missing migrations.

The backend is recorded in ``swtel_meta`` at the first migrate and never switched afterwards: the data
layout of the two differs. Concurrent migrators (several hubs starting) serialise on an advisory lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg

from swtel.shared.errors import UserError
from swtel.shared.settings import Settings

from .schema import MIGRATIONS, PLAIN, TIMESCALE, META, timescale_policies

log = logging.getLogger("swtel.hub.migrate")
MIGRATE_LOCK = 0x5377_7465_6C01  # pg_advisory_lock key shared by every migrator


@dataclass
class MigrateResult:
    backend: str
    applied: list[int] = field(default_factory=list)
    policies: int = 0
    warning: str = ""  # why TimescaleDB was not used although it is installed (first migrate only)


ENABLE_HINT = ("to use TimescaleDB, add timescaledb to shared_preload_libraries in postgresql.conf, restart "
               "PostgreSQL and migrate a new database")


def _preloaded(setting: str) -> bool:
    return "timescaledb" in {x.strip().strip('"') for x in setting.split(",")}


async def probe_timescale(conn: asyncpg.Connection) -> tuple[bool, str]:
    """(usable, why not): whether ``CREATE EXTENSION timescaledb`` works here. Installed but not preloaded
    (the normal state right after installing the package) is checked *before* trying, because TimescaleDB
    then ends the session with a FATAL error. A refusal is a fallback to plain PostgreSQL with a one-line
    reason; only a session lost while trying is an error (nothing can be migrated on it)."""
    available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not available:
        return False, ""
    if not _preloaded(await conn.fetchval("SELECT current_setting('shared_preload_libraries')")):
        return False, f"TimescaleDB is installed but not preloaded: using plain PostgreSQL ({ENABLE_HINT})"
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as e:  # e.g. no privilege to create it
        return False, f"TimescaleDB cannot be enabled ({str(e).splitlines()[0]}): using plain PostgreSQL"
    except (OSError, asyncpg.InterfaceError) as e:  # the server closed the session
        raise UserError(f"the database connection was lost while enabling TimescaleDB ({e}); nothing was "
                        f"migrated") from None
    return True, ""


def _version(text: str | None) -> tuple[int, ...]:
    """'2.28.3' -> (2, 28, 3); a suffix such as '-dev' is ignored."""
    out = []
    for part in (text or "0").split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


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
        warning = ""
        if backend is None:
            usable = False
            if prefer is None:
                usable, warning = await probe_timescale(conn)
                if warning:
                    log.info("%s", warning)  # returned to the caller, which shows it (swtel db migrate: stderr)
            backend = prefer or (TIMESCALE if usable else PLAIN)
            await conn.execute("INSERT INTO swtel_meta (key, value) VALUES ('backend', $1)", backend)
        result = MigrateResult(backend, warning=warning)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in MIGRATIONS:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql(backend, chunk_hours=settings.chunk_interval_hours,
                                         retention_days=settings.retention_days))
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
            result.applied.append(m.version)
            log.info("applied migration %d (%s) on %s", m.version, m.name, backend)
        if backend == TIMESCALE:
            version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            statements = timescale_policies(
                batched_refresh=_version(version) >= (2, 19),
                retention_days=settings.retention_days,
                compress_after_days=settings.compress_after_days,
                retention_1m_days=settings.retention_1m_days,
                retention_1h_days=settings.retention_1h_days,
                aggregate_lag_s=settings.aggregate_lag_s,
            )
            async with conn.transaction():
                for sql in statements:
                    await conn.execute(sql)
            result.policies = sum(" add_" in sql for sql in statements)  # (each after its remove_)
        return result
    finally:
        if not conn.is_closed():  # a lost session released its lock with it
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)
