"""Connecting to NATS with the project's settings: auth, TLS, and reconnect behaviour per role.

nats-py's defaults detect a dead server slowly (2 minute pings) and give up after 60 reconnects; a
long-running agent or hub wants a short ping interval and to reconnect forever. A CLI command wants the
opposite: one try, and a clear one-line error naming the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

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


SCHEMES = ("nats", "tls", "ws", "wss")


def redact_url(url: str) -> str:
    """A NATS URL (or comma-separated list) without the password of any ``user:password@``."""
    return re.sub(r"(://[^:/@,]*):[^@/,]*@", r"\1:***@", url)


def check_urls(text: str) -> list[str]:
    """The servers of a ``nats_url`` setting, or :class:`InvalidInput` saying which URL is wrong and why
    (before nats-py turns it into a traceback or a misleading "Name or service not known")."""
    servers = [u.strip() for u in text.split(",") if u.strip()]
    if not servers:
        raise InvalidInput("the NATS URL is empty: use nats://HOST:PORT")
    for url in servers:
        shown = redact_url(url)
        scheme, sep, _ = url.partition("://")
        if sep and scheme.lower() not in SCHEMES:
            raise InvalidInput(f"NATS URL {shown!r} has the scheme {scheme + '://'!r}; use nats:// (or tls://, ws://, wss://)")
        try:
            parsed = urlsplit(url if sep else f"nats://{url}")
            parsed.port  # noqa: B018 (raises on a bad port)
        except ValueError as e:
            raise InvalidInput(f"NATS URL {shown!r} is not valid ({e}); use nats://HOST:PORT") from None
        if not parsed.hostname:
            raise InvalidInput(f"NATS URL {shown!r} names no host; use nats://HOST:PORT")
    if len({u.split("://")[0].lower() in ("ws", "wss") for u in servers if "://" in u}) > 1:
        raise InvalidInput("NATS URLs mix ws:// and nats:// servers; use one kind")
    return servers


def connect_options(settings: Settings, *, name: str, long_running: bool) -> dict[str, Any]:
    servers = check_urls(settings.nats_url)
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


class _WaitReport:
    """Says what a service waits for while NATS is unreachable at start: the first failure at once, then
    one line every ``every_s`` seconds (a retry every half second must not flood the log)."""

    def __init__(self, url: str, every_s: float = 5.0) -> None:
        self.url, self.every_s = url, every_s
        self.connected = False
        self.attempts = 0
        self._last = -every_s

    def failed(self, reason: str) -> None:
        self.attempts += 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            log.warning("waiting for NATS at %s (attempt %d): %s", self.url, self.attempts, reason)

    def done(self) -> None:
        self.connected = True
        if self.attempts:
            log.info("connected to NATS at %s after %d failed attempt(s)", self.url, self.attempts)


async def connect(settings: Settings, *, name: str, long_running: bool = False, **extra: Any) -> NATS:
    """Connect, or raise :class:`ConnectFailed` with the URL tried and the reason."""
    failures: list[str] = []
    waiting = _WaitReport(redact_url(settings.nats_url)) if long_running else None

    async def on_error(err: Exception) -> None:
        failures.append(str(err) or type(err).__name__)
        if "permissions violation" in str(err).lower():  # a role doing what nats/permissions.conf forbids
            log.warning("NATS refused: %s", err)
        elif waiting is not None and not waiting.connected:  # a service retries its first connect forever
            waiting.failed(failures[-1])
        else:
            log.debug("nats error: %r", err)

    opts = connect_options(settings, name=name, long_running=long_running)
    opts.setdefault("error_cb", on_error)
    opts.update(extra)
    nc = NATS()
    try:
        await nc.connect(**opts)
        if waiting is not None:
            waiting.done()
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
        raise ConnectFailed(f"cannot connect to NATS at {redact_url(settings.nats_url)}: {reason}") from None
