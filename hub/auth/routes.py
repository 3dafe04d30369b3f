"""Login, logout, who-am-I, the login page, and user and token management (admins)."""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Redirect
from litestar.utils.scope.state import ScopeState

from swtel.shared.errors import InvalidInput, NotFound

from . import store
from .body import decode, documented
from .middleware import CSRF_COOKIE, SESSION_COOKIE, principal_of, require_role
from .passwords import check_password, check_role, check_user_name
from .service import AuthService

log = logging.getLogger("swtel.hub.auth")

PUBLIC = {"exclude_from_auth": True}
ANY_USER = {"min_role": "viewer"}  # unsafe methods default to operator; these are for every user


class LoginIn(msgspec.Struct):
    name: str
    password: str
    next: str = "/"


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: str
    password: str


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    label: str = ""
    user: str | None = None  # another user's name: admins only


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _is_form(request: Request[Any, Any, Any]) -> bool:
    return request.content_type[0] in ("application/x-www-form-urlencoded", "multipart/form-data")


def _local_path(target: str) -> str:
    """Only redirect within this site after a form login (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


# Self-contained (the dashboard's stylesheet is behind the login): the dashboard's colours, inline.
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>switch-telemetry: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ margin: 0; min-height: 100vh; display: grid; place-items: center; background: #0f1419; color: #d8dee6;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }}
main {{ width: 22rem; background: #171e26; border: 1px solid #26313d; border-radius: 8px; padding: 24px 28px; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }} .sub {{ color: #8795a5; margin: 0 0 18px; }}
label {{ display: block; color: #8795a5; font-size: 12px; margin: 0 0 12px; }}
input {{ display: block; width: 100%; box-sizing: border-box; margin-top: 4px; background: #0f1419; color: #d8dee6;
  border: 1px solid #26313d; border-radius: 4px; padding: 8px; font: inherit; }}
input:focus {{ outline: none; border-color: #58a6ff; }}
button {{ width: 100%; margin-top: 6px; background: #1f6feb; color: #fff; border: 0; border-radius: 4px; padding: 9px;
  font: inherit; font-weight: 600; cursor: pointer; }}
.alert {{ background: #3d1d1f; color: #f85149; border-radius: 4px; padding: 8px 10px; margin: 0 0 14px; }}
</style></head>
<body><main>
<h1>switch-telemetry</h1><p class="sub">Sign in to the dashboard</p>{message}
<form method="post" action="/api/login">
<input type="hidden" name="_csrf_token" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label>User <input name="name" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></main></body></html>
"""


def build_routes(service: AuthService) -> list[Any]:
    def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
        return Cookie(
            key=SESSION_COOKIE, value=value, max_age=max_age, path="/", httponly=True, samesite="lax",
            secure=service.secure(request.scope),
        )

    @get("/login", opt=PUBLIC, include_in_schema=False, media_type="text/html")
    async def login_page(
        request: Request[Any, Any, Any], failed: FromQuery[bool] = False, next: FromQuery[str] = "/",
        throttled: FromQuery[int | None] = None,
    ) -> str:
        csrf = ScopeState.from_scope(request.scope).csrf_token or ""
        if throttled is not None:
            message = (f'<p class="alert" role="alert">Too many failed sign-ins. Try again in {max(1, throttled)} s.</p>')
        elif failed:
            message = '<p class="alert" role="alert">Wrong user name or password.</p>'
        else:
            message = ""
        return LOGIN_PAGE.format(message=message, csrf=html.escape(csrf), next=html.escape(_local_path(next)))

    @get("/api/csrf", opt=PUBLIC)
    async def csrf_token(request: Request[Any, Any, Any]) -> dict[str, str]:
        """The CSRF token for scripts in the page (it is also in the ``csrftoken`` cookie)."""
        return {"csrf_token": ScopeState.from_scope(request.scope).csrf_token or "", "header": "X-CSRFToken",
                "cookie": CSRF_COOKIE}

    @post("/api/login", opt=PUBLIC, status_code=200, operation_class=documented(LoginIn))
    async def login(request: Request[Any, Any, Any]) -> Response[Any]:
        form = _is_form(request)
        creds = await decode(request, LoginIn)
        if len(creds.name) > 64:  # no valid name is longer; keeps the limiter's keys small
            raise InvalidInput("user name too long", "name")
        where = _client(request)
        keys = (f"user:{creds.name.lower()}", f"addr:{where}")
        wait = service.limiter.retry_after(*keys)
        if wait:
            log.warning("login throttled for user %r from %s (retry in %ss)", creds.name, where, wait)
            if form:  # a person at the login form gets the form again with a sentence, not a JSON body
                return Redirect(f"/login?throttled={int(wait)}&next={quote(_local_path(creds.next))}", status_code=303,
                                headers={"Retry-After": str(wait)})
            raise TooManyRequestsException(
                f"too many failed logins; try again in {wait}s", headers={"Retry-After": str(wait)}
            )
        found = await store.password_hash_of(service.db, creds.name)
        ok, rehash = await service.passwords.verify(found[1] if found else None, creds.password)
        if not ok or found is None:
            service.limiter.failed(*keys)
            log.warning("login failed for user %r from %s", creds.name, where)
            if form:
                return Redirect(f"/login?failed=1&next={quote(_local_path(creds.next))}", status_code=303)
            raise NotAuthorizedException("wrong user name or password")
        user = found[0]
        if rehash:  # argon2 parameters were raised since this hash was made
            await store.set_password_hash(service.db, user.id, await service.passwords.hash(creds.password))
        if old := request.cookies.get(SESSION_COOKIE):  # never keep a session id from before login
            await store.delete_session(service.db, old)
        sid = await store.create_session(service.db, user.id, service.session_ttl_s)
        log.info("user %r logged in from %s", user.name, where)
        cookie = session_cookie(request, sid, int(service.session_ttl_s))
        if form:
            return Redirect(_local_path(creds.next), status_code=303, cookies=[cookie])
        return Response({"name": user.name, "role": user.role}, cookies=[cookie])

    @post("/api/logout", opt=PUBLIC, status_code=204)
    async def logout(request: Request[Any, Any, Any]) -> Response[None]:
        if sid := request.cookies.get(SESSION_COOKIE):
            await store.delete_session(service.db, sid)
        return Response(None, status_code=204, cookies=[session_cookie(request, "", 0)])

    @get("/api/me")
    async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
        who = principal_of(request)
        assert who is not None  # the middleware let only authenticated callers through
        return {"name": who.name, "role": who.role, "via": who.via}

    # ---- users (admins) ------------------------------------------------------------------------------

    admin = [require_role("admin")]

    @get("/api/users", guards=admin)
    async def users_list() -> list[dict[str, Any]]:
        return [u.view() for u in await store.list_users(service.db)]

    @post("/api/users", guards=admin, opt={"min_role": "admin"}, operation_class=documented(UserIn))
    async def users_add(request: Request[Any, Any, Any]) -> dict[str, Any]:
        data = await decode(request, UserIn)
        check_user_name(data.name)
        check_role(data.role)
        check_password(data.password)
        user = await store.add_user(service.db, data.name, data.role, await service.passwords.hash(data.password))
        log.info("user %r added with role %s by %s", user.name, user.role, principal_of(request).name)  # type: ignore[union-attr]
        return user.view()

    @delete("/api/users/{name:str}", guards=admin, opt={"min_role": "admin"})
    async def users_remove(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        await store.remove_user(service.db, name, keep_an_admin=True)
        log.info("user %r removed by %s", name, principal_of(request).name)  # type: ignore[union-attr]

    # ---- API tokens (own tokens; admins: anyone's) ---------------------------------------------------

    @get("/api/tokens")
    async def tokens_list(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        who = principal_of(request)
        assert who is not None
        return await store.list_tokens(service.db, None if who.can("admin") else who.name)

    @post("/api/tokens", opt=ANY_USER, operation_class=documented(TokenIn))
    async def tokens_create(request: Request[Any, Any, Any]) -> dict[str, Any]:
        who = principal_of(request)
        assert who is not None
        data = await decode(request, TokenIn)
        owner = data.user or who.name
        if owner != who.name and not who.can("admin"):
            raise PermissionDeniedException("only admins create tokens for other users")
        tid, token = await store.create_token(service.db, owner, data.label)
        log.info("API token %d (%r) created for %r by %s", tid, data.label, owner, who.name)
        return {"id": tid, "user": owner, "label": data.label, "token": token}

    @delete("/api/tokens/{token_id:int}", opt=ANY_USER)
    async def tokens_revoke(request: Request[Any, Any, Any], token_id: FromPath[Annotated[int, Parameter(ge=1, le=2**63 - 1, description="token id")]]) -> None:
        who = principal_of(request)
        assert who is not None
        owner = await store.token_owner(service.db, token_id)
        if owner is None or (owner != who.name and not who.can("admin")):
            raise NotFound(f"token {token_id} does not exist")  # others' token ids are not revealed
        await store.revoke_token(service.db, token_id)
        log.info("API token %d of %r revoked by %s", token_id, owner, who.name)

    return [login_page, csrf_token, login, logout, me, users_list, users_add, users_remove,
            tokens_list, tokens_create, tokens_revoke]
