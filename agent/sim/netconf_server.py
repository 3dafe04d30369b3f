"""Simulated switches' NETCONF face: the ``netconf`` SSH subsystem (RFC 6241 over RFC 6242).

The server sends its ``<hello>`` at once (end-of-message framing) and switches to chunked framing when
the client's hello also lists base:1.1. It answers ``<get>`` and ``<get-config>`` (with or without a
subtree filter), ``<close-session>``, and an ``<rpc-error>`` for anything else. Listeners, host key
and faults are those of :mod:`.ssh_server`; ``garbage`` answers each RPC with random bytes and ``hang``
never sends a hello.
"""

from __future__ import annotations

import asyncio
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import asyncssh

from .. import netconf_framing as fr
from . import netconf_data as data
from .model import SimDevice
from .ssh_server import Listeners, garbage, listen

NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
MAX_MESSAGE = 1024 * 1024  # RPCs from a client are small; a bigger one is a broken client
_session_ids = itertools.count(1)


def hello(session_id: int, models: Sequence[str], base11: bool = True) -> bytes:
    caps = [fr.BASE_1_0] + ([fr.BASE_1_1] if base11 else [])
    caps += [c for m in models for c in data.CAPABILITIES[m]]
    body = "".join(f"<capability>{c.replace('&', '&amp;')}</capability>" for c in caps)
    return (f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{NS_BASE}"><capabilities>{body}'
            f"</capabilities><session-id>{session_id}</session-id></hello>").encode()


def rpc_error(message_id: str | None, tag: str, message: str, etype: str = "protocol") -> str:
    mid = f" message-id={quoteattr(message_id)}" if message_id is not None else ""
    return (f'<rpc-reply xmlns="{NS_BASE}"{mid}><rpc-error><error-type>{etype}</error-type>'
            f"<error-tag>{tag}</error-tag><error-severity>error</error-severity>"
            f'<error-message xml:lang="en">{escape(message)}</error-message></rpc-error></rpc-reply>')


class _Session:
    def __init__(self, process: asyncssh.SSHServerProcess, dev: SimDevice, models: Sequence[str]) -> None:
        self.process = process
        self.dev = dev
        self.models = tuple(models)
        self.decoder = fr.FrameDecoder(max_message=MAX_MESSAGE)
        self.chunked = False

    def send(self, message: bytes) -> None:
        self.process.stdout.write(fr.encode_chunked(message) if self.chunked else fr.encode_eom(message))

    async def run(self) -> None:
        dev = self.dev
        if dev.faults.hang:
            await self.process.wait_closed()
            return
        self.process.stdout.write(fr.encode_eom(hello(next(_session_ids), self.models)))
        got_hello = False
        while True:
            chunk = await self.process.stdin.read(65536)
            if not chunk:
                return
            try:
                self.decoder.feed(chunk)
                while (msg := self.decoder.pop()) is not None:
                    if not got_hello:
                        if not self._client_hello(msg):
                            return
                        got_hello = True
                        continue
                    if not await self._rpc(msg):
                        return
            except fr.FramingError:
                return  # RFC 6242: a framing error ends the session

    def _client_hello(self, msg: bytes) -> bool:
        try:
            root = ET.fromstring(msg)
        except ET.ParseError:
            return False
        if root.tag != f"{{{NS_BASE}}}hello":
            return False
        caps = {(c.text or "").strip() for c in root.iter(f"{{{NS_BASE}}}capability")}
        if fr.BASE_1_1 in caps:
            self.chunked = self.decoder.chunked = True
        return fr.BASE_1_0 in caps or fr.BASE_1_1 in caps

    async def _rpc(self, msg: bytes) -> bool:
        """Answer one RPC; False ends the session."""
        if self.dev.faults.delay_s:
            await asyncio.sleep(self.dev.faults.delay_s)
        if self.dev.faults.garbage:
            junk = garbage(self.dev)
            self.process.stdout.write(junk + (b"" if self.chunked else fr.EOM))
            return True
        try:
            rpc = ET.fromstring(msg)
        except ET.ParseError:
            self.send(rpc_error(None, "malformed-message", "not well-formed XML", "rpc").encode())
            return True
        mid = rpc.get("message-id")
        if rpc.tag != f"{{{NS_BASE}}}rpc" or mid is None:
            self.send(rpc_error(mid, "missing-attribute" if mid is None else "unknown-element",
                                "expected <rpc message-id=...>", "rpc").encode())
            return True
        op = rpc[0] if len(rpc) else None
        name = op.tag if op is not None else ""
        if name == f"{{{NS_BASE}}}close-session":
            self.send(self._reply(mid, "<ok/>"))
            self.process.exit(0)
            return False
        if name == f"{{{NS_BASE}}}get":
            return self._data(mid, op, data.operational(self.models))
        if name == f"{{{NS_BASE}}}get-config":
            source = op.find(f"{{{NS_BASE}}}source")
            if source is None or source.find(f"{{{NS_BASE}}}running") is None:
                self.send(rpc_error(mid, "invalid-value", "only the running datastore exists",
                                    "application").encode())
                return True
            return self._data(mid, op, data.CONFIG)
        self.send(rpc_error(mid, "operation-not-supported", f"unsupported operation {data._local(name)}"
                            ).encode())
        return True

    def _data(self, mid: str, op: ET.Element, builders: dict[str, data.Builder]) -> bool:
        flt = op.find(f"{{{NS_BASE}}}filter")
        if flt is not None and flt.get("type", "subtree") != "subtree":
            self.send(rpc_error(mid, "operation-not-supported", "only subtree filters are supported").encode())
            return True
        body = "".join(data.to_xml(e) for e in data.select(builders, self.dev, flt))
        self.send(self._reply(mid, f"<data>{body}</data>"))
        return True

    def _reply(self, mid: str, inner: str) -> bytes:
        return f'<rpc-reply xmlns="{NS_BASE}" message-id={quoteattr(mid)}>{inner}</rpc-reply>'.encode()


async def netconf_session(process: asyncssh.SSHServerProcess, dev: SimDevice,
                          models: Sequence[str] = ("ietf", "openconfig")) -> None:
    await _Session(process, dev, models).run()


async def serve_netconf(devices: list[SimDevice], host: str, ports: list[int],
                        models: Sequence[str] = ("ietf", "openconfig")) -> Listeners:
    """Serve each device's NETCONF subsystem on its port. ``models`` picks the YANG families offered."""
    bad = set(models) - set(data.CAPABILITIES)
    if bad or not models:
        raise ValueError(f"models must be among {sorted(data.CAPABILITIES)}")

    async def session(process: asyncssh.SSHServerProcess, dev: SimDevice) -> None:
        if process.subsystem != "netconf":
            process.stderr.write(b"only the netconf subsystem is served on this port\n")
            process.exit(1)
            return
        await netconf_session(process, dev, models)

    return await listen(devices, host, ports, session)
