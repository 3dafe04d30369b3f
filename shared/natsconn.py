"""Connecting to NATS with the project's settings: auth, TLS, and reconnect behaviour per role.

nats-py's defaults detect a dead server slowly (2 minute pings) and give up after 60 reconnects; a
long-running agent or hub wants a short ping interval and to reconnect forever. A CLI command wants the
opposite: one try, and a clear one-line error naming the URL.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from .errors import ConnectFailed
from .settings import Settings

log = logging.getLogger("swtel.nats")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.nats_tls_ca)
    if settings.nats_tls_cert:
        ctx.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    return ctx


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
        opts["password"] = settings.nats_password or ""
    if settings.nats_token:
        opts["token"] = settings.nats_token
    ctx = tls_context(settings)
    if ctx is not None:
        opts["tls"] = ctx
    return opts


async def connect(settings: Settings, *, name: str, long_running: bool = False, **extra: Any) -> NATS:
    """Connect, or raise :class:`ConnectFailed` with the URL tried and the reason."""
    failures: list[str] = []

    async def on_error(err: Exception) -> None:
        failures.append(str(err) or type(err).__name__)
        log.debug("nats error: %r", err)

    opts = connect_options(settings, name=name, long_running=long_running)
    opts.setdefault("error_cb", on_error)
    opts.update(extra)
    try:
        return await nats.connect(**opts)
    except (OSError, TimeoutError, NatsError) as e:
        reason = failures[-1] if failures else (str(e) or type(e).__name__)
        if "authorization" in reason.lower():
            reason = "the server refused the credentials (authorization violation)"
        raise ConnectFailed(f"cannot connect to NATS at {settings.nats_url}: {reason}") from None
