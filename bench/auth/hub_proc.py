"""A hub with only the auth components and two stand-in routes, served by uvicorn in its own process.

``python -m bench.auth.hub_proc --db DSN --port PORT``; prints ``ready`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import asyncpg
import uvicorn
from litestar import Litestar, get

from swtel.hub.auth import auth_components
from swtel.shared import settings as settings_mod


@get("/api/health")
async def fake_health() -> dict[str, str]:  # stands in for the hub's health route (public)
    return {"status": "ok"}


@get("/api/fake-read")
async def fake_read() -> dict[str, bool]:  # stands in for a protected read route
    return {"ok": True}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    logging.disable(logging.INFO)
    s = settings_mod.load({"database_url": args.db}, env={})
    state: dict[str, asyncpg.Pool] = {}
    auth = auth_components(s, lambda: state["pool"])

    async def open_pool() -> None:
        state["pool"] = await asyncpg.create_pool(args.db, min_size=4, max_size=8)

    async def announce() -> None:
        print("ready", flush=True)

    app = Litestar(
        route_handlers=[fake_health, fake_read, *auth.route_handlers],
        middleware=auth.middleware,
        on_startup=[open_pool, *auth.on_startup, announce],
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                            timeout_keep_alive=60)  # the bench's pooled connections must not be cut mid-run
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
