"""Arista EOS: ``| json`` first (EOS prints JSON for all ``show`` commands); text when JSON is refused
(an old image, a CLI proxy or an emulator that only knows text).

Text, all by hand: ``show interfaces`` with the shared Cisco-style parser (:mod:`.cisco_text`;
ntc-templates' ``arista_eos_show_interfaces`` captures no counters); ``show version`` (memory),
``show processes top once`` and ``show environment temperature`` because ntc-templates' templates reject
real EOS outputs (fakenos's captures: cEOS's ``cEOSLab`` first line, an indented ``KiB Swap`` line, an
indented table rule).
"""

from __future__ import annotations

import re
from typing import Any

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, command, dispatch, json_object, load_json, uptime_text
from . import cisco_text

PAGING_OFF = ["terminal length 0", "terminal width 511"]
SHELL = False
ENABLE = True
ERROR_RE = re.compile(r"^% ")

_COUNTERS = {"inOctets": "in-octets", "outOctets": "out-octets", "inUcastPkts": "in-unicast-pkts",
             "outUcastPkts": "out-unicast-pkts", "inMulticastPkts": "in-multicast-pkts",
             "outMulticastPkts": "out-multicast-pkts", "totalInErrors": "in-errors",
             "totalOutErrors": "out-errors", "inDiscards": "in-discards", "outDiscards": "out-discards"}


def interfaces(doc: dict[str, Any], ts: int) -> list[Sample]:
    out = []
    for name, itf in doc["interfaces"].items():
        if "lineProtocolStatus" in itf:
            out.append(Sample(paths.oper_status(name), paths.oper_value(_oper(itf["lineProtocolStatus"])), ts))
        counters = itf.get("interfaceCounters") or {}
        out += [Sample(paths.counter(name, leaf), int(counters[key]), ts)
                for key, leaf in _COUNTERS.items() if key in counters]
    return out


def _oper(text: str) -> str:
    # EOS spells them camelCase: up, down, notPresent, lowerLayerDown
    return re.sub(r"([a-z])([A-Z])", r"\1-\2", text)


def cpu(doc: dict[str, Any], ts: int) -> list[Sample]:
    idle = float(doc["cpuInfo"]["%Cpu(s)"]["idle"])
    return [Sample(paths.CPU, round(100 - idle), ts)]


def memory(doc: dict[str, Any], ts: int) -> list[Sample]:
    total, free = int(doc["memTotal"]) * 1024, int(doc["memFree"]) * 1024  # EOS reports KiB
    return [Sample(paths.MEM_PHYSICAL, total, ts), Sample(paths.MEM_UTILIZED, total - free, ts)]


def temperature(doc: dict[str, Any], ts: int) -> list[Sample]:
    sensors = list(doc.get("tempSensors", []))
    for slot in doc.get("powerSupplySlots", []) + doc.get("cardSlots", []):
        sensors += slot.get("tempSensors", [])
    return [Sample(paths.temperature(s["name"]), float(s["currentTemperature"]), ts)
            for s in sensors if s.get("currentTemperature") is not None]


_TOP_CPU = re.compile(r"^%Cpu\(s\):.*?(\d+(?:\.\d+)?)\s*id\b", re.MULTILINE)


def cpu_text(text: str, ts: int) -> list[Sample]:
    if not (m := _TOP_CPU.search(text)):
        raise ParseError("'show processes top once': no '%Cpu(s): … id' line")
    return [Sample(paths.CPU, round(100 - float(m.group(1))), ts)]


_MEM_TOTAL = re.compile(r"^Total memory:\s+(\d+) kB", re.MULTILINE)
_MEM_FREE = re.compile(r"^Free memory:\s+(\d+) kB", re.MULTILINE)


def memory_text(text: str, ts: int) -> list[Sample]:
    total, free = _MEM_TOTAL.search(text), _MEM_FREE.search(text)
    if not total or not free:
        raise ParseError("'show version': no 'Total memory' / 'Free memory' lines")
    total, free = int(total.group(1)) * 1024, int(free.group(1)) * 1024  # kB
    return [Sample(paths.MEM_PHYSICAL, total, ts), Sample(paths.MEM_UTILIZED, total - free, ts)]


_SECTION = re.compile(r"^(\S[^:\n]*):\s*$", re.MULTILINE)
_SENSOR_ROW = re.compile(r"^\s*(\d+)\s+(\S.*?)\s{2,}(-?\d+\.\d+)\s", re.MULTILINE)


def temperature_text(text: str, ts: int) -> list[Sample]:
    """``Supervisor 1:`` / ``Linecard 3:`` sections of ``<n> <description> <temp> …`` rows; a sensor is named
    ``<section>/<description>`` (``Supervisor 1/Digital Temperature Sensor on cpu0``)."""
    out, sections = [], list(_SECTION.finditer(text))
    for m in _SENSOR_ROW.finditer(text):
        before = [s.group(1) for s in sections if s.start() < m.start()]
        name = f"{before[-1]}/{m.group(2)}" if before else m.group(2)
        out.append(Sample(paths.temperature(name), float(m.group(3)), ts))
    if not out:
        raise ParseError("'show environment temperature': no sensor rows")
    return out


COMMANDS = {
    "interfaces": [command(("show interfaces | json", json_object(interfaces, "show interfaces | json")),
                           ("show interfaces", cisco_text.interfaces))],
    "system": [command(("show processes top once | json", json_object(cpu, "show processes top once | json")),
                       ("show processes top once", cpu_text)),
               command(("show version | json", json_object(memory, "show version | json")),
                       ("show version", memory_text)),
               command(("show system environment temperature | json",
                        json_object(temperature, "show system environment temperature | json")),
                       ("show environment temperature", temperature_text))],
}


def parse(cmd: str, text: str, ts: int) -> list[Sample]:
    return dispatch(COMMANDS, cmd, text, ts)


FACTS_COMMANDS = ["show version | json", "show hostname | json", "show interfaces status | json", "show version"]
_TEXT_VERSION = {"os_version": re.compile(r"^Software image version:\s*(\S+)", re.MULTILINE),
                 "serial": re.compile(r"^Serial number:[ \t]*(\S+)", re.MULTILINE)}


def facts(outputs: dict[str, str]) -> dict[str, Any]:
    from swtel.shared.wire import InterfaceFact

    out: dict[str, Any] = {}
    if "show version | json" not in outputs and (text := outputs.get("show version")):  # JSON refused
        first = text.strip().splitlines()[0] if text.strip() else ""
        out.update(vendor="Arista", model=first.removeprefix("Arista ").strip(),
                   uptime_s=uptime_text(text.partition("Uptime:")[2].splitlines()[0]) if "Uptime:" in text else None)
        out.update({k: m.group(1) for k, rx in _TEXT_VERSION.items() if (m := rx.search(text))})
    if text := outputs.get("show version | json"):
        v = load_json("show version | json", text)
        out.update(vendor=v.get("mfgName", "Arista"), model=v.get("modelName", ""), os_version=v.get("version", ""),
                   serial=v.get("serialNumber", ""), uptime_s=int(v["uptime"]) if "uptime" in v else None)
    if text := outputs.get("show hostname | json"):
        out["hostname"] = load_json("show hostname | json", text).get("hostname", "")
    if text := outputs.get("show interfaces status | json"):
        statuses = load_json("show interfaces status | json", text).get("interfaceStatuses", {})
        out["interfaces"] = [
            InterfaceFact(name, description=st.get("description", ""), speed_bps=int(st.get("bandwidth") or 0),
                          oper_status="UP" if st.get("linkStatus") == "connected" else "DOWN")
            for name, st in statuses.items()]
    return out
