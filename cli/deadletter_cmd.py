"""``swtel deadletter …``: messages the hub kept aside instead of storing (hub/deadletter.py), in PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import typer

from swtel.hub import deadletter
from swtel.hub.storage.connect import connect_once as connect
from swtel.hub.api.params import when
from swtel.shared.errors import InvalidInput, NotFound

from . import common

app = typer.Typer(help="Messages the hub refused to store (forged tokens, poison, malformed), with their reason.",
                  no_args_is_help=True)
DB_HELP = "PostgreSQL DSN (env SWTEL_DATABASE_URL)"


class _Pool:
    """The listing helpers take a pool; one connection is enough here."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, *a):  # type: ignore[no-untyped-def]
        return await self.conn.fetch(*a)

    async def fetchval(self, *a):  # type: ignore[no-untyped-def]
        return await self.conn.fetchval(*a)


@app.command("list")
def list_(
    ctx: typer.Context,
    reason: str | None = typer.Option(None, "--reason", help="only this reason (token_not_issued, nul_byte, db_refused, …)"),
    device: str | None = typer.Option(None, "--device", help="only this device"),
    since: str | None = typer.Option(None, "--since", help="RFC 3339, Unix seconds or now-1h"),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="most rows shown, newest first"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """List dead letters, newest first.

    Example: swtel deadletter list --reason db_refused --since now-1h --json
    """
    s = common.settings(ctx, database_url=dsn)
    try:
        start = when(since, "--since", datetime.now(timezone.utc), None) if since else None  # type: ignore[arg-type]
    except Exception as e:  # noqa: BLE001 (the API's 400: a clear one-line error here)
        raise InvalidInput(str(getattr(e, "detail", e))) from None

    async def go() -> list[dict]:  # type: ignore[type-arg]
        conn = await connect(s.database_url)
        try:
            return await deadletter.listing(_Pool(conn), limit=limit, reason=reason, device=device, since=start)  # type: ignore[arg-type]
        finally:
            await conn.close()

    rows = common.run(go())
    if as_json:
        common.print_json(rows)
        return
    common.print_table(["ID", "AT", "REASON", "DEVICE", "AGENT", "TOKEN", "DETAIL"],
                       [(r["id"], r["at"][:19], r["reason"], r["device"], r["agent"], r["token"] or "",
                         r["detail"][:80]) for r in rows], empty="no dead letters")


@app.command("show")
def show(
    ctx: typer.Context,
    letter_id: int = typer.Argument(..., min=1, max=2**63 - 1, help="dead letter id (from list)"),
    out: Path | None = typer.Option(None, "--out", help="write the raw payload to this file"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Write one dead letter's raw payload to a file (to inspect or republish it).

    Example: swtel deadletter show 42 --out letter-42.msgpack
    """
    s = common.settings(ctx, database_url=dsn)

    async def go() -> bytes | None:
        conn = await connect(s.database_url)
        try:
            return await deadletter.payload(_Pool(conn), letter_id)  # type: ignore[arg-type]
        finally:
            await conn.close()

    data = common.run(go())
    if data is None:
        raise NotFound(f"dead letter {letter_id} does not exist")
    if out is None:
        common.console.print(f"{len(data)} bytes; give --out FILE to write them", markup=False)
        return
    out.write_bytes(bytes(data))
    common.console.print(f"wrote {len(data)} bytes to {out}", markup=False)
