"""A `.creds` file (user JWT + nkey seed, NATS operator mode) works through the `nats_creds` setting.

Operator mode is normally set up with `nsc`, which is not installed here; this test mints the operator,
account and user JWTs itself (ed25519 nkeys, the documented JWT layout) and preloads the account into a
real nats-server with the memory resolver. The server, not this file, decides whether they are valid.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import nkeys
import pytest

from support.natsconfigs import ConfiguredServer
from swtel.shared import settings
from swtel.shared.errors import ConnectFailed
from swtel.shared.natsconn import connect


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def keypair(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))


def jwt(issuer: nkeys.KeyPair, subject: str, name: str, nats: dict[str, Any]) -> str:
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    claims = {"jti": _b64(os.urandom(16)), "iat": int(time.time()), "iss": issuer.public_key.decode(),
              "name": name, "sub": subject, "nats": {**nats, "version": 2}}
    body = _b64(json.dumps(claims).encode())
    return f"{header}.{body}.{_b64(issuer.sign(f'{header}.{body}'.encode()))}"


@pytest.mark.asyncio
async def test_creds_file_authenticates_and_carries_permissions(tmp_path: Path) -> None:
    operator = keypair(nkeys.PREFIX_BYTE_OPERATOR)
    account = keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    user = keypair(nkeys.PREFIX_BYTE_USER)
    op_pub, acc_pub = operator.public_key.decode(), account.public_key.decode()
    operator_jwt = jwt(operator, op_pub, "swtel-op", {"type": "operator"})
    account_jwt = jwt(operator, acc_pub, "SWTEL", {"type": "account", "limits": {"subs": -1, "conn": -1, "data": -1, "payload": -1}})
    user_jwt = jwt(account, user.public_key.decode(), "agent", {
        "type": "user", "subs": -1, "data": -1, "payload": -1,
        "pub": {"allow": ["swtel.telemetry.>"]}, "sub": {"allow": ["_INBOX_agent.>", "swtel.telemetry.>"]},
    })
    creds = tmp_path / "agent.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    creds.chmod(0o600)
    conf = tmp_path / "operator.conf"
    conf.write_text(f"listen: 127.0.0.1:4222\noperator: {operator_jwt}\nresolver: MEMORY\n"
                    f"resolver_preload: {{ {acc_pub}: {account_jwt} }}\n")

    server = ConfiguredServer(conf, tmp_path).start()
    try:
        s = settings.load({"nats_url": server.url, "nats_creds": str(creds), "nats_inbox_prefix": "_INBOX_agent"}, env={})
        refused = asyncio.Event()

        async def on_error(err: Exception) -> None:
            if "permissions violation for publish to \"swtel.event.d1.x\"" in str(err).lower():
                refused.set()

        nc = await connect(s, name="test-creds", error_cb=on_error)
        try:
            sub = await nc.subscribe("swtel.telemetry.>")
            await nc.publish("swtel.telemetry.d1.x", b"via creds")
            msg = await sub.next_msg(timeout=2)
            assert msg.data == b"via creds"
            await nc.publish("swtel.event.d1.x", b"not allowed by the user JWT")
            await asyncio.wait_for(refused.wait(), 5)
        finally:
            await nc.close()
        with pytest.raises(ConnectFailed):  # no credentials: operator mode has no anonymous user either
            await connect(settings.load({"nats_url": server.url}, env={}), name="test-creds-anonymous")
        other = keypair(nkeys.PREFIX_BYTE_ACCOUNT)  # a user signed by an unknown account is refused
        forged = tmp_path / "forged.creds"
        forged.write_text(creds.read_text().replace(user_jwt, jwt(other, user.public_key.decode(), "agent", {"type": "user"})))
        with pytest.raises(ConnectFailed):
            await connect(settings.load({"nats_url": server.url, "nats_creds": str(forged)}, env={}), name="test-forged")
    finally:
        server.kill()
