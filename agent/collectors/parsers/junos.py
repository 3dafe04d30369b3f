"""Juniper Junos: text output of ``show interfaces extensive`` and ``show chassis routing-engine``.

When ``show interfaces extensive`` is refused (a restricted login class, an emulator), plain ``show
interfaces`` still gives each physical interface's link state (it prints no physical counters).
Hand-written: ntc-templates' ``juniper_junos_show_interfaces`` captures no counters and rejects real
output with a ``{master:0}`` line (fakenos's capture); there is no template for ``show chassis
routing-engine``."""

from __future__ import annotations

import re

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, command, dispatch

PAGING_OFF = ["set cli screen-length 0", "set cli screen-width 511"]
SHELL = False
ENABLE = False  # a Junos prompt ends in ">" in operational mode: that is not an unprivileged prompt
ERROR_RE = re.compile(r"^(error:|syntax error|unknown command)", re.IGNORECASE)

_PHYSICAL = re.compile(r"^Physical interface: (\S+?), ([^,]+), Physical link is (\w+)", re.MULTILINE)
_TRAFFIC = {
    "in-octets": re.compile(r"^\s+Input\s+bytes\s*:\s*(\d+)", re.MULTILINE),
    "out-octets": re.compile(r"^\s+Output\s+bytes\s*:\s*(\d+)", re.MULTILINE),
}
_MAC = {  # MAC statistics: receive and transmit columns
    ("in-unicast-pkts", "out-unicast-pkts"): re.compile(r"^\s+Unicast packets\s+(\d+)\s+(\d+)", re.MULTILINE),
    ("in-multicast-pkts", "out-multicast-pkts"): re.compile(r"^\s+Multicast packets\s+(\d+)\s+(\d+)", re.MULTILINE),
}
_IN_ERR = re.compile(r"^\s+Input errors:\s*\n\s+Errors: (\d+), Drops: (\d+)", re.MULTILINE)
_OUT_ERR = re.compile(r"^\s+Output errors:\s*\n\s+Carrier transitions: \d+, Errors: (\d+), Drops: (\d+)", re.MULTILINE)


def interfaces(text: str, ts: int) -> list[Sample]:
    heads = list(_PHYSICAL.finditer(text))
    if not heads:
        raise ParseError("'show interfaces extensive': no 'Physical interface:' found")
    out = []
    for head, nxt in zip(heads, heads[1:] + [None], strict=True):
        name, link = head.group(1), head.group(3)
        block = text[head.end() : nxt.start() if nxt else len(text)]
        # physical counters come before any "Logical interface" section, so search only up to it
        block = block.split("\n  Logical interface ", 1)[0]
        out.append(Sample(paths.oper_status(name), paths.oper_value(link), ts))
        for leaf, rx in _TRAFFIC.items():
            if m := rx.search(block):
                out.append(Sample(paths.counter(name, leaf), int(m.group(1)), ts))
        for (rx_leaf, tx_leaf), rx in _MAC.items():
            if m := rx.search(block):
                out += [Sample(paths.counter(name, rx_leaf), int(m.group(1)), ts),
                        Sample(paths.counter(name, tx_leaf), int(m.group(2)), ts)]
        for rx, (err, drop) in ((_IN_ERR, ("in-errors", "in-discards")), (_OUT_ERR, ("out-errors", "out-discards"))):
            if m := rx.search(block):
                out += [Sample(paths.counter(name, err), int(m.group(1)), ts),
                        Sample(paths.counter(name, drop), int(m.group(2)), ts)]
    return out


def link_states(text: str, ts: int) -> list[Sample]:
    heads = list(_PHYSICAL.finditer(text))
    if not heads:
        raise ParseError("'show interfaces': no 'Physical interface:' found")
    return [Sample(paths.oper_status(m.group(1)), paths.oper_value(m.group(3)), ts) for m in heads]


_RE_TEMP = re.compile(r"^\s+Temperature\s+(\d+) degrees C", re.MULTILINE)
_RE_DRAM = re.compile(r"^\s+DRAM\s+(\d+) MB", re.MULTILINE)
_RE_MEM = re.compile(r"^\s+Memory utilization\s+(\d+) percent", re.MULTILINE)
_RE_IDLE = re.compile(r"^\s+Idle\s+(\d+) percent", re.MULTILINE)


def routing_engine(text: str, ts: int) -> list[Sample]:
    # with two routing engines the master's section comes first; re.search takes the first of each
    out = []
    if m := _RE_IDLE.search(text):
        out.append(Sample(paths.CPU, 100 - int(m.group(1)), ts))
    dram, mem = _RE_DRAM.search(text), _RE_MEM.search(text)
    if dram:
        physical = int(dram.group(1)) * 1024**2
        out.append(Sample(paths.MEM_PHYSICAL, physical, ts))
        if mem:
            out.append(Sample(paths.MEM_UTILIZED, physical * int(mem.group(1)) // 100, ts))
    if m := _RE_TEMP.search(text):
        out.append(Sample(paths.temperature("Routing Engine"), float(m.group(1)), ts))
    if not out:
        raise ParseError("'show chassis routing-engine': nothing recognised")
    return out


COMMANDS = {
    "interfaces": [command(("show interfaces extensive", interfaces), ("show interfaces", link_states))],
    "system": [command(("show chassis routing-engine", routing_engine))],
}


def parse(cmd: str, text: str, ts: int) -> list[Sample]:
    return dispatch(COMMANDS, cmd, text, ts)


FACTS_COMMANDS = ["show version"]


def facts(outputs: dict[str, str]) -> dict[str, object]:
    text = outputs.get("show version", "")
    kv = {k.strip(): v.strip() for k, sep, v in (line.partition(":") for line in text.splitlines()) if sep}
    if not kv:
        return {}
    version = kv.get("Junos", "")
    if not version and (m := re.search(r"^\s*JUNOS .*?Software Suite \[([^\]]+)\]", text, re.MULTILINE)):
        version = m.group(1)  # older releases: "JUNOS EX Software Suite [13.2X51-D35.3]"
    return {"vendor": "Juniper", "model": kv.get("Model", "").upper(), "hostname": kv.get("Hostname", ""),
            "os_version": version}
