"""The simulator's generic platform (also used for SR Linux over SSH): a counters table and key: value
system lines. Not a real vendor format; a template for adding one."""

from __future__ import annotations

import re

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError, command, dispatch, uptime_text

PAGING_OFF = ["terminal length 0"]
SHELL = False
ENABLE = True  # the simulator's privilege model is Cisco's: "sw>" until `enable`
ERROR_RE = re.compile(r"^% ")


def parse(cmd: str, text: str, ts: int) -> list[Sample]:
    return dispatch(COMMANDS, cmd, text, ts)


def interfaces(text: str, ts: int) -> list[Sample]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0][:2] != ["Interface", "State"]:
        raise ParseError("'show interfaces counters': no header line")
    cols = lines[0][2:]
    if not set(cols) <= set(paths.IF_COUNTERS):
        raise ParseError(f"'show interfaces counters': unknown columns {sorted(set(cols) - set(paths.IF_COUNTERS))}")
    out = []
    for row in lines[1:]:
        if len(row) != len(cols) + 2 or not all(v.isdigit() for v in row[2:]):
            raise ParseError(f"'show interfaces counters': bad row {' '.join(row)[:60]!r}")
        name = row[0]
        out.append(Sample(paths.oper_status(name), paths.oper_value(row[1]), ts))
        out += [Sample(paths.counter(name, col), int(v), ts) for col, v in zip(cols, row[2:], strict=True)]
    return out


def system(text: str, ts: int) -> list[Sample]:
    kv = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kv[key.strip()] = value.strip()
    try:
        out = [Sample(paths.CPU, int(kv["cpu-percent"]), ts),
               Sample(paths.MEM_PHYSICAL, int(kv["memory-total"]), ts),
               Sample(paths.MEM_UTILIZED, int(kv["memory-used"]), ts)]
    except (KeyError, ValueError):
        raise ParseError("'show system resources': missing cpu-percent/memory-total/memory-used") from None
    out += [Sample(paths.temperature(k.split(None, 1)[1]), float(v), ts)
            for k, v in kv.items() if k.startswith("temperature ") and _is_float(v)]
    return out


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


COMMANDS = {
    "interfaces": [command(("show interfaces counters", interfaces))],
    "system": [command(("show system resources", system))],
}


FACTS_COMMANDS = ["show version"]
_VERSION = re.compile(r"^(\S+) (.+?) version (\S+) serial (\S+)", re.MULTILINE)


def facts(outputs: dict[str, str]) -> dict[str, object]:
    text = outputs.get("show version", "")
    out: dict[str, object] = {}
    if m := _VERSION.search(text):
        out.update(vendor=m.group(1), model=m.group(2), os_version=m.group(3), serial=m.group(4))
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "hostname":
            out["hostname"] = value.strip()
        elif sep and key.strip() == "uptime":
            out["uptime_s"] = uptime_text(value)
    return out
