"""One object per hub holding what authentication needs: the database, the hasher, the login limiter,
cookie policy and the shared CSRF secret. Routes and the middleware reach it; nothing global."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from litestar.connection import ASGIConnection
from litestar.exceptions import ServiceUnavailableException

from swtel.shared.settings import Settings

from . import store
from .middleware import SESSION_COOKIE, Principal, bearer_token
from .passwords import Passwords
from .ratelimit import LoginLimiter
from .schema import ensure_schema

log = logging.getLogger("swtel.hub.auth")

# What a lost or refused database connection raises. InternalClientError too: a connection the server
# terminated while idle in the pool can fail as "cannot switch to state …" on its next query.
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
PoolSource = asyncpg.Pool | Callable[[], asyncpg.Pool]
FIRST_ADMIN_HINT = "no hub users exist yet: create the first admin with `swtel user add NAME --role admin`"


class AuthService:
    def __init__(self, settings: Settings, pool: PoolSource, *, create_schema: bool = True) -> None:
        self._pool = pool
        self.session_ttl_s = settings.hub_session_ttl_s
        self.secure_cookies = settings.hub_secure_cookies
        self.create_schema = create_schema
        self.passwords = Passwords()
        self.limiter = LoginLimiter(failures=settings.hub_login_failures, window_s=60.0)
        self._csrf_secret: str | None = None

    @property
    def db(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    @property
    def csrf_secret(self) -> str:
        if self._csrf_secret is None:
            raise RuntimeError("AuthService.start() has not run: add it to the app's on_startup")
        return self._csrf_secret

    async def start(self) -> None:
        """on_startup: tables (until migrations own them), the shared CSRF secret, the first-admin hint."""
        db = self.db
        if self.create_schema:
            async with db.acquire() as conn:
                await ensure_schema(conn)
        self._csrf_secret = await store.shared_secret(db, "csrf")
        if await store.count_users(db) == 0:
            log.warning(FIRST_ADMIN_HINT)

    def secure(self, scope: Any) -> bool:
        """Whether cookies get the Secure flag: always, never, or when this request came over TLS
        (``auto``; behind a TLS proxy run uvicorn with proxy headers so the scheme is right)."""
        if self.secure_cookies == "always":
            return True
        if self.secure_cookies == "never":
            return False
        return scope.get("scheme") in ("https", "wss")

    async def identify(self, connection: ASGIConnection) -> Principal | None:
        """The caller from a bearer token (if one is sent, only that counts) or the session cookie."""
        try:
            return await self._identify(connection)
        except DB_ERRORS as e:
            log.error("cannot check credentials: database unavailable (%s)", type(e).__name__)
            raise ServiceUnavailableException("the hub's database is unavailable; try again shortly") from None

    async def _identify(self, connection: ASGIConnection) -> Principal | None:
        token = bearer_token(connection)
        if token is not None:
            found = await store.token_user(self.db, token) if token else None
            if found is None:
                return None
            user, token_id = found
            return Principal(user.id, user.name, user.role, "token", token_id)
        sid = connection.cookies.get(SESSION_COOKIE)
        if not sid:
            return None
        user = await store.session_user(self.db, sid)
        return None if user is None else Principal(user.id, user.name, user.role, "session")
