"""Storage backends: TimescaleDB when the extension works at ``swtel db migrate``, plain PostgreSQL
otherwise. The choice is recorded in ``swtel_meta`` and read back by :func:`open_storage`."""

from __future__ import annotations

import asyncpg

from swtel.shared.errors import UserError
from swtel.shared.settings import Settings

from .base import Item, Storage, WriteResult
from .migrate import recorded_backend
from .plain import PlainStorage
from .schema import MIGRATIONS, PLAIN, TIMESCALE
from .timescale import TimescaleStorage

BACKENDS: dict[str, type[Storage]] = {PLAIN: PlainStorage, TIMESCALE: TimescaleStorage}


async def open_storage(pool: asyncpg.Pool, settings: Settings) -> Storage:
    """The backend recorded at migrate time; a database that is not (fully) migrated is a clear error."""
    async with pool.acquire() as conn:
        backend = await recorded_backend(conn)
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations") if backend else None
    if backend is None or version is None:
        raise UserError("the database has no switch-telemetry schema: run `swtel db migrate` first")
    if version < MIGRATIONS[-1].version:
        raise UserError(f"the database schema is at version {version}, this hub needs "
                        f"{MIGRATIONS[-1].version}: run `swtel db migrate`")
    return BACKENDS[backend](pool, settings)


__all__ = ["Item", "Storage", "WriteResult", "open_storage", "PlainStorage", "TimescaleStorage", "BACKENDS"]
