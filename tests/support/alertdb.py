"""An asyncpg pool on a test database with the alert schema, and helpers to read alert state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def alert_pool(database_url: str, size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    from swtel.hub.alerts.db import ensure_schema

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=size)
    try:
        async with pool.acquire() as conn:
            await ensure_schema(conn)
        yield pool
    finally:
        await pool.close()


async def transitions(pool: asyncpg.Pool, rule: str | None = None) -> list[tuple[str, str, str, str]]:
    """(device, path, from_state, to_state) of every recorded transition, oldest first."""
    rows = await pool.fetch(
        "SELECT device, path, from_state, to_state FROM alert_history WHERE $1::text IS NULL OR rule_name = $1 "
        "ORDER BY id", rule)
    return [tuple(r) for r in rows]


async def states(pool: asyncpg.Pool) -> dict[tuple[str, str], str]:
    rows = await pool.fetch("SELECT device, path, state FROM alert_instances")
    return {(r["device"], r["path"]): r["state"] for r in rows}
