"""Notification channels: webhook (JSON POST), Slack-compatible webhook (``{"text": …}``) and SMTP email.

Channel configs live in the database but secrets never do: a config value written ``env:NAME`` (a Slack URL
carries its token in the path) and an email channel's ``password_env`` name an environment variable that
the hub reads when it sends. Error texts are scrubbed of every resolved secret before anyone stores or
logs them, and configs are shown with :func:`redacted`.
"""

from __future__ import annotations

import logging
import os
import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
import httpx

from swtel.shared.errors import InvalidInput

KINDS = ("webhook", "slack", "email")
_ADDR_RE = re.compile(r"[^@\s,]+@[^@\s,]+")
_ENV_RE = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")


class DeliveryError(Exception):
    """One failed attempt; ``str()`` is already free of secrets."""


class _RedactWebhookURLs(logging.Filter):
    """httpx logs every request's full URL at INFO, and a Slack webhook URL carries its token in the path:
    the URLs this module posts to are shown as ``scheme://host/…`` instead. Other httpx users are untouched."""

    urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and self.urls:
            record.args = tuple(redact_url(str(a)) if str(a) in self.urls else a for a in record.args)
        return True


_url_filter = _RedactWebhookURLs()
logging.getLogger("httpx").addFilter(_url_filter)


def validate_channel(kind: str, config: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"channel kind {kind!r} must be one of {', '.join(KINDS)}", "kind")
    if kind in ("webhook", "slack"):
        url = str(config.get("url", ""))
        if not _ENV_RE.fullmatch(url):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidInput(f"--{kind} needs an http(s):// URL or env:VARIABLE, got {redact_url(url)!r}", "url")
        return
    to = config.get("to") or []
    if not to or not all(_ADDR_RE.fullmatch(a) for a in to):
        raise InvalidInput(f"--email needs address(es) like ops@example.com, got {', '.join(to) or 'none'!r}", "to")
    if not config.get("host"):
        raise InvalidInput("--email needs --smtp HOST[:PORT]", "host")
    if not 0 < int(config.get("port", 25)) < 65536:
        raise InvalidInput("SMTP port must be 1-65535", "port")
    if config.get("password_env") and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", config["password_env"]):
        raise InvalidInput("--smtp-password-env must name an environment variable", "password_env")


def parse_hostport(text: str, default_port: int = 25) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:  # no port, or a bare [v6] address
        return text.strip("[]"), default_port
    if not port.isdigit():
        raise InvalidInput(f"--smtp {text!r} is not HOST[:PORT]", "smtp")
    return host.strip("[]"), int(port)


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/secret`` → ``https://hooks.slack.com/…``."""
    if _ENV_RE.fullmatch(url):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    return f"{parts.scheme}://{host}{port}/…" if parts.path not in ("", "/") or parts.query else f"{parts.scheme}://{host}{port}"


def redacted(kind: str, config: dict[str, Any]) -> str:
    """A one-line summary safe to print: no URL paths (tokens), no passwords."""
    if kind in ("webhook", "slack"):
        return redact_url(str(config.get("url", "")))
    auth = f" as {config['username']} (password from ${config['password_env']})" if config.get("username") else ""
    return f"{', '.join(config.get('to', []))} via {config.get('host')}:{config.get('port', 25)}{auth}"


def _resolve(value: str) -> str:
    m = _ENV_RE.fullmatch(value)
    if not m:
        return value
    resolved = os.environ.get(m.group(1))
    if not resolved:
        raise DeliveryError(f"environment variable {m.group(1)} is not set")
    return resolved


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text[:500]


def message_text(payload: dict[str, Any]) -> str:
    """The one-line human message of a notification (Slack text, email subject)."""
    state = payload["state"].upper()
    value = "" if payload.get("value") is None else f" value {payload['value']:g}"
    return (f"[{payload['severity'].upper()}] {state} {payload['rule']} on {payload['device']} {payload['path']}:"
            f"{value} ({payload['condition']})")


class Sender:
    """Sends one notification through one channel. One instance per notifier (it owns the HTTP client)."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        # trust_env=False: no proxy or netrc from the environment silently rerouting alert traffic.
        self.http = httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, kind: str, config: dict[str, Any], payload: dict[str, Any], key: str) -> None:
        """Raise :class:`DeliveryError` (secret-free) unless the receiver accepted it."""
        if kind == "email":
            await self._email(config, payload)
        else:
            body = payload if kind == "webhook" else {"text": message_text(payload)}
            await self._post(config, body, key)

    async def _post(self, config: dict[str, Any], body: dict[str, Any], key: str) -> None:
        url = _resolve(str(config["url"]))
        secrets = [url, urlsplit(url).path]
        _url_filter.urls.add(str(httpx.URL(url)))
        try:
            resp = await self.http.post(url, json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as e:
            raise DeliveryError(_scrub(f"{type(e).__name__}: {e}", secrets)) from None
        if not 200 <= resp.status_code < 300:
            raise DeliveryError(f"HTTP {resp.status_code} from {redact_url(url)}")

    async def _email(self, config: dict[str, Any], payload: dict[str, Any]) -> None:
        password = None
        if config.get("password_env"):
            password = _resolve(f"env:{config['password_env']}")
        msg = EmailMessage()
        msg["From"] = config.get("from") or "swtel@localhost"
        msg["To"] = ", ".join(config["to"])
        msg["Subject"] = message_text(payload)
        msg.set_content("\n".join(f"{k}: {v}" for k, v in payload.items()) + "\n")
        starttls = config.get("starttls")  # None: STARTTLS when the server offers it
        try:
            await aiosmtplib.send(
                msg, hostname=config["host"], port=int(config.get("port", 25)), username=config.get("username"),
                password=password, start_tls=starttls, use_tls=bool(config.get("tls")), timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as e:
            raise DeliveryError(_scrub(f"{type(e).__name__}: {e}", [password or ""])) from None
