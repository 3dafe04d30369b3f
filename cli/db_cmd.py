"""``swtel db …``: the database schema."""

from __future__ import annotations

import typer

from . import common

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", help="PostgreSQL DSN (env SWTEL_DATABASE_URL)"),
) -> None:
    """Create or upgrade the schema (idempotent). Uses TimescaleDB when CREATE EXTENSION works.

    Example: swtel db migrate --db postgresql://swtel@db1/swtel
    """
    from swtel.hub.storage.connect import connect_once, redact_dsn
    from swtel.hub.storage.migrate import migrate as do_migrate

    s = common.settings(ctx, database_url=db)

    async def go():  # type: ignore[no-untyped-def]
        conn = await connect_once(s.database_url)
        try:
            return await do_migrate(conn, s)
        finally:
            await conn.close()

    result = common.run(go())
    applied = ", ".join(map(str, result.applied)) or "none (up to date)"
    extra = f"; {result.policies} TimescaleDB policies applied" if result.policies else ""
    common.console.print(f"{redact_dsn(s.database_url)}: backend {result.backend}; migrations applied: {applied}{extra}",
                         highlight=False, soft_wrap=True)
