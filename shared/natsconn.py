"""Connecting to NATS with the project's settings: auth, TLS, and reconnect behaviour per role.

nats-py's defaults detect a dead server slowly (2 minute pings) and give up after 60 reconnects; a
long-running agent or hub wants a short ping interval and to reconnect forever. A CLI command wants the
opposite: one try, and a clear one-line error naming the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from .errors import ConnectFailed, InvalidInput
from .settings import Settings

log = logging.getLogger("swtel.nats")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    try:
        ctx = ssl.create_default_context(cafile=settings.nats_tls_ca)
        if settings.nats_tls_cert:
            ctx.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    except (OSError, ssl.SSLError) as e:  # a wrong path or a key that does not match is a user mistake
        files = ", ".join(f for f in (settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key) if f)
        raise InvalidInput(f"cannot load the NATS TLS files ({files}): {e.strerror or e}") from None
    return ctx


def _read_secret(path: str | None) -> str | None:
    """A secret kept in a file (a systemd credential, a 0600 file): its first line."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as e:
        raise InvalidInput(f"cannot read the NATS password file {path}: {e.strerror}") from None


def connect_options(settings: Settings, *, name: str, long_running: bool) -> dict[str, Any]:
    servers = [u.strip() for u in settings.nats_url.split(",") if u.strip()]
    opts: dict[str, Any] = {"servers": servers, "name": name, "connect_timeout": 2}
    if long_running:
        opts.update(
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            ping_interval=2,
            max_outstanding_pings=2,
        )
    else:
        # 0 would mean "retry forever" inside nats-py's server selection; 1 is one quick second try.
        opts.update(allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.2)
    if settings.nats_creds:
        opts["user_credentials"] = settings.nats_creds
    if settings.nats_nkey:
        opts["nkeys_seed"] = settings.nats_nkey
    if settings.nats_user:
        opts["user"] = settings.nats_user
        opts["password"] = settings.nats_password or _read_secret(settings.nats_password_file) or ""
    if settings.nats_token:
        opts["token"] = settings.nats_token
    if settings.nats_inbox_prefix != "_INBOX":
        # Per-role reply subjects, so a role can be allowed to read only its own replies (nats/permissions.conf).
        opts["inbox_prefix"] = settings.nats_inbox_prefix
    ctx = tls_context(settings)
    if ctx is not None:
        opts["tls"] = ctx
    return opts


async def connect(settings: Settings, *, name: str, long_running: bool = False, **extra: Any) -> NATS:
    """Connect, or raise :class:`ConnectFailed` with the URL tried and the reason."""
    failures: list[str] = []

    async def on_error(err: Exception) -> None:
        failures.append(str(err) or type(err).__name__)
        if "permissions violation" in str(err).lower():  # a role doing what nats/permissions.conf forbids
            log.warning("NATS refused: %s", err)
        else:
            log.debug("nats error: %r", err)

    opts = connect_options(settings, name=name, long_running=long_running)
    opts.setdefault("error_cb", on_error)
    opts.update(extra)
    nc = NATS()
    try:
        await nc.connect(**opts)
        return nc
    except (OSError, TimeoutError, NatsError) as e:
        reason = failures[-1] if failures else (str(e) or type(e).__name__)
        # nats-py gives up without closing the socket (e.g. after an authorization error): close it here.
        # After a failed TLS handshake its close() closes the socket, then waits forever: bound the wait.
        with contextlib.suppress(asyncio.TimeoutError, OSError, NatsError):
            await asyncio.wait_for(nc.close(), 0.5)
        if "authorization" in reason.lower():
            reason = "the server refused the credentials (authorization violation)"
        elif "tls" in opts and any(w in reason.lower() for w in ("connection lost", "reset by peer")):
            reason += " (the server ended the TLS handshake: does it want a client certificate from another CA?)"
        raise ConnectFailed(f"cannot connect to NATS at {settings.nats_url}: {reason}") from None
