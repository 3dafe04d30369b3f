"""Cisco IOS-XR: text output; collected through an interactive shell by default (prompt detection).

``show processes cpu`` is read with ntc-templates; ``show interfaces`` with the shared Cisco-style parser
(:mod:`.cisco_text`: ntc-templates' ``cisco_xr_show_interfaces`` has no byte counters); ``show memory
summary`` and ``show environment temperature`` by hand (ntc-templates has no template for either)."""

from __future__ import annotations

import re

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, command, dispatch, ntc, number, uptime_text
from .cisco_text import interfaces

PAGING_OFF = ["terminal length 0", "terminal width 512"]
SHELL = True
ENABLE = False
ERROR_RE = re.compile(r"^\s*% ")

_MEM = re.compile(r"Physical Memory: (\d+)M total \((\d+)M available\)")
_LOCATION = re.compile(r"^(\d+/\S+)\s*$")
_SENSOR = re.compile(r"^\s+(\S.*?)\s{2,}(-?\d+(?:\.\d+)?)(?:\s|$)")


def cpu(text: str, ts: int) -> list[Sample]:
    rows = ntc("cisco_xr_show_processes_cpu", "show processes cpu", text)
    if not rows or not rows[0].get("cpu_1_min"):
        raise ParseError("'show processes cpu': no 'CPU utilization for one minute' line")
    return [Sample(paths.CPU, number(rows[0]["cpu_1_min"]), ts)]


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


COMMANDS = {
    "interfaces": [command(("show interfaces", interfaces))],
    "system": [command(("show processes cpu", cpu)), command(("show memory summary", memory)),
               command(("show environment temperature", temperature))],
}


def parse(cmd: str, text: str, ts: int) -> list[Sample]:
    return dispatch(COMMANDS, cmd, text, ts)


FACTS_COMMANDS = ["show version"]
_XR_VERSION = re.compile(r"IOS XR Software, Version ([^\s\[]+)")
_XR_MODEL = re.compile(r"^\s*cisco (\S+) .*processor", re.MULTILINE | re.IGNORECASE)
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
