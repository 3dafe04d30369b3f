"""Who is calling, and may they: the authentication middleware, role guards, and CSRF for cookies.

Order of checks for every HTTP request and WebSocket upgrade:
1. Identify the caller: ``Authorization: Bearer <token>`` if present (and then only that), else the
   session cookie. No credentials, or bad ones, on a protected route → 401 (WebSocket: close 4401).
2. Role: the route's ``opt["min_role"]`` if set, else ``viewer`` for safe methods and WebSockets and
   ``operator`` for everything that changes state → 403 (WebSocket: close 4403). Handlers that need
   more (admin) add ``guards=[require_role("admin")]``.
3. CSRF: every request not authenticated by a bearer token goes through Litestar's ``CSRFMiddleware``
   (double-submit cookie ``csrftoken`` + ``X-CSRFToken`` header or ``_csrf_token`` form field).
   Litestar's middleware can only be skipped per path or per route, not per request, so it is wrapped
   here instead of configured app-wide: a bearer token is never sent by a browser on its own, so a
   request carrying one cannot be a cross-site forgery. Do not also set ``csrf_config`` on the app.

Public routes (``opt={"exclude_from_auth": True}`` or matching the ``public`` patterns, e.g. health) run
without a caller, but still through CSRF (the login form is protected against login CSRF).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, WebSocketException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.csrf import CSRFMiddleware

from .passwords import ROLES, role_at_least

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from .service import AuthService

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "swtel_session"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
WS_UNAUTHORIZED = 4401
WS_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, in ``scope["user"]`` (``request.user``) for every protected route."""

    user_id: int
    name: str
    role: str
    via: Literal["session", "token"]
    token_id: int | None = None  # which API token, when ``via == "token"``

    def can(self, role: str) -> bool:
        return role_at_least(self.role, role)


def principal_of(connection: ASGIConnection) -> Principal | None:
    """The caller of a request or WebSocket that went through :class:`AuthMiddleware` (None on public routes)."""
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def require_role(role: str):
    """A Litestar guard: the caller must hold ``role`` or a stronger one (401 if anonymous, 403 if weaker)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        who = principal_of(connection)
        if who is None:
            raise NotAuthorizedException("authentication required")
        if not who.can(role):
            raise PermissionDeniedException(f"this needs the {role} role; {who.name} is {who.role}")

    guard.__name__ = f"require_{role}"
    return guard


def bearer_token(connection: ASGIConnection) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None when there is no such header."""
    value = connection.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _cross_origin(connection: ASGIConnection) -> bool:
    """True when a browser says the page that opened this WebSocket is from another site."""
    origin = connection.headers.get("origin")
    if not origin:
        return False  # not a browser (scripts send no Origin)
    return urlsplit(origin).netloc.lower() != (connection.headers.get("host") or "").lower()


def _wants_page(connection: ASGIConnection, method: str) -> bool:
    """A browser navigating to a page (not a script calling the API): send it to the login form."""
    return (
        method in ("GET", "HEAD")
        and not connection.scope["path"].startswith(("/api/", "/ws/"))
        and "text/html" in (connection.headers.get("accept") or "")
    )


async def _redirect_to_login(scope: Scope, send: Send) -> None:
    path = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
    location = "/login?next=" + quote(path, safe="/")
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


class AuthMiddleware:
    """ASGI middleware (one instance per route, as Litestar builds them). Add it as
    ``DefineMiddleware(AuthMiddleware, service=…, public=…)``, first in the app's middleware list."""

    def __init__(self, app: ASGIApp, service: AuthService, public: Sequence[str] = ()) -> None:
        self.app = app
        self.service = service
        self.public = re.compile("|".join(public)) if public else None
        self._csrf: dict[bool, CSRFMiddleware] = {}

    def _csrf_app(self, secure: bool) -> CSRFMiddleware:
        mw = self._csrf.get(secure)
        if mw is None:  # built lazily: the shared secret is read from the database at startup
            config = CSRFConfig(
                secret=self.service.csrf_secret, cookie_name=CSRF_COOKIE, header_name=CSRF_HEADER,
                cookie_secure=secure, cookie_samesite="strict", cookie_httponly=False,  # scripts on the page read it
            )
            mw = self._csrf[secure] = CSRFMiddleware(app=self.app, config=config)
        return mw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        handler = scope.get("route_handler")
        opt = handler.opt if handler is not None else {}
        method = scope.get("method", "GET") if kind == "http" else "GET"
        public = bool(opt.get("exclude_from_auth")) or method == "OPTIONS" or bool(
            self.public and self.public.search(scope["path"])
        )

        # Public routes need no caller, and must answer when the database does not (health).
        who = None if public else await self.service.identify(connection)
        scope["user"] = who
        scope["auth"] = who.via if who else None
        if not public:
            needed = opt.get("min_role") or ("viewer" if kind == "websocket" or method in SAFE_METHODS else "operator")
            if who is None:
                if kind == "websocket":
                    raise WebSocketException(detail="authentication required", code=WS_UNAUTHORIZED)
                if _wants_page(connection, method):
                    await _redirect_to_login(scope, send)
                    return
                raise NotAuthorizedException("authentication required", headers={"WWW-Authenticate": "Bearer"})
            if not who.can(needed):
                if kind == "websocket":
                    raise WebSocketException(detail=f"this needs the {needed} role", code=WS_FORBIDDEN)
                raise PermissionDeniedException(f"this needs the {needed} role; {who.name} is {who.role}")
        if kind == "websocket":
            # SameSite keeps other sites' pages from using the session cookie in most browsers; the Origin
            # check closes the rest (cross-site WebSocket hijacking). Tokens are not sent by browsers.
            if who is not None and who.via == "session" and _cross_origin(connection):
                raise WebSocketException(detail="cross-origin WebSocket refused", code=WS_FORBIDDEN)
            await self.app(scope, receive, send)
        elif who is not None and who.via == "token":
            await self.app(scope, receive, send)
        else:
            await self._csrf_app(self.service.secure(scope))(scope, receive, send)
