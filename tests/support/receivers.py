"""Real notification receivers on free loopback ports: an HTTP webhook endpoint and an SMTP sink.

The webhook receiver is a tiny asyncio HTTP/1.1 server (one request per connection) that records what it
was sent and can answer with an error status or stop listening altogether (connection refused), so tests
can prove retries. The SMTP sink is aiosmtpd's Controller (its own thread and loop).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .ports import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    status: int = 200  # what to answer; set to 500 to make deliveries fail
    port: int = 0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0  # requests seen, whatever the answer
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start` again (same port)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.attempts += 1
            status = self.status
            if 200 <= status < 300:
                self.received.append(Received(path, headers, json.loads(body) if body else None))
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _SinkHandler:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class SmtpSink:
    """aiosmtpd on 127.0.0.1; with ``username``/``password`` it requires AUTH LOGIN/PLAIN with them."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self.handler = _SinkHandler()
        self.port = free_port()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if username is not None:
            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and data.login.decode() == username \
                    and data.password.decode() == password
                if ok:
                    self.logins.append(username)
                return AuthResult(success=ok)

            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[tuple[str, list[str], bytes]]:
        with self.handler.lock:
            return list(self.handler.messages)
