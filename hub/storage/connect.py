"""Connecting to PostgreSQL: one clear error naming the DSN (never its password).

The one place for this: storage, the auth and alerting stores and the CLI all connect through here, so
every "cannot connect" reads the same and no message or log line can carry a password.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from swtel.shared.errors import ConnectFailed, InvalidInput


def redact_dsn(dsn: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db`` (safe to print and log)."""
    try:
        parts = urlsplit(dsn)
        if parts.password is None:
            return dsn
        user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<unparsable DSN>"


def _reason(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _failed(dsn: str, e: BaseException) -> Exception:
    if isinstance(e, ValueError) and not isinstance(e, asyncpg.PostgresError):  # asyncpg: a malformed DSN
        return InvalidInput(f"database URL {redact_dsn(dsn)} is malformed: {_reason(e)}")
    return ConnectFailed(f"cannot connect to PostgreSQL at {redact_dsn(dsn)}: {_reason(e)}")


_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError)


async def connect_once(dsn: str, timeout: float = 5.0) -> asyncpg.Connection:
    """One connection, or :class:`ConnectFailed` / :class:`InvalidInput` in one line without the password."""
    try:
        return await asyncpg.connect(dsn, timeout=timeout)
    except _CONNECT_ERRORS as e:
        raise _failed(dsn, e) from None


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=5,
                                         command_timeout=60)
    except _CONNECT_ERRORS as e:
        raise _failed(dsn, e) from None
