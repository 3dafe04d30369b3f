"""Users, sessions and API tokens in PostgreSQL. Every function takes a pool or a connection.

Secrets are random 256-bit values handed to the client once; the database keeps only their SHA-256, so a
leaked table (or a backup) gives no working session or token. Lookups join the user on every request:
removing a user, changing a role or revoking a token takes effect on the very next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from swtel.shared.errors import AlreadyExists, InvalidInput, NotFound

from .passwords import check_role, check_user_name

TOKEN_PREFIX = "swt_"  # recognisable in a secret scanner and in a config file
Db = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    created_at: dt.datetime | None = None
    tokens: int = 0

    def view(self) -> dict[str, Any]:
        created = self.created_at.isoformat() if self.created_at else None
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": created, "tokens": self.tokens}


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# ---- users ---------------------------------------------------------------------------------------------


async def add_user(db: Db, name: str, role: str, password_hash: str) -> User:
    check_user_name(name)
    check_role(role)
    try:
        row = await db.fetchrow(
            "INSERT INTO auth_users (name, role, password_hash) VALUES ($1, $2, $3) RETURNING id, created_at",
            name, role, password_hash,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"user {name!r} already exists") from None
    return User(row["id"], name, role, row["created_at"])


async def list_users(db: Db) -> list[User]:
    rows = await db.fetch(
        "SELECT u.id, u.name, u.role, u.created_at, count(t.id) AS tokens FROM auth_users u"
        " LEFT JOIN auth_tokens t ON t.user_id = u.id GROUP BY u.id ORDER BY u.name"
    )
    return [User(r["id"], r["name"], r["role"], r["created_at"], r["tokens"]) for r in rows]


async def count_users(db: Db) -> int:
    return await db.fetchval("SELECT count(*) FROM auth_users")


async def password_hash_of(db: Db, name: str) -> tuple[User, str] | None:
    row = await db.fetchrow("SELECT id, name, role, password_hash FROM auth_users WHERE name = $1", name)
    if row is None:
        return None
    return User(row["id"], row["name"], row["role"]), row["password_hash"]


async def set_password_hash(db: Db, user_id: int, password_hash: str) -> None:
    await db.execute("UPDATE auth_users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


class LastAdmin(AlreadyExists):
    """Removing this user would leave nobody able to manage users (HTTP 409)."""


async def change_password(db: Db, name: str, password_hash: str) -> None:
    """A new password for a user; their open sessions end (API tokens stay: they are revoked one by one)."""
    async with _transaction(db) as conn:
        uid = await conn.fetchval("UPDATE auth_users SET password_hash = $2 WHERE name = $1 RETURNING id",
                                  name, password_hash)
        if uid is None:
            raise NotFound(f"user {name!r} does not exist")
        await conn.execute("DELETE FROM auth_sessions WHERE user_id = $1", uid)


async def set_role(db: Db, name: str, role: str) -> None:
    """Change a user's role, effective on their next request; the last admin cannot be demoted."""
    check_role(role)
    async with _transaction(db) as conn:
        # admin rows locked in id order, as in remove_user, so two demotions cannot both pass the check
        admins = await conn.fetch("SELECT id FROM auth_users WHERE role = 'admin' ORDER BY id FOR UPDATE")
        row = await conn.fetchrow("SELECT id, role FROM auth_users WHERE name = $1 FOR UPDATE", name)
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        if row["role"] == "admin" and role != "admin" and len(admins) <= 1:
            raise LastAdmin(f"user {name!r} is the last admin; make another user admin first")
        await conn.execute("UPDATE auth_users SET role = $2 WHERE id = $1", row["id"], role)


@asynccontextmanager
async def _transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def remove_user(db: Db, name: str, *, keep_an_admin: bool = False) -> None:
    """Remove a user with their sessions and tokens. ``keep_an_admin`` refuses to remove the last admin
    (the API sets it; the CLI, which needs database access anyway, may remove anyone)."""
    async with _transaction(db) as conn:
        admins = []
        if keep_an_admin:
            # Lock the admin rows first, always in id order: two concurrent removals of the last two admins
            # then run one after the other (the second sees one admin left) instead of deadlocking.
            admins = await conn.fetch("SELECT id FROM auth_users WHERE role = 'admin' ORDER BY id FOR UPDATE")
        row = await conn.fetchrow("SELECT id, role FROM auth_users WHERE name = $1 FOR UPDATE", name)
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        if keep_an_admin and row["role"] == "admin" and len(admins) <= 1:
            raise LastAdmin(f"user {name!r} is the last admin; add another admin first")
        await conn.execute("DELETE FROM auth_users WHERE id = $1", row["id"])


# ---- sessions ------------------------------------------------------------------------------------------


async def create_session(db: Db, user_id: int, ttl_s: float) -> str:
    """A new session for the user; returns the id for the cookie (stored only as a hash)."""
    sid = new_session_id()
    await db.execute(
        "INSERT INTO auth_sessions (id_hash, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
        digest(sid), user_id, float(ttl_s),
    )
    # Housekeeping on the rare path (a login) rather than a timer: expired rows are useless.
    await db.execute("DELETE FROM auth_sessions WHERE expires_at < now()")
    return sid


async def session_user(db: Db, sid: str) -> User | None:
    row = await db.fetchrow(
        "SELECT u.id, u.name, u.role FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id"
        " WHERE s.id_hash = $1 AND s.expires_at > now()",
        digest(sid),
    )
    return None if row is None else User(row["id"], row["name"], row["role"])


async def delete_session(db: Db, sid: str) -> None:
    await db.execute("DELETE FROM auth_sessions WHERE id_hash = $1", digest(sid))


# ---- API tokens ----------------------------------------------------------------------------------------


async def create_token(db: Db, user_name: str, label: str = "") -> tuple[int, str]:
    """A new token for the user: (id, token). The token is returned once and never stored."""
    if len(label) > 200:
        raise InvalidInput("a token label may have at most 200 characters", "label")
    token = new_token()
    tid = await db.fetchval(
        "INSERT INTO auth_tokens (user_id, label, token_hash) SELECT id, $2, $3 FROM auth_users WHERE name = $1"
        " RETURNING id",
        user_name, label, digest(token),
    )
    if tid is None:
        raise NotFound(f"user {user_name!r} does not exist")
    return tid, token


async def token_user(db: Db, token: str) -> tuple[User, int] | None:
    row = await db.fetchrow(
        "SELECT u.id, u.name, u.role, t.id AS token_id FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1",
        digest(token),
    )
    return None if row is None else (User(row["id"], row["name"], row["role"]), row["token_id"])


async def list_tokens(db: Db, user_name: str | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT t.id, u.name AS user, t.label, t.created_at FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id"
        " WHERE $1::text IS NULL OR u.name = $1 ORDER BY t.id",
        user_name,
    )
    return [{"id": r["id"], "user": r["user"], "label": r["label"], "created_at": r["created_at"].isoformat()} for r in rows]


async def token_owner(db: Db, token_id: int) -> str | None:
    return await db.fetchval(
        "SELECT u.name FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE t.id = $1", token_id
    )


async def revoke_token(db: Db, token_id: int) -> None:
    if await db.fetchval("DELETE FROM auth_tokens WHERE id = $1 RETURNING id", token_id) is None:
        raise NotFound(f"token {token_id} does not exist")


# ---- shared secrets ------------------------------------------------------------------------------------


async def shared_secret(db: Db, name: str) -> str:
    """A random secret every hub on this database shares (created by the first to ask)."""
    await db.execute(
        "INSERT INTO auth_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name, secrets.token_hex(32),
    )
    return await db.fetchval("SELECT value FROM auth_secrets WHERE name = $1", name)
