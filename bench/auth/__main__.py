"""bench/auth: what authentication costs per request, and what a login costs.

    python -m bench.auth [--requests 2000] [--concurrency 16] [--runs 3] [--db DSN]

The hub (``bench/auth/hub_proc.py``, its own process) serves a public route (the baseline: no credential
check), and a protected read route called with an API token and with a session cookie (one indexed
PostgreSQL query each). Logins are timed separately: argon2id verification dominates them on purpose.
Each scenario runs ``--runs`` times; the table shows medians. Client, hub and PostgreSQL share the
machine's cores, so numbers are noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support import postgres  # noqa: E402
from support.ports import free_port  # noqa: E402
from swtel.hub.auth import store  # noqa: E402
from swtel.hub.auth.passwords import hash_password_sync  # noqa: E402
from swtel.hub.auth.schema import ensure_schema  # noqa: E402

PASSWORD = "bench-password-1"


async def rate(client: httpx.AsyncClient, path: str, n: int, concurrency: int, headers: dict[str, str]) -> float:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            r = await client.get(path, headers=headers)
            assert r.status_code == 200, (path, r.status_code)

    t = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return n / (time.perf_counter() - t)


async def login_seconds(client: httpx.AsyncClient) -> float:
    csrf = (await client.get("/api/csrf")).json()["csrf_token"]
    t = time.perf_counter()
    r = await client.post("/api/login", json={"name": "bench", "password": PASSWORD}, headers={"X-CSRFToken": csrf})
    assert r.status_code == 200, r.text
    return time.perf_counter() - t


async def run(args: argparse.Namespace, db: str) -> None:
    conn = await asyncpg.connect(db)
    try:
        await ensure_schema(conn)
        await store.add_user(conn, "bench", "viewer", hash_password_sync(PASSWORD))
        _, token = await store.create_token(conn, "bench", "bench")
    finally:
        await conn.close()
    port = free_port()
    hub = subprocess.Popen([sys.executable, "-m", "bench.auth.hub_proc", "--db", db, "--port", str(port)],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(hub.stdout.readline), 30)  # type: ignore[union-attr]
        assert line.strip() == "ready", line
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as c:
            await login_seconds(c)  # warm up, and leaves the session cookie in the client
            session = {"Cookie": f"swtel_session={c.cookies['swtel_session']}"}
            c.cookies.clear()
            scenarios = {
                "public route (no check)": ("/api/health", {}),
                "API token": ("/api/fake-read", {"Authorization": f"Bearer {token}"}),
                "session cookie": ("/api/fake-read", session),
            }
            results: dict[str, list[float]] = {k: [] for k in scenarios}
            logins: list[float] = []
            for _ in range(args.runs):
                for name, (path, headers) in scenarios.items():
                    results[name].append(await rate(c, path, args.requests, args.concurrency, headers))
                logins.append(await login_seconds(c))
                c.cookies.clear()
        base = statistics.median(results["public route (no check)"])
        print(f"{'scenario':28} {'req/s (median)':>15} {'vs public':>10}")
        for name, rates in results.items():
            med = statistics.median(rates)
            print(f"{name:28} {med:15.0f} {med / base:10.2f}")
        print(f"{'login (argon2id verify)':28} {statistics.median(logins) * 1000:12.0f} ms")
    finally:
        hub.terminate()
        hub.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--db", default=os.environ.get("SWTEL_TEST_DATABASE_URL"),
                   help="admin DSN of a PostgreSQL to create a scratch database in (default: local, else embedded)")
    args = p.parse_args()

    async def go() -> None:
        admin, private = (args.db, None) if args.db else await postgres.admin_url()
        name, db = await postgres.create_database(admin)
        try:
            await run(args, db)
        finally:
            await postgres.drop_database(admin, name)
            if private is not None:
                private.stop()

    asyncio.run(go())


if __name__ == "__main__":
    main()
