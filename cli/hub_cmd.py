"""``swtel hub run``: the hub (ingest, query API, dashboard) in the foreground."""

from __future__ import annotations

import asyncio
import logging

import typer

from swtel.shared.sdnotify import Notifier

from . import common

app = typer.Typer(help="The hub: ingest, storage and query API.", no_args_is_help=True)


@app.command("run")
def run(
    ctx: typer.Context,
    nats: str | None = typer.Option(None, "--nats", help="NATS URL(s) (env SWTEL_NATS_URL)"),
    db: str | None = typer.Option(None, "--db", help="PostgreSQL DSN (env SWTEL_DATABASE_URL)"),
    host: str | None = typer.Option(None, "--host", help="listen address (env SWTEL_HUB_HOST)"),
    port: int | None = typer.Option(None, "--port", help="listen port (env SWTEL_HUB_PORT)"),
    workers: int | None = typer.Option(None, "--workers", help="ingest workers (env SWTEL_HUB_INGEST_WORKERS)"),
) -> None:
    """Run the hub until SIGINT/SIGTERM (a graceful stop finishes the current transaction)."""
    flags = {"database_url": db, "hub_host": host, "hub_port": port, "hub_ingest_workers": workers}
    if nats:
        flags["nats_url"] = nats
    s = common.settings(ctx, **flags)
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    common.run(preflight(s))  # a missing schema or an unreachable server is one line, not a traceback
    server = build_server(s)
    asyncio.run(server.serve())
    if not server.started:  # startup failed (database not migrated, NATS unreachable): already logged
        raise SystemExit(2)


def build_server(s):  # type: ignore[no-untyped-def]
    """The hub app in a uvicorn server, telling systemd READY when it serves, WATCHDOG, then STOPPING."""
    import uvicorn

    from swtel.hub.app import create_app

    notifier = Notifier()
    watchdog: list[asyncio.Task[None]] = []

    async def ready() -> None:
        notifier.ready(f"hub on {s.hub_host}:{s.hub_port}")
        watchdog.append(asyncio.create_task(notifier.run_watchdog(), name="sd-watchdog"))

    async def stopping() -> None:
        notifier.stopping()
        for task in watchdog:
            task.cancel()

    app_ = create_app(s, on_startup=[ready], on_shutdown=[stopping])
    config = uvicorn.Config(app_, host=s.hub_host, port=s.hub_port, log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=10,
                            # per-message deflate doubles the cost of every live frame (bench/live)
                            ws_per_message_deflate=False)
    return uvicorn.Server(config)


async def preflight(s) -> None:  # type: ignore[no-untyped-def]
    from swtel.hub.storage import open_storage
    from swtel.hub.storage.connect import create_pool
    from swtel.shared.natsconn import connect

    pool = await create_pool(s.database_url, min_size=1, max_size=1)
    try:
        await open_storage(pool, s)
    finally:
        await pool.close()
    nc = await connect(s, name="swtel-hub-check")
    await nc.close()
