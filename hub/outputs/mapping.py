"""OpenConfig paths → metric names, labels and types; string states → numbers (or info metrics, or nothing).

The default needs no configuration for the standard paths (docs/OUTPUTS.md has the table):

- the name is the path's elements joined by ``_``, without the ``state`` and ``counters`` containers, with a
  list and its container collapsed (``interfaces/interface`` → ``interface``) and ``-`` → ``_``;
- a list key becomes a label: ``name`` is called after its list (``interface="Ethernet1"``,
  ``component="CPU"``), ``index`` too (``cpu="0"``), other keys keep their own name;
- a leaf under ``counters`` is a counter and gets ``_total``; everything else is a gauge;
- every metric has ``device``; inventory tags listed in the output's ``device_tags`` are added as labels.

So ``/interfaces/interface[name=Ethernet1]/state/counters/in-octets`` is
``interface_in_octets_total{device, interface="Ethernet1"}``. String values: ``map`` (default) turns the
known enumerations into their IF-MIB numbers (``oper-status`` UP=1, DOWN=2 …) and booleans into 1/0 and
drops other strings (counted); ``drop`` drops every string; ``info`` exports ``<name>_info{…, value="UP"} 1``.
Decisions only: no I/O here, so the mapping is tested exhaustively without a network.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from .model import OutputDef, Rule

# IF-MIB ifOperStatus / ifAdminStatus numbering, which snmp_exporter users already graph.
OPER_STATUS = {"UP": 1, "DOWN": 2, "TESTING": 3, "UNKNOWN": 4, "DORMANT": 5, "NOT_PRESENT": 6,
               "LOWER_LAYER_DOWN": 7}
ENUMS: dict[str, dict[str, float]] = {
    "oper-status": OPER_STATUS,
    "admin-status": {"UP": 1, "DOWN": 2, "TESTING": 3},
    "enabled": {"TRUE": 1, "FALSE": 0},
    "duplex-mode": {"FULL": 1, "HALF": 2},
}
SKIP = frozenset({"state", "counters", "config"})
_ELEM = re.compile(r"([^/\[]+)((?:\[[^\]]*\])*)")
_KEY = re.compile(r"\[([^=\]]+)=([^\]]*)\]")
_BAD = re.compile(r"[^a-zA-Z0-9_]")
CACHE_MAX = 200_000


@dataclass(frozen=True, slots=True)
class Metric:
    """What one path maps to: ``labels`` are the path's own (device and tags are added per device)."""

    name: str
    counter: bool
    labels: tuple[tuple[str, str], ...]
    leaf: str  # the last path element, for state enumerations


def _split(path: str) -> list[tuple[str, list[tuple[str, str]]]]:
    if not path.startswith("/"):
        head, sep, rest = path.partition(":")
        if sep and "/" not in head:
            path = rest  # origin prefix (openconfig:/…)
    out = []
    for part in re.split(r"/(?![^\[]*\])", path.strip("/")):
        m = _ELEM.fullmatch(part)
        if not m:
            out.append((part, []))
            continue
        out.append((m.group(1).split(":")[-1], _KEY.findall(m.group(2))))  # module prefixes dropped
    return out


def keyless(path: str) -> str:
    """The path without list keys and origin, as rules match it: ``/interfaces/interface/state/…``."""
    return "/" + "/".join(e for e, _ in _split(path))


def default_metric(path: str) -> Metric:
    elems = _split(path)
    names: list[str] = []
    labels: list[tuple[str, str]] = []
    counter = False
    prev = ""
    for i, (e, keys) in enumerate(elems):
        last = i == len(elems) - 1
        if e == "counters" and not last:
            counter = True
        if e in SKIP and not last:
            prev = e
            continue
        # a container and its list: interfaces/interface → interface (also cpus/cpu, components/component)
        if names and keys and (prev == e + "s" or prev == e + "es") and names[-1] == prev:
            names.pop()
        names.append(e)
        for k, v in keys:
            lname = e if k in ("name", "index", "id") else k
            lname = _BAD.sub("_", lname.replace("-", "_"))
            if lname in ("device", "__name__") or lname in dict(labels):
                lname = f"{e}_{lname}"
            labels.append((_BAD.sub("_", lname), v))
        prev = e
    name = _BAD.sub("_", "_".join(names).replace("-", "_")) or "value"
    if name[0].isdigit():
        name = "_" + name
    if counter and not name.endswith("_total"):
        name += "_total"
    return Metric(name, counter, tuple(labels), elems[-1][0] if elems else "")


class Mapper:
    """One per output: the default mapping with the output's rules on top, cached per path."""

    def __init__(self, d: OutputDef) -> None:
        self.rules: list[Rule] = list(d.rules)
        self.states = d.states
        self.device_tags = list(d.device_tags)
        self._cache: dict[str, Metric | None] = {}

    def metric(self, path: str) -> Metric | None:
        """``None`` when a rule drops the path."""
        m = self._cache.get(path, False)
        if m is not False:
            return m  # type: ignore[return-value]
        m = default_metric(path)
        if self.rules:
            kl = keyless(path)
            for r in self.rules:
                if fnmatch.fnmatchcase(kl, r.match):
                    if r.type == "drop":
                        m = None
                        break
                    counter = m.counter if r.type is None else r.type == "counter"
                    m = Metric(r.name or m.name, counter, m.labels, m.leaf)
                    break
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[path] = m
        return m

    def number(self, m: Metric, value: object) -> float | int | None:
        """The numeric value to export, or ``None`` to drop it (strings in drop/info mode, unknown states)."""
        if value is True or value is False:
            return int(value) if self.states != "drop" else None
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str) and self.states == "map":
            table = ENUMS.get(m.leaf)
            if table is not None:
                return table.get(value.upper().rsplit(":", 1)[-1])  # IANA prefixes: openconfig-if:UP
        return None

    def info(self, m: Metric, value: object) -> Metric | None:
        """In ``info`` mode, the info metric a string value becomes (its value is the ``value`` label)."""
        if self.states != "info" or not isinstance(value, str):
            return None
        return Metric(m.name.removesuffix("_total") + "_info", False, (*m.labels, ("value", value)), m.leaf)
