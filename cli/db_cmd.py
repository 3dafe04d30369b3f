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
    if result.warning:
        common.err_console.print(f"warning: {result.warning}", highlight=False, soft_wrap=True)
    applied = ", ".join(map(str, result.applied)) or "none (up to date)"
    extra = f"; {result.policies} TimescaleDB policies applied" if result.policies else ""
    common.console.print(f"{redact_dsn(s.database_url)}: backend {result.backend}; migrations applied: {applied}{extra}",
                         highlight=False, soft_wrap=True)


@app.command("status")
def status(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", help="PostgreSQL DSN (env SWTEL_DATABASE_URL)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Schema version, backend, chunks, compression, aggregate watermarks and background jobs.
    Exits 1 when a job's latest run failed.

    Example: swtel db status --json
    """
    from swtel.hub.storage.connect import connect_once, redact_dsn
    from swtel.hub.storage.migrate import recorded_backend
    from swtel.hub.storage.status import db_status
    from swtel.shared.errors import UserError

    s = common.settings(ctx, database_url=db)

    async def go():  # type: ignore[no-untyped-def]
        conn = await connect_once(s.database_url)
        try:
            if await recorded_backend(conn) is None:
                raise UserError(f"{redact_dsn(s.database_url)} has no switch-telemetry schema: run `swtel db migrate` first")
            return await db_status(conn)
        finally:
            await conn.close()

    st = common.run(go())
    failing = [j for j in st["jobs"] if j["consecutive_failures"] > 0]
    if as_json:
        common.print_json(st)
    else:
        p = common.console.print
        ext = f" (TimescaleDB {st['timescaledb_version']})" if st.get("timescaledb_version") else ""
        p(f"backend {st['backend']}{ext}, schema version {st['schema_version']}, PostgreSQL {st['server_version']}",
          highlight=False, soft_wrap=True)
        for table, c in st["chunks"].items():
            ratio = (st["compression"].get(table) or {}).get("ratio")
            extra = f", {c['compressed']} compressed" + (f" (ratio {ratio})" if ratio else "") if c["compressed"] else ""
            p(f"{table}: {c['total']} {'chunks' if st['backend'] == 'timescale' else 'partitions'}{extra}",
              highlight=False, soft_wrap=True)
        for view, wm in st["aggregates"].items():
            p(f"{view}: complete up to {wm or 'nothing yet'}", highlight=False, soft_wrap=True)
        common.print_table(
            ("job", "name", "last run", "status", "failures in a row", "next start", "last error"),
            [(j["job_id"] if j["job_id"] is not None else "-", j["name"], j["last_run_started_at"] or "never",
              j["last_run_status"] or "-", j["consecutive_failures"], j["next_start"] or "-", j["last_error"] or "")
             for j in st["jobs"]], empty="no background jobs")
    if failing:
        raise typer.Exit(1)
