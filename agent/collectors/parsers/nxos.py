"""Cisco NX-OS: ``| json`` first; text when JSON is refused. NX-OS wraps JSON tables as ``TABLE_x.ROW_x``,
where one row is an object rather than a one-element list, and prints many numbers as strings.

Text: ``show processes cpu`` (CPU only: memory has no text fallback here) and ``show environment
temperature`` with ntc-templates; ``show interface`` by hand (:mod:`.cisco_text`: ntc-templates'
``cisco_nxos_show_interface`` has no byte counters)."""

from __future__ import annotations

import re
from typing import Any

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, cisco_text, command, dispatch, json_object, load_json, ntc, number, uptime_text

PAGING_OFF = ["terminal length 0", "terminal width 511"]
SHELL = False
ENABLE = False
ERROR_RE = re.compile(r"^% ")

_COUNTERS = {"eth_inbytes": "in-octets", "eth_outbytes": "out-octets", "eth_inucast": "in-unicast-pkts",
             "eth_outucast": "out-unicast-pkts", "eth_inmcast": "in-multicast-pkts",
             "eth_outmcast": "out-multicast-pkts", "eth_inerr": "in-errors", "eth_outerr": "out-errors",
             "eth_indiscard": "in-discards", "eth_outdiscard": "out-discards"}


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


def cpu_text(text: str, ts: int) -> list[Sample]:
    rows = ntc("cisco_nxos_show_processes_cpu", "show processes cpu", text)
    if not rows or not rows[0].get("cpu_5_sec"):
        raise ParseError("'show processes cpu': no 'CPU utilization for five seconds' line")
    return [Sample(paths.CPU, number(rows[0]["cpu_5_sec"]), ts)]


def temperature_text(text: str, ts: int) -> list[Sample]:
    out = []
    for row in ntc("cisco_nxos_show_environment_temperature", "show environment temperature", text):
        mod = row.get("module") or "1"
        sensor = " ".join(row["sensor"].split())  # the table pads names: "Front-Left  (D2)"
        name = sensor if mod == "1" else f"{mod}/{sensor}"
        try:
            out.append(Sample(paths.temperature(name), float(row["current_value"]), ts))
        except ValueError:
            continue  # "n/a" for an absent sensor
    if not out:
        raise ParseError("'show environment temperature': no sensor rows")
    return out


COMMANDS = {
    "interfaces": [command(("show interface | json", json_object(interfaces, "show interface | json")),
                           ("show interface", cisco_text.nxos_interfaces))],
    "system": [command(("show system resources | json", json_object(resources, "show system resources | json")),
                       ("show processes cpu", cpu_text)),
               command(("show environment temperature | json",
                        json_object(temperature, "show environment temperature | json")),
                       ("show environment temperature", temperature_text))],
}


def parse(cmd: str, text: str, ts: int) -> list[Sample]:
    return dispatch(COMMANDS, cmd, text, ts)


FACTS_COMMANDS = ["show version | json", "show version"]


def facts(outputs: dict[str, str]) -> dict[str, Any]:
    text = outputs.get("show version | json")
    if not text:
        return facts_text(outputs.get("show version", ""))
    v = load_json("show version | json", text)
    # chassis_id reads "Nexus9000 C93180YC-FX chassis": the model is the word before "chassis"
    words = [w for w in str(v.get("chassis_id", "")).split() if w.lower() != "chassis"]
    uptime = sum(int(v.get(k, 0)) * m for k, m in (("kern_uptm_days", 86400), ("kern_uptm_hrs", 3600),
                                                    ("kern_uptm_mins", 60), ("kern_uptm_secs", 1)))
    return {"vendor": "Cisco", "model": words[-1] if words else "", "os_version": v.get("nxos_ver_str", ""),
            "serial": v.get("proc_board_id", ""), "hostname": v.get("host_name", ""),
            "uptime_s": uptime if any(k.startswith("kern_uptm") for k in v) else None}


def facts_text(text: str) -> dict[str, Any]:
    """``show version`` as text (JSON refused), read with ntc-templates."""
    if not text:
        return {}
    rows = ntc("cisco_nxos_show_version", "show version", text)
    if not rows:
        return {}
    v = rows[0]
    return {"vendor": "Cisco", "model": v.get("platform", ""), "os_version": v.get("os", ""),
            "serial": v.get("serial", ""), "hostname": v.get("hostname", ""),
            "uptime_s": uptime_text(v.get("uptime", "").replace("(s)", "s"))}
