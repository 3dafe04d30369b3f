"""A loopback TCP proxy that can black-hole traffic: a network partition as one client sees it.

``cut()`` keeps every socket open but forwards nothing (no FIN, no RST: the client only learns from
timeouts, as in a real partition); ``heal()`` forwards again. Runs in the test's event loop.
"""

from __future__ import annotations

import asyncio

from .ports import free_port


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = free_port()
        self.connected = asyncio.Event()
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        return self

    def cut(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_w}
        self.connected.set()
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
        self._writers -= {writer, up_w}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._open.wait()  # while cut, bytes are held back (the kernel buffers fill up)
                if not self._open.is_set():
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
