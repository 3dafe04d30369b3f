"""``swtel user …``: hub users and their API tokens, straight in the hub's database.

Passwords come from a hidden prompt (typed twice) or ``--password-stdin``, never from a flag, so they
appear in neither the process title nor the shell history. A token is printed once, on stdout alone,
so ``TOKEN=$(swtel user token NAME)`` works; the database keeps only its hash.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import typer

from swtel.hub.auth import store
from swtel.hub.storage.connect import connect_once as connect
from swtel.hub.auth.passwords import ROLES, check_password, check_role, check_user_name, hash_password_sync
from swtel.hub.auth.schema import ensure_schema
from swtel.shared.errors import InvalidInput, UserError

from . import common

T = TypeVar("T")
app = typer.Typer(help="Manage hub users and API tokens (in the hub's database).", no_args_is_help=True)

DB_OPTION = typer.Option(None, "--db", help="PostgreSQL DSN (env SWTEL_DATABASE_URL)")


async def require_migrated(conn: asyncpg.Connection, dsn: str) -> None:
    """A command that only reads says "run swtel db migrate" on a fresh database, not "nothing found"."""
    from swtel.hub.storage.connect import redact_dsn
    from swtel.hub.storage.migrate import recorded_backend

    if await recorded_backend(conn) is None:
        raise UserError(f"the database at {redact_dsn(dsn)} has no switch-telemetry schema yet: run `swtel db migrate`")


def _with_db(ctx: typer.Context, db: str | None, work: Callable[[asyncpg.Connection], Awaitable[T]],
             *, reads_only: bool = False) -> T:
    s = common.settings(ctx, database_url=db)

    async def go() -> T:
        conn = await connect(s.database_url)
        try:
            if reads_only:
                await require_migrated(conn, s.database_url)
            await ensure_schema(conn)
            return await work(conn)
        finally:
            await conn.close()

    return common.run(go())


def _read_password(from_stdin: bool) -> str:
    return check_password(common.read_password(from_stdin))


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="user name"),
    role: str = typer.Option(..., "--role", help=f"one of {', '.join(ROLES)}"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin (one line)"),
    db: str | None = DB_OPTION,
) -> None:
    """Add a hub user (the password is prompted for twice, or read from stdin).

    Example: swtel user add alice --role admin --password-stdin < alice.pass
    """
    check_user_name(name)
    check_role(role)
    hashed = hash_password_sync(_read_password(password_stdin))
    user = _with_db(ctx, db, lambda conn: store.add_user(conn, name, role, hashed))
    common.console.print(f"added user {user.name} ({user.role})")


@app.command("list")
def list_(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    db: str | None = DB_OPTION,
) -> None:
    """List hub users with their role and number of API tokens.

    Example: swtel user list --json
    """
    users = _with_db(ctx, db, store.list_users, reads_only=True)
    rows = [u.view() for u in users]
    if json_out:
        common.print_json(rows)
        return
    common.print_table(
        ["NAME", "ROLE", "TOKENS", "CREATED"], [(r["name"], r["role"], r["tokens"], r["created_at"]) for r in rows],
        empty="no users: add the first admin with `swtel user add NAME --role admin`",
    )


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(...), db: str | None = DB_OPTION) -> None:
    """Remove a user; their sessions and API tokens stop working at once.

    Example: swtel user remove alice
    """
    _with_db(ctx, db, lambda conn: store.remove_user(conn, name))
    common.console.print(f"removed user {name}")


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="user name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin (one line)"),
    db: str | None = DB_OPTION,
) -> None:
    """Set a user's password (prompted for twice, or read from stdin); their open sessions end.

    Example: swtel user passwd alice
    """
    hashed = hash_password_sync(_read_password(password_stdin))
    _with_db(ctx, db, lambda conn: store.change_password(conn, name, hashed))
    common.console.print(f"password of {name} changed; their sessions were ended")


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="user name"),
    role: str = typer.Argument(..., help=f"one of {', '.join(ROLES)}"),
    db: str | None = DB_OPTION,
) -> None:
    """Change a user's role (effective on their next request); the last admin cannot be demoted.

    Example: swtel user set-role alice viewer
    """
    check_role(role)
    _with_db(ctx, db, lambda conn: store.set_role(conn, name, role))
    common.console.print(f"{name} is now {role}")


@app.command("token")
def token(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the user the token acts as"),
    label: str = typer.Option("", "--name", help="a label to recognise the token by"),
    db: str | None = DB_OPTION,
) -> None:
    """Create an API token (printed once; send it as `Authorization: Bearer <token>`).

    Example: TOKEN=$(swtel user token grafana --name dashboards)
    """
    tid, secret = _with_db(ctx, db, lambda conn: store.create_token(conn, name, label))
    sys.stdout.write(secret + "\n")
    common.err_console.print(f"token {tid} for {name}: shown once, store it now; revoke with `swtel user token-revoke {tid}`")


@app.command("tokens")
def tokens(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="only this user's tokens"),
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    db: str | None = DB_OPTION,
) -> None:
    """List API tokens (ids and labels; the tokens themselves are not stored).

    Example: swtel user tokens alice
    """
    rows: list[dict[str, Any]] = _with_db(ctx, db, lambda conn: store.list_tokens(conn, name), reads_only=True)
    if json_out:
        common.print_json(rows)
        return
    common.print_table(["ID", "USER", "LABEL", "CREATED"], [(r["id"], r["user"], r["label"], r["created_at"]) for r in rows],
                       empty="no API tokens")


@app.command("token-revoke")
def token_revoke(ctx: typer.Context, token_id: str = typer.Argument(..., metavar="ID"), db: str | None = DB_OPTION) -> None:
    """Revoke an API token; requests using it are refused from now on.

    Example: swtel user token-revoke 7
    """
    if not token_id.isdigit():
        raise InvalidInput(f"token id {token_id!r} must be a number (see `swtel user tokens`)")
    _with_db(ctx, db, lambda conn: store.revoke_token(conn, int(token_id)))
    common.console.print(f"revoked token {token_id}")
