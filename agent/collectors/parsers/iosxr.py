"""Cisco IOS-XR: text output; collected through an interactive shell by default (prompt detection)."""

from __future__ import annotations

import re

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, uptime_text

COMMANDS = {
    "interfaces": ["show interfaces"],
    "system": ["show processes cpu", "show memory summary", "show environment temperature"],
}
PAGING_OFF = ["terminal length 0", "terminal width 512"]
SHELL = True
ERROR_RE = re.compile(r"^\s*% ")

_HEAD = re.compile(r"^(\S+) is ([\w ]+?), line protocol is ([\w ]+?)\s*$", re.MULTILINE)
_IN = re.compile(r"(\d+) packets input, (\d+) bytes(?:, (\d+) total input drops)?")
_IN_BM = re.compile(r"Received (\d+) broadcast packets, (\d+) multicast packets")
_IN_ERR = re.compile(r"(\d+) input errors")
_OUT = re.compile(r"(\d+) packets output, (\d+) bytes(?:, (\d+) total output drops)?")
_OUT_BM = re.compile(r"Output (\d+) broadcast packets, (\d+) multicast packets")
_OUT_ERR = re.compile(r"(\d+) output errors")


def parse(command: str, text: str, ts: int) -> list[Sample]:
    fn = _PARSERS.get(command)
    if fn is None:
        raise ParseError(f"no parser for {command!r}")
    return fn(text, ts)


def interfaces(text: str, ts: int) -> list[Sample]:
    heads = list(_HEAD.finditer(text))
    if not heads:
        raise ParseError("'show interfaces': no '<name> is <state>, line protocol is <state>' found")
    out = []
    for head, nxt in zip(heads, heads[1:] + [None], strict=True):
        name, proto = head.group(1), head.group(3)
        block = text[head.end() : nxt.start() if nxt else len(text)]
        out.append(Sample(paths.oper_status(name), "UP" if proto.startswith("up") else "DOWN", ts))
        c = paths.counter
        for rx, bm, err, d in ((_IN, _IN_BM, _IN_ERR, "in"), (_OUT, _OUT_BM, _OUT_ERR, "out")):
            m = rx.search(block)
            if not m:
                continue
            pkts, octets = int(m.group(1)), int(m.group(2))
            out.append(Sample(c(name, f"{d}-octets"), octets, ts))
            if m.group(3) is not None:
                out.append(Sample(c(name, f"{d}-discards"), int(m.group(3)), ts))
            if b := bm.search(block):
                bcast, mcast = int(b.group(1)), int(b.group(2))
                out += [Sample(c(name, f"{d}-multicast-pkts"), mcast, ts),
                        Sample(c(name, f"{d}-unicast-pkts"), max(0, pkts - bcast - mcast), ts)]
            if e := err.search(block):
                out.append(Sample(c(name, f"{d}-errors"), int(e.group(1)), ts))
    return out


_CPU = re.compile(r"CPU utilization for one minute: (\d+)%")
_MEM = re.compile(r"Physical Memory: (\d+)M total \((\d+)M available\)")
_LOCATION = re.compile(r"^(\d+/\S+)\s*$")
_SENSOR = re.compile(r"^\s+(\S.*?)\s{2,}(-?\d+(?:\.\d+)?)(?:\s|$)")


def cpu(text: str, ts: int) -> list[Sample]:
    if not (m := _CPU.search(text)):
        raise ParseError("'show processes cpu': no 'CPU utilization for one minute' line")
    return [Sample(paths.CPU, int(m.group(1)), ts)]


def memory(text: str, ts: int) -> list[Sample]:
    if not (m := _MEM.search(text)):
        raise ParseError("'show memory summary': no 'Physical Memory' line")
    total, avail = int(m.group(1)) * 1024**2, int(m.group(2)) * 1024**2
    return [Sample(paths.MEM_PHYSICAL, total, ts), Sample(paths.MEM_UTILIZED, total - avail, ts)]


def temperature(text: str, ts: int) -> list[Sample]:
    out, location = [], None
    for line in text.splitlines():
        if m := _LOCATION.match(line):
            location = m.group(1)
        elif location and (m := _SENSOR.match(line)):
            out.append(Sample(paths.temperature(f"{location}/{m.group(1)}"), float(m.group(2)), ts))
    if not out:
        raise ParseError("'show environment temperature': no sensor rows")
    return out


_PARSERS = {
    "show interfaces": interfaces,
    "show processes cpu": cpu,
    "show memory summary": memory,
    "show environment temperature": temperature,
}


FACTS_COMMANDS = ["show version"]
_XR_VERSION = re.compile(r"IOS XR Software, Version (\S+)")
_XR_MODEL = re.compile(r"^cisco (\S+) .*processor", re.MULTILINE | re.IGNORECASE)
_XR_UPTIME = re.compile(r"^(\S+) uptime is (.+)$", re.MULTILINE)
_XR_SERIAL = re.compile(r"Processor board ID (\S+)")


def facts(outputs: dict[str, str]) -> dict[str, object]:
    text = outputs.get("show version", "")
    out: dict[str, object] = {}
    if m := _XR_VERSION.search(text):
        out.update(vendor="Cisco", os_version=m.group(1))
    if m := _XR_MODEL.search(text):
        out["model"] = m.group(1)
    if m := _XR_SERIAL.search(text):
        out["serial"] = m.group(1)
    if m := _XR_UPTIME.search(text):
        out.update(hostname=m.group(1).rpartition(":")[2], uptime_s=uptime_text(m.group(2)))
    return out
