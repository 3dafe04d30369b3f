"""A real PostgreSQL for tests: ``$SWTEL_TEST_DATABASE_URL``, else the local server on 127.0.0.1:5432 if it
answers, else a private server started in a temp directory (Debian's binaries). Each test gets its own
database, dropped afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg

from .ports import free_port, wait_port

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


class PrivatePostgres:
    """initdb + pg_ctl in a temp dir; run as the ``postgres`` user when we are root (initdb refuses root)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries found (apt-get install postgresql)")
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="swtel-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> str:
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start", "-w")
        wait_port("127.0.0.1", self.port)
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "stop", "-m", "fast")
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
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


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
