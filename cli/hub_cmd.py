"""``swtel hub run``: the hub (ingest, query API, dashboard) in the foreground."""

from __future__ import annotations

import asyncio

import typer

from swtel.shared.errors import UserError
from swtel.shared.sdnotify import Notifier

from swtel.shared.logs import setup as setup_logging

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
    """Run the hub until SIGINT/SIGTERM (a graceful stop finishes the current transaction).

    Example: swtel hub run --host 0.0.0.0 --port 8080
    """
    flags = {"database_url": db, "hub_host": host, "hub_port": port, "hub_ingest_workers": workers}
    if nats:
        flags["nats_url"] = nats
    s = common.settings(ctx, **flags)
    setup_logging(s.log_level)
    check_port(s.hub_host, s.hub_port)
    common.run(preflight(s))  # a missing schema or an unreachable server is one line, not a traceback
    server = build_server(s)
    asyncio.run(server.serve())
    if not server.started:  # startup failed (database not migrated, NATS unreachable): already logged
        raise SystemExit(2)


def check_port(host: str, port: int) -> None:
    """Fail in one line naming the port when it cannot be listened on (uvicorn would log and exit 3).

    A probe bind, with SO_REUSEADDR as uvicorn binds: another server on the port is found, a socket in
    TIME_WAIT is not."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"hub listen address {host!r} does not resolve ({e.strerror}); set --host or SWTEL_HUB_HOST") from None
    for family, kind, proto, _, addr in infos[:1]:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(addr)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    why = "is in use by another process"
                elif e.errno == errno.EACCES:
                    why = "needs privileges (ports below 1024)"
                else:
                    why = f"cannot be listened on ({e.strerror})"
                raise UserError(f"hub port {port} on {host} {why}: choose another with --port or SWTEL_HUB_PORT") from None


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
