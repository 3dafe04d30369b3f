"""The simulator's SNMP face: an SNMPv2c agent per device (one UDP socket each), answering Get, GetNext
and GetBulk from the same model as the gNMI, SSH and NETCONF faces.

Served (read-only; the community is the device's password):
- SNMPv2-MIB system group: sysDescr, sysObjectID (the platform's vendor), sysUpTime, sysName;
- IF-MIB ``ifTable`` (32-bit counters, ifOperStatus, ifSpeed) and ``ifXTable`` (ifName, ifAlias,
  ifHighSpeed and, unless ``hc_counters=False`` — an old agent — the 64-bit ``ifHC*`` counters);
- CPU and memory the way each platform family does: HOST-RESOURCES (hrProcessorLoad, hrStorage RAM) for
  generic, junos and srl; CISCO-PROCESS-MIB (cpmCPUTotal1minRev, cpmCPUMemoryUsed/Free) for nxos and
  iosxr; UCD-SNMP-MIB (ssCpuIdle, memTotalReal/memAvailReal) for eos, so every collector fallback is used;
- ENTITY-MIB (chassis: name, model, serial, maker, software) and ENTITY-SENSOR-MIB (one celsius sensor,
  named like the other faces' temperature component).

Faults: ``wrong_password`` (no community is accepted: requests go unanswered, as real agents do),
``hang`` (nothing is answered), ``delay_s``, ``garbage`` (answers are bytes that decode as nothing).
SNMPv1 and v3 requests are not answered (v3 is covered by tests against Debian's snmpd).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from swtel.agent.sim import cli
from swtel.agent.sim import snmp_ber as ber
from swtel.agent.sim.model import FACTS, SimDevice

log = logging.getLogger("swtel.sim.snmp")

MAX_RESPONSE = 16384  # bytes; a GetBulk answer stops growing here (RFC 3416 lets it return fewer rows)

SYS_OBJECT_IDS = {  # a real product OID per platform, so sysObjectID names the vendor
    "eos": "1.3.6.1.4.1.30065.1.3011.7050.3741.48",
    "nxos": "1.3.6.1.4.1.9.12.3.1.3.1812",
    "iosxr": "1.3.6.1.4.1.9.1.2461",
    "junos": "1.3.6.1.4.1.2636.1.1.1.4.132.3",
    "srl": "1.3.6.1.4.1.6527.1.20.1",
    "generic": "1.3.6.1.4.1.8072.3.2.10",
}
CPU_MEM_MIB = {"nxos": "cisco", "iosxr": "cisco", "eos": "ucd"}  # others: HOST-RESOURCES
SPEED_MBPS = 10_000

Getter = Callable[[SimDevice, int, dict[Any, Any], float], bytes]


def _oid(dotted: str, *more: int) -> tuple[int, ...]:
    return (*(int(x) for x in dotted.split(".")), *more)


def _counters(d: SimDevice, i: int, cache: dict[Any, Any], now: float) -> dict[str, int]:
    c = cache.get(i)
    if c is None:
        c = cache[i] = d.counters(i, now)
    return c


def _c64(leaf: str) -> Getter:
    return lambda d, i, cache, now: ber.counter64(_counters(d, i, cache, now)[leaf])


def _c32(leaf: str) -> Getter:
    return lambda d, i, cache, now: ber.counter32(_counters(d, i, cache, now)[leaf])


def _oper(d: SimDevice, i: int, cache: dict[Any, Any], now: float) -> bytes:
    return ber.integer(1 if d.oper_status(i, now) == "UP" else 2)


def _alias(d: SimDevice, i: int, cache: dict[Any, Any], now: float) -> bytes:
    cfg = cache.get("config")
    if cfg is None:  # parsed once per request, not once per interface
        cfg = cache["config"] = d.interface_config()
    return ber.octets(cfg.get(d.ifnames[i], ("", True))[0])


def _memory_kib(d: SimDevice, now: float) -> tuple[int, int]:
    total, used = d.memory(now)
    return total // 1024, used // 1024


@dataclass
class View:
    """The sorted OIDs a device shape serves, each with how to compute its value; shared by every device
    of one (platform, interfaces, hc) shape, so a thousand devices cost one table."""

    oids: list[tuple[int, ...]]
    getters: list[tuple[Getter, int]]
    index: dict[tuple[int, ...], int]


@lru_cache(maxsize=64)
def view(platform: str, interfaces: int, hc: bool) -> View:
    rows: list[tuple[tuple[int, ...], Getter, int]] = []

    def add(o: tuple[int, ...], g: Getter, arg: int = 0) -> None:
        rows.append((o, g, arg))

    vendor, model, version = FACTS.get(platform, FACTS["generic"])
    add(_oid("1.3.6.1.2.1.1.1.0"), lambda d, i, c, now: ber.octets(f"{vendor} {model}, software version {version}"))
    objid = ber.oid_value(SYS_OBJECT_IDS.get(platform, SYS_OBJECT_IDS["generic"]))
    add(_oid("1.3.6.1.2.1.1.2.0"), lambda d, i, c, now: objid)
    add(_oid("1.3.6.1.2.1.1.3.0"), lambda d, i, c, now: ber.timeticks(int((d.age(now) + 86400) * 100)))
    add(_oid("1.3.6.1.2.1.1.5.0"), lambda d, i, c, now: ber.octets(d.name))
    add(_oid("1.3.6.1.2.1.2.1.0"), lambda d, i, c, now: ber.integer(d.interfaces))
    if_cols: list[tuple[str, int, Getter]] = [
        ("1.3.6.1.2.1.2.2.1", 1, lambda d, i, c, now: ber.integer(i + 1)),
        ("1.3.6.1.2.1.2.2.1", 2, lambda d, i, c, now: ber.octets(d.ifnames[i])),
        ("1.3.6.1.2.1.2.2.1", 3, lambda d, i, c, now: ber.integer(6)),  # ethernetCsmacd
        ("1.3.6.1.2.1.2.2.1", 5, lambda d, i, c, now: ber.gauge32(SPEED_MBPS * 1_000_000)),
        ("1.3.6.1.2.1.2.2.1", 7, lambda d, i, c, now: ber.integer(1)),
        ("1.3.6.1.2.1.2.2.1", 8, _oper),
        ("1.3.6.1.2.1.2.2.1", 10, _c32("in-octets")),
        ("1.3.6.1.2.1.2.2.1", 11, _c32("in-unicast-pkts")),
        ("1.3.6.1.2.1.2.2.1", 13, _c32("in-discards")),
        ("1.3.6.1.2.1.2.2.1", 14, _c32("in-errors")),
        ("1.3.6.1.2.1.2.2.1", 16, _c32("out-octets")),
        ("1.3.6.1.2.1.2.2.1", 17, _c32("out-unicast-pkts")),
        ("1.3.6.1.2.1.2.2.1", 19, _c32("out-discards")),
        ("1.3.6.1.2.1.2.2.1", 20, _c32("out-errors")),
        ("1.3.6.1.2.1.31.1.1.1", 1, lambda d, i, c, now: ber.octets(d.ifnames[i])),
        ("1.3.6.1.2.1.31.1.1.1", 2, _c32("in-multicast-pkts")),
        ("1.3.6.1.2.1.31.1.1.1", 4, _c32("out-multicast-pkts")),
    ]
    if hc:
        if_cols += [
            ("1.3.6.1.2.1.31.1.1.1", 6, _c64("in-octets")),
            ("1.3.6.1.2.1.31.1.1.1", 7, _c64("in-unicast-pkts")),
            ("1.3.6.1.2.1.31.1.1.1", 8, _c64("in-multicast-pkts")),
            ("1.3.6.1.2.1.31.1.1.1", 10, _c64("out-octets")),
            ("1.3.6.1.2.1.31.1.1.1", 11, _c64("out-unicast-pkts")),
            ("1.3.6.1.2.1.31.1.1.1", 12, _c64("out-multicast-pkts")),
        ]
    if_cols += [
        ("1.3.6.1.2.1.31.1.1.1", 15, lambda d, i, c, now: ber.gauge32(SPEED_MBPS)),
        ("1.3.6.1.2.1.31.1.1.1", 18, _alias),
    ]
    for table, col, g in if_cols:
        for i in range(interfaces):
            add(_oid(table, col, i + 1), g, i)
    kind = CPU_MEM_MIB.get(platform, "hr")
    if kind == "hr":
        add(_oid("1.3.6.1.2.1.25.2.3.1.1.1"), lambda d, i, c, now: ber.integer(1))
        add(_oid("1.3.6.1.2.1.25.2.3.1.2.1"), lambda d, i, c, now: ber.oid_value("1.3.6.1.2.1.25.2.1.2"))
        add(_oid("1.3.6.1.2.1.25.2.3.1.3.1"), lambda d, i, c, now: ber.octets("Physical memory"))
        add(_oid("1.3.6.1.2.1.25.2.3.1.4.1"), lambda d, i, c, now: ber.integer(1024))
        add(_oid("1.3.6.1.2.1.25.2.3.1.5.1"), lambda d, i, c, now: ber.integer(_memory_kib(d, now)[0]))
        add(_oid("1.3.6.1.2.1.25.2.3.1.6.1"), lambda d, i, c, now: ber.integer(_memory_kib(d, now)[1]))
        add(_oid("1.3.6.1.2.1.25.3.3.1.2.196608"), lambda d, i, c, now: ber.integer(d.cpu_percent(now)))
    elif kind == "cisco":
        add(_oid("1.3.6.1.4.1.9.9.109.1.1.1.1.7.1"), lambda d, i, c, now: ber.gauge32(d.cpu_percent(now)))
        add(_oid("1.3.6.1.4.1.9.9.109.1.1.1.1.12.1"), lambda d, i, c, now: ber.gauge32(_memory_kib(d, now)[1]))
        add(_oid("1.3.6.1.4.1.9.9.109.1.1.1.1.13.1"),
            lambda d, i, c, now: ber.gauge32(_memory_kib(d, now)[0] - _memory_kib(d, now)[1]))
    else:
        add(_oid("1.3.6.1.4.1.2021.4.5.0"), lambda d, i, c, now: ber.integer(_memory_kib(d, now)[0]))
        add(_oid("1.3.6.1.4.1.2021.4.6.0"), lambda d, i, c, now: ber.integer(_memory_kib(d, now)[0] - _memory_kib(d, now)[1]))
        add(_oid("1.3.6.1.4.1.2021.11.11.0"), lambda d, i, c, now: ber.integer(100 - d.cpu_percent(now)))
    ent = "1.3.6.1.2.1.47.1.1.1.1"
    sensor = cli.sensor_name(platform)
    for col, g1, g2 in (
        (2, lambda d, i, c, now: ber.octets(f"{model} chassis"), lambda d, i, c, now: ber.octets(f"{sensor} temperature sensor")),
        (5, lambda d, i, c, now: ber.integer(3), lambda d, i, c, now: ber.integer(8)),  # chassis(3), sensor(8)
        (7, lambda d, i, c, now: ber.octets("Chassis"), lambda d, i, c, now: ber.octets(sensor)),
        (10, lambda d, i, c, now: ber.octets(version), lambda d, i, c, now: ber.octets("")),
        (11, lambda d, i, c, now: ber.octets(d.serial), lambda d, i, c, now: ber.octets("")),
        (12, lambda d, i, c, now: ber.octets(vendor), lambda d, i, c, now: ber.octets(vendor)),
        (13, lambda d, i, c, now: ber.octets(model), lambda d, i, c, now: ber.octets("")),
    ):
        add(_oid(ent, col, 1), g1)
        add(_oid(ent, col, 2), g2)
    sen = "1.3.6.1.2.1.99.1.1.1"
    add(_oid(sen, 1, 2), lambda d, i, c, now: ber.integer(8))  # celsius
    add(_oid(sen, 2, 2), lambda d, i, c, now: ber.integer(9))  # units
    add(_oid(sen, 3, 2), lambda d, i, c, now: ber.integer(1))  # one decimal
    add(_oid(sen, 4, 2), lambda d, i, c, now: ber.integer(round(d.temperature(now) * 10)))
    add(_oid(sen, 5, 2), lambda d, i, c, now: ber.integer(1))  # ok
    rows.sort(key=lambda r: r[0])
    oids = [r[0] for r in rows]
    return View(oids, [(r[1], r[2]) for r in rows], {o: n for n, o in enumerate(oids)})


def answer(dev: SimDevice, v: View, req: ber.Request, now: float | None = None) -> bytes | None:
    """The Response to a decoded request, or None when it gets none (wrong community, v1/v3, Set)."""
    if req.version != ber.V2C or req.community != dev.password.encode() or dev.faults.wrong_password:
        return None
    if req.pdu not in (ber.GET, ber.GETNEXT, ber.GETBULK):
        return None
    now = time.monotonic() if now is None else now
    cache: dict[Any, Any] = {}

    def value_at(n: int) -> bytes:
        g, arg = v.getters[n]
        return g(dev, arg, cache, now)

    def next_of(o: tuple[int, ...]) -> bytes:
        n = bisect.bisect_right(v.oids, o)
        if n >= len(v.oids):
            return ber.varbind(o, ber.END_OF_MIB_VIEW_V)
        return ber.varbind(v.oids[n], value_at(n))

    out: list[bytes] = []
    if req.pdu == ber.GET:
        for o in req.oids:
            n = v.index.get(o)
            out.append(ber.varbind(o, ber.NO_SUCH_INSTANCE_V if n is None else value_at(n)))
    elif req.pdu == ber.GETNEXT:
        out = [next_of(o) for o in req.oids]
    else:
        nr = max(0, min(req.non_repeaters, len(req.oids)))
        out = [next_of(o) for o in req.oids[:nr]]
        cursors = list(req.oids[nr:])
        size = sum(map(len, out))
        for _ in range(max(0, min(req.max_repetitions, 1000))):
            if not cursors or size > MAX_RESPONSE:
                break
            for k, o in enumerate(cursors):
                n = bisect.bisect_right(v.oids, o)
                if n >= len(v.oids):
                    vb = ber.varbind(o, ber.END_OF_MIB_VIEW_V)
                else:
                    cursors[k] = v.oids[n]
                    vb = ber.varbind(v.oids[n], value_at(n))
                out.append(vb)
                size += len(vb)
            if all(bisect.bisect_right(v.oids, o) >= len(v.oids) for o in cursors):
                break
    return ber.response(req, out)


class _Agent(asyncio.DatagramProtocol):
    def __init__(self, dev: SimDevice, v: View) -> None:
        self.dev, self.view = dev, v
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        f = self.dev.faults
        if f.hang:
            return
        try:
            req = ber.decode_request(data)
        except (ber.BerError, IndexError):
            return  # real agents count and drop (snmpInASNParseErrs)
        reply = answer(self.dev, self.view, req)
        if reply is None or self.transport is None:
            return
        if f.garbage:
            reply = b"\x30\x05garbage"
        if f.delay_s:
            asyncio.get_running_loop().call_later(f.delay_s, self._send, reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class Agents:
    def __init__(self, transports: list[asyncio.DatagramTransport], ports: list[int]) -> None:
        self.transports = transports
        self.ports = ports

    async def close(self) -> None:
        for t in self.transports:
            t.close()


async def serve_snmp(devices: Sequence[SimDevice], host: str, ports: Sequence[int], *,
                     hc_counters: bool = True) -> Agents:
    """One UDP agent per device on ``host:port`` (port 0: any free port; ``Agents.ports`` says which)."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.DatagramTransport] = []
    bound: list[int] = []
    try:
        for dev, port in zip(devices, ports, strict=True):
            v = view(dev.platform, dev.interfaces, hc_counters)
            transport, _ = await loop.create_datagram_endpoint(lambda dev=dev, v=v: _Agent(dev, v),  # type: ignore[misc]
                                                               local_addr=(host, port))
            transports.append(transport)
            bound.append(transport.get_extra_info("sockname")[1])
    except BaseException:
        for t in transports:
            t.close()
        raise
    return Agents(transports, bound)
