"""Connecting to PostgreSQL for ``swtel user …``: one clear line when it fails, never the password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from swtel.shared.errors import ConnectFailed


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (safe to print and log)."""
    try:
        parts = urlsplit(dsn)
        if parts.password is None:
            return dsn
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return "<unparsable DSN>"


async def connect(dsn: str, timeout: float = 5.0) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as e:
        reason = (str(e) or type(e).__name__).splitlines()[0]
        raise ConnectFailed(f"cannot connect to PostgreSQL at {redact_dsn(dsn)}: {reason}") from None
