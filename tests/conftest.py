"""Fixtures: real nats-server processes on free loopback ports, a real PostgreSQL, the swtel CLI."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from support import postgres
from support.natsserver import NatsCluster, NatsServer
from support.waits import wait_jetstream


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage at the end of every test, so a leaked socket, transport or file raises its
    ResourceWarning (an error here) in the test that leaked it, not in whichever test the collector
    happens to run during later."""
    yield
    gc.collect()


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest_asyncio.fixture
async def fleet(nats_server: NatsServer) -> AsyncIterator[Any]:
    """Agent processes on one nats-server with the buckets made (tests/support/agents.py ``Fleet``)."""
    from support.agents import Fleet

    f = await Fleet(nats_server).open()
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def nats_cluster() -> Iterator[NatsCluster]:
    cluster = NatsCluster().start()
    try:
        asyncio.run(wait_jetstream(cluster.nodes[0].url, replicas=3))
        yield cluster
    finally:
        cluster.cleanup()


@pytest_asyncio.fixture
async def bootstrapped(nats_url: str) -> str:
    """A fresh server with the buckets and streams created, as after `swtel nats init`."""
    from swtel.shared import buckets, settings
    from swtel.shared.natsconn import connect

    s = settings.load({"nats_url": nats_url}, env={})
    nc = await connect(s, name="test-bootstrap")
    try:
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
    finally:
        await nc.close()
    return nats_url


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url, private = asyncio.run(postgres.admin_url())
    try:
        yield url
    finally:
        if private is not None:
            private.stop()


@pytest.fixture(scope="session")
def db_backend(pg_admin_url: str) -> str:
    """``timescale`` or ``plain``: what `swtel db migrate` chooses on the test server (support/backend.py)."""
    from support.backend import server_backend

    return asyncio.run(server_backend(pg_admin_url))


@pytest.fixture(autouse=True)
def _backend_marks(request: pytest.FixtureRequest) -> None:
    """``@pytest.mark.timescale`` / ``@pytest.mark.plain``: run only where the test database offers it."""
    for name, why in (("timescale", "needs a test database with TimescaleDB installed and preloaded "
                                    "(SWTEL_TEST_DATABASE_URL); this one offers plain PostgreSQL"),
                      ("plain", "asserts the plain PostgreSQL backend; the test database offers TimescaleDB")):
        if request.node.get_closest_marker(name) is not None and request.getfixturevalue("db_backend") != name:
            pytest.skip(why)


@pytest_asyncio.fixture
async def database_url(pg_admin_url: str) -> AsyncIterator[str]:
    name, url = await postgres.create_database(pg_admin_url)
    try:
        yield url
    finally:
        await postgres.drop_database(pg_admin_url, name)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def swtel(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``swtel ARGS…`` in-process with a clean SWTEL_* environment; returns exit code, stdout, stderr."""
    from swtel.cli.main import run

    for key in list(os.environ):
        if key.startswith("SWTEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str, env: dict[str, str] | None = None) -> CliResult:
        capsys.readouterr()
        with monkeypatch.context() as mp:  # env only for this call
            for k, v in (env or {}).items():
                mp.setenv(k, v)
            try:
                run(list(args))
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke
