"""Helpers for hub tests and the ingest benchmark: build and publish telemetry, count stored rows."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from nats.js import JetStreamContext

from swtel.shared import naming, settings, wire


def hub_settings(nats_url: str, database_url: str, **extra: object) -> settings.Settings:
    return settings.load({"nats_url": nats_url, "database_url": database_url, **extra}, env={})


async def migrate(database_url: str, **extra: object) -> str:
    from swtel.hub.storage.migrate import migrate as do_migrate

    conn = await asyncpg.connect(database_url)
    try:
        return (await do_migrate(conn, settings.load({"database_url": database_url, **extra}, env={}))).backend
    finally:
        await conn.close()


def counter_path(i: int) -> str:
    return f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-octets"


def make_batch(device: str, seq: int, *, token: int = 0, paths: int = 10, ts_ns: int | None = None,
               agent: str = "a1", value: float | None = None) -> wire.TelemetryBatch:
    ts = ts_ns if ts_ns is not None else time.time_ns()
    samples = [wire.Sample(counter_path(i), value if value is not None else seq * 1000 + i, ts) for i in range(paths)]
    return wire.TelemetryBatch(device=device, agent=agent, token=token, seq=seq, subscription="interfaces",
                               samples=samples)


async def claim(js: JetStreamContext, device: str, agent: str, incarnation: str = "i1") -> int:
    """Write ``swtel_leases/<device>`` naming ``agent`` (create, or take over whatever is there), as an agent's
    claim does; returns the revision: the genuine fencing token for that agent's batches."""
    from nats.js.errors import KeyNotFoundError

    kv = await js.key_value(naming.BUCKET_LEASES)
    key = naming.encode_name(device)
    value = wire.encode_kv(wire.Lease(device=device, agent=agent, incarnation=incarnation, acquired_ns=time.time_ns()))
    try:
        entry = await kv.get(key)
        rev = await kv.update(key, value, last=entry.revision)
    except KeyNotFoundError:
        rev = await kv.create(key, value)
    js.__dict__.setdefault("_swtel_claimed", {})[(device, agent)] = rev  # per connection: ids get reused
    return rev


async def publish(js: JetStreamContext, batch: wire.TelemetryBatch) -> None:
    """Publish as an agent would; a batch made with ``token=0`` gets a real lease (claimed once per device
    and agent on this connection), so the hub's fencing (hub/fencing.py) finds it genuine."""
    if batch.token == 0:
        token = js.__dict__.get("_swtel_claimed", {}).get((batch.device, batch.agent)) or await claim(
            js, batch.device, batch.agent)
        batch = msgspec.structs.replace(batch, token=token)
    await js.publish(naming.telemetry_subject(batch.device, batch.subscription), wire.encode(batch),
                     headers={"Nats-Msg-Id": naming.msg_id(batch.device, batch.token, batch.seq)})


async def point_counts(database_url: str) -> tuple[int, int]:
    """(rows in points, distinct (series, time) pairs): equal when nothing was stored twice."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT count(*) AS n, count(DISTINCT (series_id, time)) AS d FROM points")
        return row["n"], row["d"]
    finally:
        await conn.close()


@asynccontextmanager
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def api_token(database_url: str, role: str = "viewer", name: str = "scripts") -> dict[str, str]:
    """A user with ``role`` and an API token for it, as ``swtel user add`` + ``swtel user token`` make them;
    returns the Authorization header."""
    from swtel.hub.auth import store
    from swtel.hub.auth.passwords import hash_password_sync as hash_password

    conn = await asyncpg.connect(database_url)
    try:
        await store.add_user(conn, name, role, hash_password("not-used-by-this-test-9f3c"))
        _, token = await store.create_token(conn, name, "test")
    finally:
        await conn.close()
    return {"Authorization": f"Bearer {token}"}


async def timescale_refresh(conn: asyncpg.Connection, statement: str, timeout: float = 60.0) -> None:
    """Run a TimescaleDB refresh (``CALL refresh_continuous_aggregate(…)`` or ``CALL run_job(…)``) now. The
    policies run in the background too, and TimescaleDB 2.28 refuses a refresh that overlaps a running one
    (``LockNotAvailableError``) instead of waiting: then try again, within ``timeout``."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        try:
            await conn.execute(statement)
            return
        except asyncpg.LockNotAvailableError as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"{statement}: a concurrent refresh ran for more than {timeout:.0f} s") from e
            await asyncio.sleep(0.2)  # (polling a lock held by a background worker: nothing to await)


async def refresh_aggregates(conn: asyncpg.Connection) -> None:
    """Materialize the whole of both TimescaleDB continuous aggregates (1 m first: 1 h is built from it)."""
    for view in ("points_1m", "points_1h"):
        await timescale_refresh(conn, f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
