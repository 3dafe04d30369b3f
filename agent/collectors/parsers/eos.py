"""Arista EOS: every command with ``| json`` (EOS prints JSON for all ``show`` commands)."""

from __future__ import annotations

import re
from typing import Any

from swtel.shared.wire import Sample

from .. import paths
from . import load_json, parse_json_object

COMMANDS = {
    "interfaces": ["show interfaces | json"],
    "system": ["show processes top once | json", "show version | json",
               "show system environment temperature | json"],
}
PAGING_OFF = ["terminal length 0"]
SHELL = False
ERROR_RE = re.compile(r"^% ")

_COUNTERS = {"inOctets": "in-octets", "outOctets": "out-octets", "inUcastPkts": "in-unicast-pkts",
             "outUcastPkts": "out-unicast-pkts", "inMulticastPkts": "in-multicast-pkts",
             "outMulticastPkts": "out-multicast-pkts", "totalInErrors": "in-errors",
             "totalOutErrors": "out-errors", "inDiscards": "in-discards", "outDiscards": "out-discards"}


def parse(command: str, text: str, ts: int) -> list[Sample]:
    return parse_json_object(_PARSERS, command, text, ts)


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


_PARSERS = {
    "show interfaces | json": interfaces,
    "show processes top once | json": cpu,
    "show version | json": memory,
    "show system environment temperature | json": temperature,
}


FACTS_COMMANDS = ["show version | json", "show hostname | json", "show interfaces status | json"]


def facts(outputs: dict[str, str]) -> dict[str, Any]:
    from swtel.shared.wire import InterfaceFact

    out: dict[str, Any] = {}
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
