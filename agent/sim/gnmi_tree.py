"""The OpenConfig tree a simulated switch serves over gNMI, and its wire encoding.

Leaves are described once per (platform, interface count) and shared by every device of that shape, so
thousands of devices cost one table. Notifications are written straight as protobuf bytes (the wire
format is stable and simple) instead of building messages field by field: a 48-port device has ~530
leaves, and a simulator serving 2,000 devices at 10 s sends ~100k of them per second.
The bytes are ordinary gNMI; tests parse them with the ``gnmi_pb`` classes and pygnmi reads them.
"""

from __future__ import annotations

import functools
import json
import struct
import time
from dataclasses import dataclass

from gnmi_pb import gnmi_pb2

from swtel.agent.collectors.gnmi_paths import Elems
from swtel.agent.sim.model import COUNTERS, SimDevice

PROTO, JSON, JSON_IETF = gnmi_pb2.PROTO, gnmi_pb2.JSON, gnmi_pb2.JSON_IETF
SUPPORTED_ENCODINGS = (PROTO, JSON, JSON_IETF)
MODELS = (
    ("openconfig-interfaces", "OpenConfig working group", "3.0.0"),
    ("openconfig-system", "OpenConfig working group", "2.0.0"),
    ("openconfig-platform", "OpenConfig working group", "0.24.0"),
)
_JSON_MODULE = {"interfaces": "openconfig-interfaces", "system": "openconfig-system",
                "components": "openconfig-platform"}


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(tag: int, data: bytes) -> bytes:
    """A length-delimited field (``tag`` is the already-shifted key byte)."""
    return bytes((tag,)) + varint(len(data)) + data


@dataclass(frozen=True)
class Leaf:
    elems: Elems
    kind: str  # counter, oper, cpu, mem-physical, mem-utilized, temp, hostname
    index: int = 0  # interface index
    counter: str = ""
    path_bytes: bytes = b""  # serialized gnmi Path of the leaf
    container_bytes: bytes = b""  # serialized Path of .../state/counters (JSON encodings group counters)


def _path_bytes(elems: Elems) -> bytes:
    p = gnmi_pb2.Path()
    for name, keys in elems:
        p.elem.add(name=name, key=dict(keys))
    return p.SerializeToString(deterministic=True)


@functools.lru_cache(maxsize=64)
def leaves_for(platform: str, interfaces: int) -> tuple[Leaf, ...]:
    """Every leaf of a device of this shape, in a stable order."""
    ifnames = SimDevice(name="shape", platform=platform, interfaces=interfaces).ifnames
    out: list[Leaf] = []
    for i, ifname in enumerate(ifnames):
        base: Elems = (("interfaces", ()), ("interface", (("name", ifname),)), ("state", ()))
        container = base + (("counters", ()),)
        cbytes = _path_bytes(container)
        for c in COUNTERS:
            e = container + ((c, ()),)
            out.append(Leaf(e, "counter", i, c, _path_bytes(e), cbytes))
        e = base + (("oper-status", ()),)
        out.append(Leaf(e, "oper", i, path_bytes=_path_bytes(e)))
    system: list[tuple[Elems, str]] = [
        ((("system", ()), ("state", ()), ("hostname", ())), "hostname"),
        ((("system", ()), ("cpus", ()), ("cpu", (("index", "ALL"),)), ("state", ()), ("total", ()), ("instant", ())), "cpu"),
        ((("system", ()), ("memory", ()), ("state", ()), ("physical", ())), "mem-physical"),
        ((("system", ()), ("memory", ()), ("state", ()), ("utilized", ())), "mem-utilized"),
        ((("components", ()), ("component", (("name", "Chassis"),)), ("state", ()), ("temperature", ()),
          ("instant", ())), "temp"),
    ]
    out += [Leaf(e, kind, path_bytes=_path_bytes(e)) for e, kind in system]
    return tuple(out)


FACT_LEAVES: tuple[Leaf, ...] = tuple(
    Leaf(e, kind, counter=fact, path_bytes=_path_bytes(e)) for e, kind, fact in (
        ((("system", ()), ("state", ()), ("software-version", ())), "fact", "os_version"),
        ((("system", ()), ("state", ()), ("boot-time", ())), "boot-time", ""),
        ((("components", ()), ("component", (("name", "Chassis"),)), ("state", ()), ("mfg-name", ())), "fact", "vendor"),
        ((("components", ()), ("component", (("name", "Chassis"),)), ("state", ()), ("part-no", ())), "fact", "model"),
        ((("components", ()), ("component", (("name", "Chassis"),)), ("state", ()), ("serial-no", ())), "fact", "serial"),
    ))
"""Inventory leaves (what discovery reads): answered by Get only, so subscriptions stream what they did."""


def _elem_matches(want: tuple[str, tuple[tuple[str, str], ...]], have: tuple[str, tuple[tuple[str, str], ...]]) -> bool:
    name, keys = want
    if name != "*" and name != have[0]:
        return False
    have_keys = dict(have[1])
    return all(v == "*" or have_keys.get(k) == v for k, v in keys)


def match(leaves: tuple[Leaf, ...], want: Elems) -> list[Leaf]:
    """Leaves at or below ``want`` (``*`` matches any name or key value; a missing key matches all)."""
    n = len(want)
    return [leaf for leaf in leaves
            if len(leaf.elems) >= n and all(_elem_matches(w, h) for w, h in zip(want, leaf.elems))]


class Reader:
    """Reads a device's leaf values at one instant; each interface's counters are computed once."""

    def __init__(self, device: SimDevice, now: float) -> None:
        self.device, self.now = device, now
        self._counters: dict[int, dict[str, int]] = {}

    def value(self, leaf: Leaf) -> int | float | str:
        d, now, kind = self.device, self.now, leaf.kind
        if kind == "counter":
            c = self._counters.get(leaf.index)
            if c is None:
                c = self._counters[leaf.index] = d.counters(leaf.index, now)
            return c[leaf.counter]
        if kind == "oper":
            return d.oper_status(leaf.index, now)
        if kind == "cpu":
            return d.cpu_percent(now)
        if kind == "mem-physical":
            return d.memory(now)[0]
        if kind == "mem-utilized":
            return d.memory(now)[1]
        if kind == "temp":
            return d.temperature(now)
        if kind == "fact":
            return d.facts[leaf.counter]
        if kind == "boot-time":  # ns since the epoch, as openconfig-system has it
            return time.time_ns() - d.uptime_s() * 1_000_000_000
        return d.name


def _typed(value: int | float | str) -> bytes:
    """TypedValue bytes in PROTO encoding: uint_val (3), double_val (14), string_val (1)."""
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x71" + struct.pack("<d", value)
    return _ld(0x0A, value.encode())


def _json_typed(value: object, encoding: int) -> bytes:
    """json_ietf_val (11) or json_val (10). RFC 7951: 64-bit integers are strings."""
    if encoding == JSON_IETF and isinstance(value, int):
        value = str(value)
    return _ld(0x5A if encoding == JSON_IETF else 0x52, json.dumps(value, separators=(",", ":")).encode())


def _update(path_bytes: bytes, typed: bytes) -> bytes:
    return _ld(0x22, _ld(0x0A, path_bytes) + _ld(0x1A, typed))  # Notification.update(4){path(1), val(3)}


def notification(reader: Reader, leaves: list[Leaf], encoding: int, timestamp_ns: int) -> bytes:
    """A Notification message; in JSON encodings each interface's counters are one container update,
    the way many devices send them (module-qualified member names, counters as strings)."""
    parts = [b"\x08" + varint(timestamp_ns)]
    if encoding == PROTO:
        parts += [_update(leaf.path_bytes, _typed(reader.value(leaf))) for leaf in leaves]
    else:
        groups: dict[bytes, dict[str, object]] = {}
        for leaf in leaves:
            if leaf.kind == "counter":
                key = f"{_JSON_MODULE['interfaces']}:{leaf.counter}"
                groups.setdefault(leaf.container_bytes, {})[key] = str(reader.value(leaf))
            else:
                parts.append(_update(leaf.path_bytes, _json_typed(reader.value(leaf), encoding)))
        for cbytes, obj in groups.items():
            parts.append(_update(cbytes, _json_typed(obj, encoding)))
    return b"".join(parts)


def subscribe_update(notif: bytes) -> bytes:
    return _ld(0x0A, notif)  # SubscribeResponse.update (1)


SYNC_RESPONSE = b"\x18\x01"  # SubscribeResponse.sync_response (3) = true


def get_response(notifs: list[bytes]) -> bytes:
    return b"".join(_ld(0x0A, n) for n in notifs)  # GetResponse.notification (1)


# Field 1, length-delimited, announcing 2**35 bytes that never come: no gNMI message parses from this.
GARBAGE = b"\x0a\xff\xff\xff\xff\x7f\x00garbage"
