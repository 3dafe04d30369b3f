"""Hub authentication over HTTP and WebSocket: a real uvicorn, PostgreSQL and NATS (tests/support/authapp.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from support.authapp import PASSWORDS, Hub, add_users, build_app, csrf_header, login, serve

from swtel.shared import settings as settings_mod
from swtel.shared.errors import NotFound
from swtel.shared.inventory import Inventory
from swtel.shared.natsconn import connect

DEVICE = {"name": "sw1.lab", "address": "10.0.0.1", "protocol": "gnmi"}

# Every route the auth branch adds or stands in for, with a body where it needs one.
PROTECTED = [
    ("GET", "/api/me", None), ("GET", "/api/users", None), ("GET", "/api/tokens", None),
    ("GET", "/api/devices", None), ("GET", "/api/fake-read", None),
    ("POST", "/api/users", {"name": "x", "role": "viewer", "password": "long-enough"}),
    ("DELETE", "/api/users/vera", None), ("POST", "/api/tokens", {}), ("DELETE", "/api/tokens/1", None),
    ("POST", "/api/devices", DEVICE), ("DELETE", "/api/devices/sw1.lab", None),
    ("PUT", "/api/devices/sw1.lab/pin", {"agent": "a1"}), ("DELETE", "/api/devices/sw1.lab/pin", None),
]
WRITES = [(m, p, b) for m, p, b in PROTECTED if m != "GET"]


@pytest_asyncio.fixture
async def hub(database_url: str, bootstrapped: str) -> AsyncIterator[Hub]:
    await add_users(database_url)
    async with serve(build_app(database_url, bootstrapped)) as h:
        yield h


@asynccontextmanager
async def logged_in(hub: Hub, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with hub.client() as client:
        r = await login(client, name)
        assert r.status_code == 200, r.text
        yield client


async def call(client: httpx.AsyncClient, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    return await client.request(method, path, json=body, **kw)


async def token_for(client: httpx.AsyncClient, label: str = "script") -> tuple[int, str]:
    r = await client.post("/api/tokens", json={"label": label}, headers=csrf_header(client))
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


@pytest.mark.asyncio
async def test_every_protected_route_answers_401_without_a_valid_caller(hub: Hub) -> None:
    async with hub.client() as anon:
        assert (await anon.get("/api/health")).status_code == 200
        for method, path, body in PROTECTED:
            r = await call(anon, method, path, body)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.json()["detail"] == "authentication required"
            r = await call(anon, method, path, body, headers={"Authorization": "Bearer swt_not-a-real-token"})
            assert r.status_code == 401, (method, path, "bad token", r.status_code)
    async with hub.client(cookies={"swtel_session": "forged-or-expired"}) as forged:
        for method, path, body in PROTECTED:
            r = await call(forged, method, path, body)
            assert r.status_code == 401, (method, path, "bad session", r.status_code)


@pytest.mark.asyncio
async def test_a_viewer_reads_but_every_write_is_403(hub: Hub) -> None:
    async with logged_in(hub, "vera") as vera:
        assert (await vera.get("/api/fake-read")).json() == {"ok": True}
        assert (await vera.get("/api/devices")).status_code == 200
        assert (await vera.get("/api/me")).json() == {"name": "vera", "role": "viewer", "via": "session"}
        assert (await vera.get("/api/users")).status_code == 403
        for method, path, body in WRITES:
            if path.startswith("/api/tokens"):
                continue  # every user manages their own tokens (tested below)
            r = await call(vera, method, path, body, headers=csrf_header(vera))  # CSRF is right: only the role is wrong
            assert r.status_code == 403, (method, path, r.status_code, r.text)
        _, token = await token_for(vera)
    async with hub.client(headers={"Authorization": f"Bearer {token}"}) as script:
        assert (await script.get("/api/me")).json()["via"] == "token"
        r = await script.post("/api/devices", json=DEVICE)
        assert r.status_code == 403 and "operator" in r.json()["detail"]


@pytest.mark.asyncio
async def test_an_operator_adds_pins_and_removes_devices_in_the_cli_inventory(
    hub: Hub, bootstrapped: str, swtel: Any
) -> None:
    async with logged_in(hub, "otto") as otto:
        h = csrf_header(otto)
        r = await otto.post("/api/devices", json={**DEVICE, "tags": {"site": "lab"}, "interval": "5s"}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "sw1.lab" and r.json()["port"] == 9339

        listed = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "list", "--json")
        assert listed.code == 0, listed.err
        (row,) = json.loads(listed.out)
        assert row["name"] == "sw1.lab" and row["tags"] == {"site": "lab"}
        assert row["subscriptions"][0]["interval_s"] == 5.0

        again = await otto.post("/api/devices", json=DEVICE, headers=h)
        assert again.status_code == 409 and again.json()["detail"] == "device 'sw1.lab' already exists"
        bad = await otto.post("/api/devices", json={**DEVICE, "name": "sw2", "protocol": "telnet"}, headers=h)
        assert bad.status_code == 400 and bad.json()["field"] == "protocol"
        assert "\n" not in bad.json()["detail"] and "telnet" in bad.json()["detail"]
        unknown_field = await otto.post("/api/devices", json={**DEVICE, "name": "sw2", "pasword": "x"}, headers=h)
        assert unknown_field.status_code == 400 and "pasword" in unknown_field.json()["detail"]
        not_json = await otto.post("/api/devices", content=b"{", headers={**h, "content-type": "application/json"})
        assert not_json.status_code == 400

        pinned = await otto.put("/api/devices/sw1.lab/pin", json={"agent": "agent-7"}, headers=h)
        assert pinned.status_code == 200 and pinned.json()["pinned"] == "agent-7"
        shown = await asyncio.to_thread(swtel, "--nats", bootstrapped, "device", "show", "sw1.lab", "--json")
        assert json.loads(shown.out)["pinned"] == "agent-7"
        assert (await otto.put("/api/devices/nope/pin", json={"agent": "a"}, headers=h)).status_code == 404
        assert (await otto.put("/api/devices/sw1.lab/pin", json={"agent": "bad agent"}, headers=h)).status_code == 400
        unpinned = await otto.delete("/api/devices/sw1.lab/pin", headers=h)
        assert unpinned.status_code == 200 and unpinned.json()["pinned"] is None

        assert (await otto.delete("/api/devices/sw1.lab", headers=h)).status_code == 204
        assert (await otto.delete("/api/devices/sw1.lab", headers=h)).status_code == 404
    nc = await connect(settings_mod.load({"nats_url": bootstrapped}, env={}), name="test")
    try:
        with pytest.raises(NotFound):
            await (await Inventory.open(nc.jetstream())).get("sw1.lab")
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_only_admins_manage_users_and_removal_ends_sessions_at_once(hub: Hub) -> None:
    new = {"name": "nina", "role": "operator", "password": "nina-pass-3456"}
    async with logged_in(hub, "otto") as otto:
        assert (await otto.post("/api/users", json=new, headers=csrf_header(otto))).status_code == 403
        assert (await otto.delete("/api/users/vera", headers=csrf_header(otto))).status_code == 403
        assert (await otto.get("/api/users")).status_code == 403
    async with logged_in(hub, "ada") as ada:
        h = csrf_header(ada)
        r = await ada.post("/api/users", json=new, headers=h)
        assert r.status_code == 201 and r.json()["role"] == "operator" and "password" not in r.text
        assert (await ada.post("/api/users", json=new, headers=h)).status_code == 409
        short = await ada.post("/api/users", json={**new, "name": "sam", "password": "short7!"}, headers=h)
        assert short.status_code == 400 and "short7!" not in short.text
        role = await ada.post("/api/users", json={**new, "name": "sam", "role": "root"}, headers=h)
        assert role.status_code == 400 and role.json()["field"] == "role"
        names = {u["name"]: u["role"] for u in (await ada.get("/api/users")).json()}
        assert names == {"ada": "admin", "nina": "operator", "otto": "operator", "vera": "viewer"}

        async with hub.client() as nina:
            assert (await login(nina, "nina", new["password"])).status_code == 200
            assert (await nina.get("/api/me")).status_code == 200
            assert (await ada.delete("/api/users/nina", headers=h)).status_code == 204
            assert (await nina.get("/api/me")).status_code == 401
        assert (await ada.delete("/api/users/nina", headers=h)).status_code == 404
        last = await ada.delete("/api/users/ada", headers=h)
        assert last.status_code == 409 and "last admin" in last.json()["detail"]


@pytest.mark.asyncio
async def test_csrf_is_enforced_for_cookie_sessions(hub: Hub) -> None:
    async with hub.client() as c:
        csrf = (await c.get("/api/csrf")).json()["csrf_token"]
        no_token = await c.post("/api/login", json={"name": "otto", "password": PASSWORDS["otto"]})
        assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]  # login CSRF too
        ok = await c.post("/api/login", json={"name": "otto", "password": PASSWORDS["otto"]},
                          headers={"X-CSRFToken": csrf})
        assert ok.status_code == 200
        for headers in ({}, {"X-CSRFToken": "0" * 128}, {"X-CSRFToken": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")}):
            r = await c.post("/api/devices", json=DEVICE, headers=headers)
            assert r.status_code == 403 and "CSRF" in r.json()["detail"], headers
            r = await c.delete("/api/devices/sw1.lab", headers=headers)
            assert r.status_code == 403, headers
        # A forged request from another site carries the session cookie but can neither read nor set
        # the csrftoken cookie: a token from another client's cookie does not match this one's.
        async with hub.client() as attacker:
            other = (await attacker.get("/api/csrf")).json()["csrf_token"]
        assert (await c.post("/api/devices", json=DEVICE, headers={"X-CSRFToken": other})).status_code == 403
        assert (await c.post("/api/devices", json=DEVICE, headers={"X-CSRFToken": csrf})).status_code == 201
        # HTML forms send the token as a field.
        form = await c.post("/api/logout", data={"_csrf_token": csrf})
        assert form.status_code == 204
        assert (await c.get("/api/me")).status_code == 401


@pytest.mark.asyncio
async def test_bearer_tokens_need_no_csrf_and_revocation_is_immediate(hub: Hub) -> None:
    async with logged_in(hub, "otto") as otto:
        tid, token = await token_for(otto, "ci")
        assert token.startswith("swt_")
        assert [t["label"] for t in (await otto.get("/api/tokens")).json()] == ["ci"]
        assert "token" not in (await otto.get("/api/tokens")).json()[0]
    async with hub.client(headers={"Authorization": f"Bearer {token}"}) as script:
        assert (await script.post("/api/devices", json=DEVICE)).status_code == 201  # no CSRF token, no cookie
        # The token is the whole identity: a session cookie alongside it is ignored, not combined.
        assert (await script.get("/api/me")).json() == {"name": "otto", "role": "operator", "via": "token"}
        async with logged_in(hub, "vera") as vera:
            # Another user's token id is not revealed, let alone revocable.
            assert (await vera.delete(f"/api/tokens/{tid}", headers=csrf_header(vera))).status_code == 404
        async with logged_in(hub, "ada") as ada:
            assert (await ada.delete(f"/api/tokens/{tid}", headers=csrf_header(ada))).status_code == 204
        assert (await script.get("/api/me")).status_code == 401
        assert (await script.delete("/api/devices/sw1.lab")).status_code == 401


@pytest.mark.asyncio
async def test_session_cookie_flags_and_logout(hub: Hub, database_url: str) -> None:
    async with hub.client() as c:
        r = await login(c, "vera")
        cookie = r.headers["set-cookie"]
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "path", "max-age", "samesite"} <= attrs and "secure" not in attrs, cookie
        assert "samesite=lax" in cookie.lower()
        sid = c.cookies["swtel_session"]
        conn = await asyncpg.connect(database_url)
        try:  # the database holds a hash of the session id, never the id itself
            assert await conn.fetchval("SELECT count(*) FROM auth_sessions WHERE id_hash = $1", sid.encode()) == 0
            assert await conn.fetchval("SELECT count(*) FROM auth_sessions") == 1
        finally:
            await conn.close()
        out = await c.post("/api/logout", headers=csrf_header(c))
        assert out.status_code == 204 and "max-age=0" in out.headers["set-cookie"].lower()
    async with hub.client(cookies={"swtel_session": sid}) as replay:
        assert (await replay.get("/api/me")).status_code == 401  # the old cookie is dead on the server too

    # Behind a TLS-terminating proxy (uvicorn trusts X-Forwarded-Proto from 127.0.0.1 here).
    async with hub.client(headers={"X-Forwarded-Proto": "https"}) as tls:
        csrf_resp = await tls.get("/api/csrf")
        assert "secure" in csrf_resp.headers["set-cookie"].lower()
        csrf = csrf_resp.json()["csrf_token"]  # httpx rightly keeps a Secure cookie off plain http: send it by hand
        r = await tls.post("/api/login", json={"name": "vera", "password": PASSWORDS["vera"]},
                           headers={"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"})
        assert r.status_code == 200 and "; secure" in r.headers["set-cookie"].lower()


@pytest.mark.asyncio
async def test_secure_cookies_always(database_url: str, bootstrapped: str) -> None:
    await add_users(database_url, {"vera": "viewer"})
    async with serve(build_app(database_url, bootstrapped, hub_secure_cookies="always")) as h, h.client() as c:
        csrf = await c.get("/api/csrf")
        assert "secure" in csrf.headers["set-cookie"].lower()
        token = csrf.json()["csrf_token"]
        r = await c.post("/api/login", json={"name": "vera", "password": PASSWORDS["vera"]},
                         headers={"X-CSRFToken": token, "Cookie": f"csrftoken={token}"})
        assert r.status_code == 200 and "; secure" in r.headers["set-cookie"].lower()


async def ws_handshake(hub: Hub, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Drive a WebSocket upgrade through the running app (this venv has no WebSocket client library)
    and return what the app sent: an accept and data, or a close before accept."""
    host = hub.url.removeprefix("http://")
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "http_version": "1.1",
        "path": "/ws/fake-live", "raw_path": b"/ws/fake-live", "query_string": b"", "root_path": "",
        "headers": [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", int(host.split(":")[1])), "subprotocols": [],
        "state": {},
    }
    sent: list[dict[str, Any]] = []
    closed = asyncio.Event()
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "websocket.connect"}
        await closed.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            closed.set()

    await asyncio.wait_for(hub.app(scope, receive, send), 10)
    return sent


@pytest.mark.asyncio
async def test_websocket_upgrades_need_a_caller_and_a_same_site_origin(hub: Hub) -> None:
    anon = await ws_handshake(hub, {})
    assert anon[0]["type"] == "websocket.close" and anon[0]["code"] == 4401
    async with logged_in(hub, "vera") as vera:
        cookie = f"swtel_session={vera.cookies['swtel_session']}"
        _, token = await token_for(vera)
    ok = await ws_handshake(hub, {"cookie": cookie, "origin": hub.url})
    assert ok[0]["type"] == "websocket.accept" and json.loads(ok[1]["text"]) == {"user": "vera"}
    hijack = await ws_handshake(hub, {"cookie": cookie, "origin": "https://evil.example"})
    assert hijack[0]["type"] == "websocket.close" and hijack[0]["code"] == 4403
    scripted = await ws_handshake(hub, {"authorization": f"Bearer {token}"})
    assert scripted[0]["type"] == "websocket.accept"
    bad = await ws_handshake(hub, {"authorization": "Bearer swt_nope"})
    assert bad[0]["code"] == 4401


@pytest.mark.asyncio
async def test_a_database_outage_is_503_not_a_crash_and_health_still_answers(
    hub: Hub, database_url: str, pg_admin_url: str
) -> None:
    from support.waits import eventually

    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_admin_url)
    try:
        async with logged_in(hub, "vera") as vera:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            r = await vera.get("/api/me")
            assert r.status_code == 503 and "database is unavailable" in r.json()["detail"]
            assert (await vera.get("/api/health")).status_code == 200
            assert (await login(vera, "vera")).status_code == 503  # handlers that query answer 503 too
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

            async def back() -> int:
                return (await vera.get("/api/me")).status_code == 200

            await eventually(back, timeout=10, what="the session to work again once the database is back")
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
