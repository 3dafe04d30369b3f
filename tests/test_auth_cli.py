"""``swtel user …`` against a real PostgreSQL: users, tokens, and one-line errors."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from typing import Any

import asyncpg
import pytest

from swtel.hub.auth import store


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_add_list_token_revoke_remove(swtel: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SWTEL_DATABASE_URL": database_url}  # the environment works as well as --db
    assert swtel("db", "migrate", env=env).code == 0
    _stdin(monkeypatch, "first-admin-pass\n")
    r = swtel("user", "add", "ada", "--role", "admin", "--password-stdin", env=env)
    assert r.code == 0, r.err
    assert "added user ada (admin)" in r.out and "first-admin-pass" not in r.out + r.err

    _stdin(monkeypatch, "viewer-pass-123\n")
    assert swtel("user", "add", "vera", "--role", "viewer", "--password-stdin", "--db", database_url).code == 0
    rows = json.loads(swtel("user", "list", "--json", "--db", database_url).out)
    assert [(u["name"], u["role"], u["tokens"]) for u in rows] == [("ada", "admin", 0), ("vera", "viewer", 0)]

    made = swtel("user", "token", "vera", "--name", "grafana", "--db", database_url)
    assert made.code == 0, made.err
    token = made.out.strip()
    assert token.startswith("swt_") and made.out.count("\n") == 1  # only the token on stdout, for $(…)
    assert "shown once" in made.err
    listed = json.loads(swtel("user", "tokens", "vera", "--json", "--db", database_url).out)
    assert [(t["user"], t["label"]) for t in listed] == [("vera", "grafana")]
    assert token not in json.dumps(listed)

    async def token_works() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            return await store.token_user(conn, token) is not None
        finally:
            await conn.close()

    assert asyncio.run(token_works())
    revoked = swtel("user", "token-revoke", str(listed[0]["id"]), "--db", database_url)
    assert revoked.code == 0, revoked.err
    assert not asyncio.run(token_works())
    again = swtel("user", "token-revoke", str(listed[0]["id"]), "--db", database_url)
    assert again.code == 2 and again.err.strip() == f"error: token {listed[0]['id']} does not exist"

    assert swtel("user", "remove", "vera", "--db", database_url).code == 0
    assert [u["name"] for u in json.loads(swtel("user", "list", "--json", "--db", database_url).out)] == ["ada"]
    gone = swtel("user", "remove", "vera", "--db", database_url)
    assert gone.code == 2 and "user 'vera' does not exist" in gone.err


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "add", "bob", "--role", "root", "--password-stdin"], "long-enough-pw\n", "role 'root' is unknown"),
        (["user", "add", "bad name", "--role", "viewer", "--password-stdin"], "long-enough-pw\n", "user name 'bad name'"),
        (["user", "add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "a password must have 8"),
        (["user", "add", "bob", "--role", "viewer", "--password-stdin"], "", "a password must have 8"),
        (["user", "token", "nobody"], "", "user 'nobody' does not exist"),
        (["user", "token-revoke", "abc"], "", "token id 'abc' must be a number"),
    ],
)
def test_user_mistakes_are_one_line(
    swtel: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str, message: str
) -> None:
    _stdin(monkeypatch, stdin)
    r = swtel(*args, "--db", database_url)
    assert r.code == 2 and message in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert not stdin.strip() or stdin.strip() not in r.err  # the password itself is never echoed


def test_a_duplicate_user_is_refused(swtel: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for expected in (0, 2):
        _stdin(monkeypatch, "long-enough-pw\n")
        r = swtel("user", "add", "bob", "--role", "viewer", "--password-stdin", "--db", database_url)
        assert r.code == expected
    assert r.err.strip() == "error: user 'bob' already exists"


def test_a_dead_database_is_one_line_naming_the_dsn_without_its_password(swtel: Any) -> None:
    from support.ports import free_port

    dsn = f"postgresql://swtel:hunter2secret@127.0.0.1:{free_port()}/swtel"
    r = swtel("user", "list", "--db", dsn)
    assert r.code == 2
    line = r.err.strip()
    assert len(line.splitlines()) == 1 and "hunter2secret" not in line
    assert line.startswith(f"error: cannot connect to PostgreSQL at postgresql://swtel:***@127.0.0.1:{dsn.split(':')[3].split('/')[0]}/swtel")


@pytest.mark.asyncio
async def test_concurrent_removals_never_leave_no_admin(database_url: str) -> None:
    from support.authapp import add_users

    await add_users(database_url, {"ada": "admin", "abe": "admin"})
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2)
    try:
        results = await asyncio.gather(
            store.remove_user(pool, "ada", keep_an_admin=True), store.remove_user(pool, "abe", keep_an_admin=True),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["LastAdmin", "NoneType"], results
        assert [u.role for u in await store.list_users(pool)] == ["admin"]
    finally:
        await pool.close()


def test_passwd_ends_sessions_and_set_role_keeps_an_admin(
        swtel: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.authapp import add_users

    from swtel.hub.auth.passwords import _verify

    assert swtel("db", "migrate", "--db", database_url).code == 0

    async def db(work: Any) -> Any:  # the CLI runs its own event loop: each check gets a short one
        conn = await asyncpg.connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    async def open_session(conn: asyncpg.Connection) -> str:
        vera = (await store.password_hash_of(conn, "vera"))[0]  # type: ignore[index]
        return await store.create_session(conn, vera.id, 3600)

    asyncio.run(add_users(database_url, {"ada": "admin", "vera": "viewer"}))
    sid = asyncio.run(db(open_session))
    assert asyncio.run(db(lambda c: store.session_user(c, sid))) is not None

    _stdin(monkeypatch, "a-brand-new-secret\n")
    r = swtel("user", "passwd", "vera", "--password-stdin", "--db", database_url)
    assert r.code == 0 and "a-brand-new-secret" not in r.out + r.err
    assert asyncio.run(db(lambda c: store.session_user(c, sid))) is None  # logged out everywhere
    _, hashed = asyncio.run(db(lambda c: store.password_hash_of(c, "vera")))
    assert _verify(hashed, "a-brand-new-secret")[0]

    assert swtel("user", "set-role", "vera", "operator", "--db", database_url).code == 0
    roles = {u["name"]: u["role"] for u in json.loads(swtel("user", "list", "--json", "--db", database_url).out)}
    assert roles == {"ada": "admin", "vera": "operator"}
    last = swtel("user", "set-role", "ada", "viewer", "--db", database_url)
    assert last.code == 2 and "'ada' is the last admin" in last.err
    assert swtel("user", "set-role", "vera", "root", "--db", database_url).code == 2
    _stdin(monkeypatch, "another-secret-1\n")
    nobody = swtel("user", "passwd", "nobody", "--password-stdin", "--db", database_url)
    assert nobody.code == 2 and "user 'nobody' does not exist" in nobody.err
