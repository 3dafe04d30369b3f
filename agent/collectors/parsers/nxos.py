"""Cisco NX-OS: ``| json`` output. NX-OS wraps tables as ``TABLE_x.ROW_x``, where one row is an object
rather than a one-element list, and prints many numbers as strings."""

from __future__ import annotations

import re
from typing import Any

from swtel.shared.wire import Sample

from .. import paths
from . import load_json, parse_json_object

COMMANDS = {
    "interfaces": ["show interface | json"],
    "system": ["show system resources | json", "show environment temperature | json"],
}
PAGING_OFF = ["terminal length 0"]
SHELL = False
ERROR_RE = re.compile(r"^% ")

_COUNTERS = {"eth_inbytes": "in-octets", "eth_outbytes": "out-octets", "eth_inucast": "in-unicast-pkts",
             "eth_outucast": "out-unicast-pkts", "eth_inmcast": "in-multicast-pkts",
             "eth_outmcast": "out-multicast-pkts", "eth_inerr": "in-errors", "eth_outerr": "out-errors",
             "eth_indiscard": "in-discards", "eth_outdiscard": "out-discards"}


def parse(command: str, text: str, ts: int) -> list[Sample]:
    return parse_json_object(_PARSERS, command, text, ts)


def rows(doc: dict[str, Any], table: str) -> list[dict[str, Any]]:
    r = doc[f"TABLE_{table}"][f"ROW_{table}"]
    return [r] if isinstance(r, dict) else list(r)


def interfaces(doc: dict[str, Any], ts: int) -> list[Sample]:
    out = []
    for row in rows(doc, "interface"):
        name = row["interface"]
        if "state" in row:
            out.append(Sample(paths.oper_status(name), paths.oper_value(row["state"]), ts))
        out += [Sample(paths.counter(name, leaf), int(row[key]), ts) for key, leaf in _COUNTERS.items()
                if key in row]
    return out


def resources(doc: dict[str, Any], ts: int) -> list[Sample]:
    total, used = int(doc["memory_usage_total"]) * 1024, int(doc["memory_usage_used"]) * 1024  # KiB
    return [Sample(paths.CPU, round(100 - float(doc["cpu_state_idle"])), ts),
            Sample(paths.MEM_PHYSICAL, total, ts), Sample(paths.MEM_UTILIZED, used, ts)]


def temperature(doc: dict[str, Any], ts: int) -> list[Sample]:
    out = []
    for row in rows(doc, "tempinfo"):
        mod = str(row.get("tempmod", "1"))
        name = row["sensor"] if mod == "1" else f"{mod}/{row['sensor']}"
        try:
            out.append(Sample(paths.temperature(name), float(row["curtemp"]), ts))
        except ValueError:
            continue  # "n/a" for an absent sensor
    return out


_PARSERS = {
    "show interface | json": interfaces,
    "show system resources | json": resources,
    "show environment temperature | json": temperature,
}


FACTS_COMMANDS = ["show version | json"]


def facts(outputs: dict[str, str]) -> dict[str, Any]:
    text = outputs.get("show version | json")
    if not text:
        return {}
    v = load_json("show version | json", text)
    # chassis_id reads "Nexus9000 C93180YC-FX chassis": the model is the word before "chassis"
    words = [w for w in str(v.get("chassis_id", "")).split() if w.lower() != "chassis"]
    uptime = sum(int(v.get(k, 0)) * m for k, m in (("kern_uptm_days", 86400), ("kern_uptm_hrs", 3600),
                                                    ("kern_uptm_mins", 60), ("kern_uptm_secs", 1)))
    return {"vendor": "Cisco", "model": words[-1] if words else "", "os_version": v.get("nxos_ver_str", ""),
            "serial": v.get("proc_board_id", ""), "hostname": v.get("host_name", ""),
            "uptime_s": uptime if any(k.startswith("kern_uptm") for k in v) else None}
