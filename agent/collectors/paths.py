"""The normalised paths every collector emits, and which of them a subscription asks for.

Paths are gNMI-style with keys, identical for gNMI, SSH CLI and NETCONF, so the hub and dashboard treat
all protocols alike. Polling collectors (SSH, NETCONF) group paths into what one set of commands or one
RPC returns: ``interfaces`` (counters, oper-status) and ``system`` (CPU, memory, temperature).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from swtel.shared import wire

IF_COUNTERS = ("in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-multicast-pkts",
               "out-multicast-pkts", "in-errors", "out-errors", "in-discards", "out-discards")
CPU = "/system/cpus/cpu[index=ALL]/state/total/instant"  # OpenConfig: index ALL is the total over CPUs
MEM_PHYSICAL = "/system/memory/state/physical"
MEM_UTILIZED = "/system/memory/state/utilized"
OPER_STATES = {"up": "UP", "down": "DOWN", "testing": "TESTING", "dormant": "DORMANT",
               "not-present": "NOT_PRESENT", "notpresent": "NOT_PRESENT", "lower-layer-down": "LOWER_LAYER_DOWN",
               "lowerlayerdown": "LOWER_LAYER_DOWN", "unknown": "UNKNOWN"}

_KEYS = re.compile(r"\[[^\]]*\]")


def counter(ifname: str, name: str) -> str:
    return f"/interfaces/interface[name={ifname}]/state/counters/{name}"


def oper_status(ifname: str) -> str:
    return f"/interfaces/interface[name={ifname}]/state/oper-status"


def temperature(component: str) -> str:
    return f"/components/component[name={component}]/state/temperature/instant"


def oper_value(text: str) -> str:
    """Any platform's spelling of an operational state, as the openconfig enum (``UP``, ``DOWN``, …)."""
    return OPER_STATES.get(text.strip().lower().replace("_", "-"), "UNKNOWN")


def groups(paths: list[str]) -> set[str]:
    """Which poll groups a subscription's paths need; unknown paths need none (they are ignored)."""
    out = set()
    for p in paths:
        bare = _KEYS.sub("", p).rstrip("/") or "/"
        if bare == "/" or bare.startswith("/interfaces"):
            out.add("interfaces")
        if bare == "/" or bare.startswith(("/system", "/components")):
            out.add("system")
    return out


def matcher(paths: list[str]) -> Callable[[str], bool]:
    """A predicate: does a sample path fall under one of the subscription's paths (keys optional)?"""
    prefixes = [(("[" in p), p.rstrip("/")) for p in paths]

    def match(path: str) -> bool:
        bare = _KEYS.sub("", path)
        for keyed, prefix in prefixes:
            target = path if keyed else bare
            if not prefix or target == prefix or target.startswith(prefix + "/"):
                return True
        return False

    return match


# Answers by subscription paths, then sample path, shared by every device: polling collectors emit the
# same paths every poll (and devices of one platform the same ones), so each is matched once, not once per
# sample per poll (a regex and prefix tests per sample were ~10 % of a NETCONF or SSH shell poll's CPU).
_KEPT: dict[tuple[str, ...], dict[str, bool]] = {}
_KEPT_MAX = 100_000  # answers per subscription before its cache starts over


def keep(samples: list[wire.Sample], paths: list[str]) -> list[wire.Sample]:
    key = tuple(paths)
    known = _KEPT.get(key)
    if known is None or len(known) > _KEPT_MAX:
        if len(_KEPT) >= 1000:
            _KEPT.clear()
        known = _KEPT[key] = {}
    try:  # every path answered before: the usual poll, one lookup per sample
        return [s for s in samples if known[s.path]]
    except KeyError:
        pass
    out = []
    match = None
    for s in samples:
        ok = known.get(s.path)
        if ok is None:
            if match is None:
                match = matcher(paths)
            ok = known[s.path] = match(s.path)
        if ok:
            out.append(s)
    return out
