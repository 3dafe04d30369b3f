"""Which storage backend the test database offers: the suite runs on either and asserts that backend's
behaviour. ``timescale`` when the server has TimescaleDB installed *and* preloaded (then `swtel db
migrate` chooses it), else ``plain``. Tests for one backend only carry ``@pytest.mark.timescale`` or
``@pytest.mark.plain`` and are skipped, with the reason, on the other (tests/conftest.py)."""

from __future__ import annotations

import asyncpg

PLAIN = "plain"
TIMESCALE = "timescale"


async def server_backend(admin_url: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
        preload = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
    finally:
        await conn.close()
    return TIMESCALE if available and "timescaledb" in preload else PLAIN


async def server_binaries(admin_url: str) -> tuple[str | None, str]:
    """(bindir, shared_preload_libraries) of the test server, for a private server of the same kind
    (tests/support/pgproc.py); bindir is None when the server is not on this machine."""
    conn = await asyncpg.connect(admin_url)
    try:
        bindir = await conn.fetchval("SELECT setting FROM pg_config WHERE name = 'BINDIR'")
        preload = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
    finally:
        await conn.close()
    return bindir, preload
