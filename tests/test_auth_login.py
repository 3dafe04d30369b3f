"""Login: throttling, secrets kept out of logs, the first-admin hint, and the HTML form."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from support.authapp import PASSWORDS, add_users, build_app, csrf_header, login, serve

from swtel.hub.auth.ratelimit import LoginLimiter
from swtel.hub.auth.service import FIRST_ADMIN_HINT


# The test's own HTTP client logs response headers (Set-Cookie) at DEBUG: that is this process playing
# the browser, not the hub, so its records are left out of the hub's logs.
CLIENT_SIDE = {"httpx", "httpcore"}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        out = []
        for r in self.records:
            if r.name.split(".")[0] in CLIENT_SIDE:
                continue
            out.append(r.getMessage())
            out.append(repr(r.args))
            if r.exc_info:
                out.append(logging.Formatter().formatException(r.exc_info))
        return "\n".join(out)


@contextmanager
def every_log_record() -> Iterator[_Collect]:
    """Every record of every logger at DEBUG: levels raised and loggers disabled by earlier code (uvicorn's
    ``log_level``, ``dictConfig``) are undone for the duration, and loggers that do not propagate to the
    root get the handler too."""
    h = _Collect()
    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    with_handler = [lg for lg in loggers if lg is logging.root or not lg.propagate]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    for lg in with_handler:
        lg.addHandler(h)
    try:
        yield h
    finally:
        for lg in with_handler:
            lg.removeHandler(h)
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled


@pytest.mark.asyncio
async def test_failed_logins_are_throttled_per_user_and_per_address(database_url: str, bootstrapped: str) -> None:
    await add_users(database_url)
    app = build_app(database_url, bootstrapped, hub_login_failures=3)
    async with serve(app) as hub, hub.client() as c:
        csrf = (await c.get("/api/csrf")).json()["csrf_token"]

        async def attempt(name: str, password: str, address: str) -> Any:
            # uvicorn takes the client address from X-Forwarded-For when the peer is a trusted proxy.
            return await c.post("/api/login", json={"name": name, "password": password},
                                headers={"X-CSRFToken": csrf, "X-Forwarded-For": address})

        # Per user: three wrong passwords from three addresses lock the name, even for the right password.
        for i in range(3):
            assert (await attempt("vera", "wrong-password", f"10.0.0.{i}")).status_code == 401
        locked = await attempt("vera", PASSWORDS["vera"], "10.0.0.9")
        assert locked.status_code == 429, locked.text
        assert 1 <= int(locked.headers["Retry-After"]) <= 60
        assert (await attempt("otto", PASSWORDS["otto"], "10.0.0.9")).status_code == 200  # others are unaffected

        # Per address: three failures for three names lock the address, whatever the name.
        for name in ("mallory", "trent", "eve"):
            assert (await attempt(name, "guess-guess", "10.9.9.9")).status_code == 401
        throttled = await attempt("ada", PASSWORDS["ada"], "10.9.9.9")
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        assert (await attempt("ada", PASSWORDS["ada"], "10.9.9.10")).status_code == 200


@pytest.mark.asyncio
async def test_passwords_tokens_and_session_ids_never_reach_the_logs(
    database_url: str, bootstrapped: str, swtel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_users(database_url)
    secrets: list[str] = [PASSWORDS["ada"], PASSWORDS["otto"], "wrong-Zq9x-password", "fresh-Kp3m-password",
                          "cli-Wd8r-password"]
    app = build_app(database_url, bootstrapped)  # before capturing: Litestar's logging setup resets handlers
    with every_log_record() as logs:
        async with serve(app) as hub, hub.client() as c:
            csrf = (await c.get("/api/csrf")).json()["csrf_token"]
            bad = await c.post("/api/login", json={"name": "ada", "password": "wrong-Zq9x-password"},
                               headers={"X-CSRFToken": csrf})
            assert bad.status_code == 401 and "wrong-Zq9x" not in bad.text
            assert (await login(c, "ada")).status_code == 200
            secrets.append(c.cookies["swtel_session"])
            h = csrf_header(c)
            made = await c.post("/api/users", json={"name": "fred", "role": "viewer", "password": "fresh-Kp3m-password"},
                                headers=h)
            assert made.status_code == 201
            token = (await c.post("/api/tokens", json={"label": "logs"}, headers=h)).json()
            secrets.append(token["token"])
            bearer = {"Authorization": f"Bearer {token['token']}"}
            async with hub.client(headers=bearer) as script:
                assert (await script.get("/api/me")).status_code == 200
                assert (await script.post("/api/devices", json={"name": "s1", "address": "10.1.1.1",
                                                                "protocol": "ssh"})).status_code == 201
                assert (await c.delete(f"/api/tokens/{token['id']}", headers=h)).status_code == 204
                assert (await script.get("/api/me")).status_code == 401

            form = await c.post("/api/login", data={"name": "otto", "password": PASSWORDS["otto"],
                                                    "_csrf_token": csrf})
            assert form.status_code == 303

            monkeypatch.setattr(sys, "stdin", io.StringIO("cli-Wd8r-password\n"))
            added = await asyncio.to_thread(swtel, "user", "add", "carl", "--role", "operator",
                                            "--password-stdin", "--db", database_url)
            assert added.code == 0, added.err
            made_token = await asyncio.to_thread(swtel, "user", "token", "carl", "--db", database_url)
            cli_token = made_token.out.strip()
            secrets.append(cli_token)
            async with hub.client(headers={"Authorization": f"Bearer {cli_token}"}) as script:
                assert (await script.get("/api/me")).json()["name"] == "carl"
            assert (await login(c, "carl", "cli-Wd8r-password")).status_code == 200

    text = logs.text()
    # The capture saw the traffic (so an absent secret means something) ...
    assert "login failed for user 'ada'" in text and "user 'carl' logged in" in text
    assert '"POST /api/login HTTP/1.1" 401' in text and "API token" in text
    # ... and none of the secrets.
    for secret in secrets:
        assert secret and secret not in text, f"a secret leaked into the logs: {secret[:4]}…"


@pytest.mark.asyncio
async def test_first_start_says_how_to_create_the_first_admin_and_has_no_default_user(
    database_url: str, bootstrapped: str
) -> None:
    app = build_app(database_url, bootstrapped)
    with every_log_record() as logs:
        async with serve(app) as hub, hub.client() as c:
            for name, password in (("admin", "admin"), ("admin", "password"), ("root", "root")):
                csrf = (await c.get("/api/csrf")).json()["csrf_token"]
                r = await c.post("/api/login", json={"name": name, "password": password}, headers={"X-CSRFToken": csrf})
                assert r.status_code == 401
    hints = [r for r in logs.records if r.getMessage() == FIRST_ADMIN_HINT]
    assert len(hints) == 1 and "swtel user add NAME --role admin" in FIRST_ADMIN_HINT

    await add_users(database_url, {"ada": "admin"})
    app = build_app(database_url, bootstrapped)
    with every_log_record() as logs:
        async with serve(app):
            pass
    assert any("startup complete" in r.getMessage() for r in logs.records)
    assert FIRST_ADMIN_HINT not in logs.text()


@pytest.mark.asyncio
async def test_the_login_page_form_and_safe_redirects(database_url: str, bootstrapped: str) -> None:
    await add_users(database_url, {"vera": "viewer"})
    async with serve(build_app(database_url, bootstrapped)) as hub, hub.client() as c:
        html_accept = {"Accept": "text/html,application/xhtml+xml"}
        sent_away = await c.get("/fake-dashboard", params={"tab": "cpu"}, headers=html_accept)
        assert sent_away.status_code == 303 and sent_away.headers["location"] == "/login?next=/fake-dashboard%3Ftab%3Dcpu"
        assert (await c.get("/fake-dashboard")).status_code == 401  # a script gets the API answer
        assert (await c.get("/api/fake-read", headers=html_accept)).status_code == 401
        page = await c.get("/login", params={"next": "/devices"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert token == c.cookies["csrftoken"]
        form = {"name": "vera", "password": "not-her-password", "next": "/devices", "_csrf_token": token}
        failed = await c.post("/api/login", data=form)
        assert failed.status_code == 303 and failed.headers["location"] == "/login?failed=1&next=/devices"
        assert "Wrong user name or password" in (await c.get(failed.headers["location"])).text
        ok = await c.post("/api/login", data={**form, "password": PASSWORDS["vera"]})
        assert ok.status_code == 303 and ok.headers["location"] == "/devices"
        assert "httponly" in ok.headers["set-cookie"].lower()
        assert (await c.get("/api/me")).json()["name"] == "vera"
        assert (await c.get("/fake-dashboard", headers=html_accept)).text == "<h1>dashboard</h1>"
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            r = await c.post("/api/login", data={**form, "password": PASSWORDS["vera"], "next": target})
            assert r.headers["location"] == "/", target
        no_csrf = await c.post("/api/login", data={k: v for k, v in form.items() if k != "_csrf_token"})
        assert no_csrf.status_code == 403


def test_the_limiter_forgets_failures_after_the_window_and_bounds_its_memory() -> None:
    now = [1000.0]
    limiter = LoginLimiter(failures=2, window_s=60, max_keys=3, clock=lambda: now[0])
    limiter.failed("user:a", "addr:x")
    now[0] += 30
    limiter.failed("user:a", "addr:y")
    assert limiter.retry_after("user:a") == 30 and limiter.retry_after("addr:x") == 0
    now[0] += 29.5
    assert limiter.retry_after("user:a", "addr:z") == 1  # rounded up: never "retry in 0s" while locked
    now[0] += 0.5
    assert limiter.retry_after("user:a") == 0  # the first failure aged out
    for key in ("k1", "k2", "k3", "k4"):
        limiter.failed(key)
    assert len(limiter._seen) == 3


@pytest.mark.asyncio
async def test_a_throttled_form_login_gets_the_form_back_with_a_sentence(database_url: str, bootstrapped: str) -> None:
    await add_users(database_url, {"vera": "viewer"})
    async with serve(build_app(database_url, bootstrapped)) as hub, hub.client() as c:
        page = await c.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"name": "vera", "password": "not-her-password", "next": "/", "_csrf_token": token}
        for _ in range(20):
            r = await c.post("/api/login", data=form)
            if "throttled=" in r.headers.get("location", ""):
                break
            assert r.status_code == 303 and "failed=1" in r.headers["location"]
        else:
            raise AssertionError("twenty failed form logins were never throttled")
        assert r.status_code == 303 and int(r.headers["Retry-After"]) >= 1
        shown = (await c.get(r.headers["location"])).text
        assert "Too many failed sign-ins. Try again in" in shown and "{" not in shown.split("<body>")[1]
        assert "<style>" in shown and '"detail"' not in shown
