"""Cisco IOS and IOS-XE (inventory platform ``ios`` or ``iosxe``): text only (IOS has no ``| json``).

Collected over exec channels by default; in a shell (``ssh_mode=shell``, or when the device refuses exec
requests) the collector sends ``enable`` when the prompt ends in ``>`` (with the credential's
``enable_secret`` if the device asks for a password), because ``show running-config`` and, on some
images, ``show version`` need privilege level 15.

Parsers: ``show processes cpu``, ``show processes memory sorted`` and ``show version`` are read with
ntc-templates; ``show interfaces`` with the shared Cisco-style parser (:mod:`.cisco_text`: no ntc template
captures byte counters); ``show environment temperature`` by hand, because ntc-templates'
``cisco_ios_show_environment_temperature`` rejects real Catalyst output whose ``Temperature State`` line
is indented (fakenos's capture).
"""

from __future__ import annotations

import re
from typing import Any

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, command, dispatch, ntc, number, uptime_text
from .cisco_text import interfaces

PAGING_OFF = ["terminal length 0", "terminal width 511"]
SHELL = False
ENABLE = True
ERROR_RE = re.compile(r"^% ")


def cpu(text: str, ts: int) -> list[Sample]:
    rows = ntc("cisco_ios_show_processes_cpu", "show processes cpu", text)
    if not rows or not rows[0].get("cpu_usage_5_sec"):
        raise ParseError("'show processes cpu': no 'CPU utilization for five seconds' line")
    return [Sample(paths.CPU, number(rows[0]["cpu_usage_5_sec"]), ts)]


def memory(text: str, ts: int) -> list[Sample]:
    rows = ntc("cisco_ios_show_processes_memory_sorted", "show processes memory sorted", text)
    if not rows or not rows[0].get("memory_total"):
        raise ParseError("'show processes memory sorted': no 'Processor Pool Total' line")
    return [Sample(paths.MEM_PHYSICAL, number(rows[0]["memory_total"]), ts),
            Sample(paths.MEM_UTILIZED, number(rows[0]["memory_used"]), ts)]


_SWITCH = re.compile(r"^Switch (\d+):", re.MULTILINE)
_TEMP = re.compile(r"^\s*(\w[\w ]*?) Temperature Value: (-?\d+(?:\.\d+)?) Degree Celsius", re.MULTILINE)


def temperature(text: str, ts: int) -> list[Sample]:
    """``Switch 1: …`` sections with ``Inlet Temperature Value: 29 Degree Celsius`` lines; sensor names
    are ``Switch 1 Inlet`` (stacks) or ``Inlet`` (a single chassis without ``Switch N:`` headers)."""
    out, switches = [], list(_SWITCH.finditer(text))
    for m in _TEMP.finditer(text):
        before = [s for s in switches if s.start() < m.start()]
        name = f"Switch {before[-1].group(1)} {m.group(1)}" if before else m.group(1)
        out.append(Sample(paths.temperature(name), float(m.group(2)), ts))
    if not out:
        raise ParseError("'show environment temperature': no '<sensor> Temperature Value: <n> Degree Celsius' line")
    return out


COMMANDS = {
    "interfaces": [command(("show interfaces", interfaces))],
    "system": [command(("show processes cpu", cpu)), command(("show processes memory sorted", memory)),
               command(("show environment temperature", temperature))],
}


def parse(cmd: str, text: str, ts: int) -> list[Sample]:
    return dispatch(COMMANDS, cmd, text, ts)


FACTS_COMMANDS = ["show version"]
_XE_VERSION = re.compile(r"^Cisco IOS XE Software, Version (\S+)", re.MULTILINE)


def facts(outputs: dict[str, str]) -> dict[str, Any]:
    text = outputs.get("show version")
    if not text:
        return {}
    rows = ntc("cisco_ios_show_version", "show version", text)
    if not rows:
        return {}
    v = rows[0]
    first = lambda xs: xs[0] if isinstance(xs, list) and xs else (xs if isinstance(xs, str) else "")  # noqa: E731
    version = v.get("version") or ""
    if not version and (m := _XE_VERSION.search(text)):  # IOS-XE's first line, when the template misses it
        version = m.group(1)
    return {"vendor": "Cisco", "model": first(v.get("hardware")), "os_version": version,
            "serial": first(v.get("serial")), "hostname": v.get("hostname", ""),
            "uptime_s": uptime_text(v.get("uptime", ""))}
