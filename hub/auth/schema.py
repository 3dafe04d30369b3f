"""The authentication tables (``schema.sql``), applied idempotently.

``ensure_schema`` is what the hub's startup, ``swtel user …`` and the tests call until the hub's
versioned migrations include ``schema.sql`` (it is plain SQL so it can be dropped into that sequence).
"""

from __future__ import annotations

from importlib.resources import files

import asyncpg

SCHEMA_SQL = files(__package__).joinpath("schema.sql").read_text()

# Concurrent `CREATE TABLE IF NOT EXISTS` from two hubs starting at once can still collide in the
# catalog; one transaction-scoped advisory lock serialises them. The key is arbitrary but fixed.
_LOCK_KEY = 0x5357_4155  # "SWAU"


async def ensure_schema(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(SCHEMA_SQL)
