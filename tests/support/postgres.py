"""A real PostgreSQL for tests: ``$SWTEL_TEST_DATABASE_URL``, else the local server on 127.0.0.1:5432 if it
answers, else a private embedded server (pgserver) in a temp directory. Each test gets its own
database, dropped afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


class PrivatePostgres:
    """An embedded PostgreSQL from the ``pgserver`` wheel (a project dependency, used by ``swtel demo``)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="swtel-pg-"))
        self.server = None

    def start(self) -> str:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            self.server = pgserver.get_server(self.dir, cleanup_mode="stop")
        return self.server.get_uri()

    def stop(self) -> None:
        try:
            if self.server is not None:
                self.server.cleanup()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


async def admin_url() -> tuple[str, PrivatePostgres | None]:
    url = os.environ.get("SWTEL_TEST_DATABASE_URL")
    if url:
        return url, None
    if await _answers(LOCAL_URL):
        return LOCAL_URL, None
    private = PrivatePostgres()
    return private.start(), private


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def create_database(admin: str) -> tuple[str, str]:
    name = f"swtel_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, with_database(admin, name)


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
