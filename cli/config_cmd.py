"""``swtel config list|show|diff DEVICE``: the config backups the hub stored, read from PostgreSQL."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import typer

from swtel.hub.storage.connect import connect_once as connect
from swtel.hub.storage import configs
from swtel.shared.errors import ConnectFailed

from . import common

T = TypeVar("T")

app = typer.Typer(help="Config backups: versions, text and diffs.", no_args_is_help=True)

DB_HELP = "PostgreSQL DSN (env SWTEL_DATABASE_URL)"


def _with_db(ctx: typer.Context, dsn: str | None, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    s = common.settings(ctx, database_url=dsn)

    async def go() -> T:
        conn = await connect(s.database_url)
        try:
            return await work(conn)
        except asyncpg.UndefinedTableError:
            raise ConnectFailed("the database has no config_backups table: run `swtel db migrate` first") from None
        finally:
            await conn.close()

    return common.run(go())


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@app.command("list")
def config_list(
    ctx: typer.Context,
    device: str = typer.Argument(..., help="device name"),
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """The stored versions of a device's configuration, oldest first (a version is stored only when it changed).

    Example: swtel config list leaf-01
    """
    rows = _with_db(ctx, dsn, lambda conn: configs.versions(conn, device, must_exist=True))
    if json_out:
        common.print_json(rows)
        return
    common.print_table(["VERSION", "TIME", "AGENT", "FORMAT", "SIZE", "SHA256"],
                       [(r["version"], _when(r["time"]), r["agent"], r["format"], r["size"], r["sha256"][:12])
                        for r in rows])


@app.command("show")
def config_show(
    ctx: typer.Context,
    device: str = typer.Argument(..., help="device name"),
    version: int | None = typer.Option(None, "--version", "-v", help="version number (default: the latest; -2: the one before)"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Print one stored configuration.

    Example: swtel config show leaf-01 -v -2
    """
    row: dict[str, Any] = _with_db(ctx, dsn, lambda conn: configs.version(conn, device, version))
    sys.stdout.write(row["text"])


@app.command("diff")
def config_diff(
    ctx: typer.Context,
    device: str = typer.Argument(..., help="device name"),
    a: int | None = typer.Argument(None, help="from this version (default: the one before the latest)"),
    b: int | None = typer.Argument(None, help="to this version (default: the latest)"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Unified diff between two versions (default: the previous one and the latest).

    Example: swtel config diff leaf-01 3 5
    """
    out = _with_db(ctx, dsn, lambda conn: configs.diff(conn, device, a, b))
    sys.stdout.write(out["diff"])
    if not out["diff"]:
        common.err_console.print(f"[dim]versions {out['a']} and {out['b']} are the same[/dim]")
