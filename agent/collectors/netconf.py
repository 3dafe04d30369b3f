"""NETCONF collector: the ``netconf`` SSH subsystem, ``<get>`` with subtree filters, normalised samples.

Hello exchange: both sides send ``<hello>`` with end-of-message framing; chunked framing (RFC 6242
base:1.1) follows when both advertise it (a device tagged ``netconf_framing=1.0`` is offered 1.0 only).
Interfaces come from ietf-interfaces (RFC 8343 ``interfaces``, or the pre-NMDA ``interfaces-state``)
when the device lists it, else from openconfig-interfaces; CPU and memory from openconfig-system and
temperatures from openconfig-platform when offered (ietf models have no CPU or memory readings).
RPCs run one at a time on one session per device, each with a timeout and a reply size limit.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncssh
from swtel.agent import netconf_framing as fr
from swtel.shared import wire

from . import paths, polling, sshconn
from .base import Collector, CollectorContext
from .sshconn import SshOptions

log = logging.getLogger("swtel.agent.netconf")

NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS_IETF_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NS_OC_IF = "http://openconfig.net/yang/interfaces"
NS_OC_SYS = "http://openconfig.net/yang/system"
NS_OC_PLAT = "http://openconfig.net/yang/platform"

FILTERS = {
    "ietf": (f'<interfaces xmlns="{NS_IETF_IF}"><interface><name/><oper-status/><statistics/></interface>'
             f'</interfaces><interfaces-state xmlns="{NS_IETF_IF}"><interface><name/><oper-status/>'
             f"<statistics/></interface></interfaces-state>"),
    "openconfig": (f'<interfaces xmlns="{NS_OC_IF}"><interface><name/><state><oper-status/><counters/>'
                   f"</state></interface></interfaces>"),
    "system": (f'<system xmlns="{NS_OC_SYS}"><cpus/><memory/></system><components xmlns="{NS_OC_PLAT}">'
               f"<component><name/><state><temperature><instant/></temperature></state></component></components>"),
}


# modules that say nothing about what data a device has: NETCONF itself, types, notifications, server internals
_PLUMBING = ("ietf-netconf", "iana-", "ietf-inet-types", "ietf-yang-types", "ietf-yang-library", "ietf-datastores",
             "ietf-origin", "ietf-restconf", "nc-notifications", "notifications", "yuma-", "yuma123-")


class RpcError(polling.DeviceError):
    """The device answered an RPC with ``<rpc-error>``."""


def _q(ns: str, *names: str) -> str:
    return "/".join(f"{{{ns}}}{n}" for n in names)


class NetconfSession:
    def __init__(self, conn: asyncssh.SSHClientConnection, opts: SshOptions, base11: bool = True) -> None:
        self.conn = conn
        self.opts = opts
        self.base11 = base11
        self.capabilities: set[str] = set()
        self.decoder = fr.FrameDecoder(max_message=opts.max_output)
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._inbox: sshconn.Inbox | None = None
        self._msg: bytes | None = None  # the message _next_message found
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()
        self._broken = False  # a timed-out or mis-framed session gets no polite close

    @property
    def chunked(self) -> bool:
        return self.decoder.chunked

    async def open(self) -> None:
        try:
            await self._hello()
        except BaseException:
            self._broken = True  # no polite close-session on a session that never started
            raise

    async def _hello(self) -> None:
        caps = [fr.BASE_1_0] + ([fr.BASE_1_1] if self.base11 else [])
        body = "".join(f"<capability>{c}</capability>" for c in caps)
        async with asyncio.timeout(self.opts.timeout_s):
            # the decoder enforces max_output on messages; the inbox holds what arrived since it last looked
            self._chan, self._inbox = await sshconn.open_channel(self.conn, self.opts.max_output + 65536,
                                                                 subsystem="netconf")
            self._chan.write(fr.encode_eom(f'<hello xmlns="{NS_BASE}"><capabilities>{body}'
                                                 f"</capabilities></hello>".encode()))
            msg = await self._read()
        root = self._xml(msg)
        if root.tag != f"{{{NS_BASE}}}hello":
            raise polling.SessionBroken("the device's first message is not a <hello>")
        self.capabilities = {(c.text or "").strip() for c in root.iter(f"{{{NS_BASE}}}capability")}
        if self.base11 and fr.BASE_1_1 in self.capabilities:
            self.decoder.chunked = True
        elif fr.BASE_1_0 not in self.capabilities:
            raise polling.SessionBroken("the device offers neither base:1.0 nor base:1.1")

    def offers(self, namespace: str) -> bool:
        return any(c == namespace or c.startswith(namespace + "?") for c in self.capabilities)

    async def rpc(self, operation: str) -> ET.Element:
        """Send one RPC and return its ``<rpc-reply>``; ``<rpc-error>`` raises :class:`RpcError`."""
        assert self._chan is not None
        mid = str(next(self._ids))
        msg = f'<rpc xmlns="{NS_BASE}" message-id="{mid}">{operation}</rpc>'.encode()
        async with self._lock:
            try:
                async with asyncio.timeout(self.opts.timeout_s):
                    self._chan.write(fr.encode_chunked(msg) if self.chunked else fr.encode_eom(msg))
                    reply = self._xml(await self._read())
            except (TimeoutError, polling.SessionBroken, EOFError):
                self._broken = True
                raise
        if reply.tag != f"{{{NS_BASE}}}rpc-reply" or reply.get("message-id") != mid:
            self._broken = True
            raise polling.SessionBroken(f"expected the reply to message {mid}, got {reply.tag} "
                                        f"{reply.get('message-id')!r}")
        err = reply.find(f"{{{NS_BASE}}}rpc-error")
        if err is not None:
            tag = err.findtext(f"{{{NS_BASE}}}error-tag", "").strip()
            text = err.findtext(f"{{{NS_BASE}}}error-message", "").strip()
            raise RpcError(f"rpc-error {tag}: {text}"[:200])
        return reply

    async def get(self, subtree: str) -> ET.Element:
        reply = await self.rpc(f'<get><filter type="subtree">{subtree}</filter></get>')
        data = reply.find(f"{{{NS_BASE}}}data")
        return data if data is not None else ET.Element("data")

    async def poll(self, groups: set[str]) -> list[wire.Sample]:
        """Samples of the poll groups the device has models for; a poll for which it has none at all is a
        :class:`polling.DeviceError` naming what it offers (that subscription fails, the others go on)."""
        samples: list[wire.Sample] = []
        missing = []
        if "interfaces" in groups:
            model = "ietf" if self.offers(NS_IETF_IF) else "openconfig" if self.offers(NS_OC_IF) else None
            if model is None:
                missing.append("neither ietf-interfaces nor openconfig-interfaces")
            else:
                data = await self.get(FILTERS[model])
                samples += (ietf_interfaces if model == "ietf" else oc_interfaces)(data, time.time_ns())
        if "system" in groups:
            if not (self.offers(NS_OC_SYS) or self.offers(NS_OC_PLAT)):
                missing.append("no openconfig-system/platform model for CPU, memory, temperature")
                self._warn_once("system", missing[-1])
            else:
                samples += system(await self.get(FILTERS["system"]), time.time_ns())
        if missing and len(missing) == len(groups & {"interfaces", "system"}):
            raise polling.DeviceError(f"the device offers {' and '.join(missing)} (its models: {self.model_names()})")
        return samples

    def model_names(self, limit: int = 12) -> str:
        """The data models the hello lists (``module=`` of each capability, without the protocol's own
        and the type libraries), short enough for an error line."""
        names = sorted({part[7:] for c in self.capabilities for part in c.partition("?")[2].split("&")
                        if part.startswith("module=") and not part[7:].startswith(_PLUMBING)})
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        return (", ".join(names[:limit]) + more) if names else "none listed"

    async def close(self) -> None:
        """Polite ``<close-session>``, bounded: a device that does not answer is simply disconnected."""
        if self._chan is None or self._broken:
            return
        try:
            async with asyncio.timeout(1.0):
                await self.rpc("<close-session/>")
        except (TimeoutError, polling.DeviceError, asyncssh.Error, OSError, EOFError):
            pass

    async def _read(self) -> bytes:
        """The next whole message; the task wakes once per message, not once per packet of it."""
        assert self._inbox is not None
        try:
            await self._inbox.until(self._next_message)
        except (fr.FramingError, sshconn.OutputTooLarge) as e:
            raise polling.SessionBroken(f"framing: {e}") from None
        except EOFError:
            raise EOFError("the NETCONF session closed") from None
        msg, self._msg = self._msg, None
        assert msg is not None
        return msg

    def _next_message(self) -> bool:
        assert self._inbox is not None
        if buf := self._inbox.buf:
            self.decoder.feed(buf)  # copied into the decoder's buffer
            buf.clear()
        self._msg = self.decoder.pop()
        return self._msg is not None

    @staticmethod
    def _xml(msg: bytes) -> ET.Element:
        try:
            return ET.fromstring(msg)
        except ET.ParseError as e:
            raise polling.DeviceError(f"reply is not XML ({e})") from None

    def _warn_once(self, group: str, why: str) -> None:
        if group not in self._warned:
            self._warned.add(group)
            log.warning("NETCONF device %s: %s; skipping %s", self.conn.get_extra_info("peername"), why, group)


# ---- replies to samples -------------------------------------------------------------------------------


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


# Replies are walked child by child with the tags looked up in dicts: one ElementPath ``findtext`` per leaf
# (a path string built and compiled-cache looked up for each of 11 leaves of 48 interfaces every poll) was
# half the collector's CPU per NETCONF poll.
_IETF_LEAVES = {f"{{{NS_IETF_IF}}}{leaf}": leaf for leaf in paths.IF_COUNTERS}
_OC_LEAVES = {f"{{{NS_OC_IF}}}{leaf}": leaf for leaf in paths.IF_COUNTERS}


def _interface(itf: ET.Element, name_tag: str, oper_parent: str | None, oper_tag: str, stats_parent: str | None,
               stats_tag: str, leaves: dict[str, str], ts: int, out: list[wire.Sample]) -> None:
    """The samples of one ``<interface>``: oper-status first, then the counters in IF_COUNTERS order."""
    name = oper = None
    stats: ET.Element | None = None
    for child in itf:
        tag = child.tag
        if tag == name_tag:
            name = (child.text or "").strip()
        elif oper_parent is None and tag == oper_tag:
            oper = child.text
        elif stats_parent is None and tag == stats_tag:
            stats = child
        elif tag == oper_parent or tag == stats_parent:  # openconfig: both under <state>
            for sub in child:
                if sub.tag == oper_tag:
                    oper = sub.text
                elif sub.tag == stats_tag:
                    stats = sub
    if not name:
        return
    if oper is not None:
        out.append(wire.Sample(paths.oper_status(name), paths.oper_value(oper), ts))
    if stats is None:
        return
    values: dict[str, int] = {}
    for c in stats:
        leaf = leaves.get(c.tag)
        if leaf is not None:
            v = _int(c.text)
            if v is not None:
                values[leaf] = v
    for leaf in paths.IF_COUNTERS:
        if leaf in values:
            out.append(wire.Sample(paths.counter(name, leaf), values[leaf], ts))


def ietf_interfaces(data: ET.Element, ts: int) -> list[wire.Sample]:
    out: list[wire.Sample] = []
    name, oper, stats = _q(NS_IETF_IF, "name"), _q(NS_IETF_IF, "oper-status"), _q(NS_IETF_IF, "statistics")
    for container in ("interfaces", "interfaces-state"):
        for itf in data.iterfind(_q(NS_IETF_IF, container, "interface")):
            _interface(itf, name, None, oper, None, stats, _IETF_LEAVES, ts, out)
    return out


def oc_interfaces(data: ET.Element, ts: int) -> list[wire.Sample]:
    out: list[wire.Sample] = []
    name, state = _q(NS_OC_IF, "name"), _q(NS_OC_IF, "state")
    for itf in data.iterfind(_q(NS_OC_IF, "interfaces", "interface")):
        _interface(itf, name, state, _q(NS_OC_IF, "oper-status"), state, _q(NS_OC_IF, "counters"), _OC_LEAVES, ts, out)
    return out


def system(data: ET.Element, ts: int) -> list[wire.Sample]:
    out = []
    cpus = {(c.findtext(_q(NS_OC_SYS, "index")) or "").strip(): _int(c.findtext(_q(NS_OC_SYS, "state", "total", "instant")))
            for c in data.iterfind(_q(NS_OC_SYS, "system", "cpus", "cpu"))}
    cpus = {k: v for k, v in cpus.items() if v is not None}
    if cpus:
        cpu = cpus.get("ALL", round(sum(cpus.values()) / len(cpus)))  # type: ignore[arg-type]
        out.append(wire.Sample(paths.CPU, cpu, ts))
    for leaf, path in (("physical", paths.MEM_PHYSICAL), ("utilized", paths.MEM_UTILIZED)):
        v = _int(data.findtext(_q(NS_OC_SYS, "system", "memory", "state", leaf)))
        if v is not None:
            out.append(wire.Sample(path, v, ts))
    for comp in data.iterfind(_q(NS_OC_PLAT, "components", "component")):
        name = (comp.findtext(_q(NS_OC_PLAT, "name")) or "").strip()
        temp = comp.findtext(_q(NS_OC_PLAT, "state", "temperature", "instant"))
        try:
            out.append(wire.Sample(paths.temperature(name), float(temp or ""), ts))
        except ValueError:
            continue
    return out


def collector(opts: SshOptions | None = None) -> Collector:
    opts = opts or SshOptions()

    @asynccontextmanager
    async def session(ctx: CollectorContext) -> AsyncIterator[polling.Poll]:
        keepalive = sshconn.polling_keepalive_s(ctx.device, opts)
        conn = await sshconn.connect(ctx.device, ctx.credential, opts, keepalive)
        nc = NetconfSession(conn, opts, base11=ctx.device.tags.get("netconf_framing") != "1.0")
        try:
            await nc.open()
            yield nc.poll
        finally:
            await nc.close()
            await sshconn.close(conn)

    async def run(ctx: CollectorContext) -> None:
        await polling.supervise(ctx, lambda: session(ctx), f"netconf {ctx.device.address}:{ctx.device.port}")

    return run


run = collector()
