"""Connecting to PostgreSQL: one clear error naming the DSN (never its password)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from swtel.shared.errors import ConnectFailed


def redact_dsn(dsn: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _reason(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


async def connect_once(dsn: str, timeout: float = 5.0) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as e:
        raise ConnectFailed(f"cannot connect to the database at {redact_dsn(dsn)}: {_reason(e)}") from None


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=5,
                                         command_timeout=60)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as e:
        raise ConnectFailed(f"cannot connect to the database at {redact_dsn(dsn)}: {_reason(e)}") from None
