"""``show interfaces`` as text, the layout Cisco IOS, IOS-XE, IOS-XR and Arista EOS share, and NX-OS's own.

Hand-written on purpose: no ntc-templates ``show interfaces`` template captures byte counters (the
``cisco_ios``, ``cisco_xr`` and ``cisco_nxos`` templates stop at packets and errors; ``arista_eos`` has no
counters at all, and rejects output that begins with the capture's prompt line), and octets are the
counters a network engineer wants first. Tests check the packet, error and status figures these parsers
read against ntc-templates' rows for the same real captures, so the two parsers keep each other honest.

Each interface block starts with ``<name> is <state>[, line protocol is <state>]``; a counter is emitted
only when its line is present (a loopback has none, and none are invented).
"""

from __future__ import annotations

import re

from swtel.shared.wire import Sample

from .. import paths
from . import ParseError

_HEAD = re.compile(r"^(\S+) is ((?:administratively )?\w+)(?: \([^)]*\))?"
                   r"(?:, line protocol is ((?:administratively )?\w+))?", re.MULTILINE)


def _status(admin_or_link: str, protocol: str | None) -> str:
    state = (protocol or admin_or_link).lower()
    if state.startswith("up"):
        return "UP"
    return paths.oper_value(state) if state in ("dormant", "testing", "notpresent") else "DOWN"


def blocks(text: str, command: str) -> list[tuple[str, str, str]]:
    """(name, oper-status, block text) per interface."""
    heads = list(_HEAD.finditer(text))
    if not heads:
        raise ParseError(f"{command!r}: no '<name> is <state>' line found")
    out = []
    for head, nxt in zip(heads, heads[1:] + [None], strict=True):
        body = text[head.end() : nxt.start() if nxt else len(text)]
        out.append((head.group(1), _status(head.group(2), head.group(3)), body))
    return out


# IOS / IOS-XE / IOS-XR / EOS
_IN = re.compile(r"^\s+(\d+) packets input, (\d+) bytes(?:, (\d+) total input drops)?", re.MULTILINE)
_OUT = re.compile(r"^\s+(\d+) packets output, (\d+) bytes(?:, (\d+) total output drops)?", re.MULTILINE)
# IOS "Received 160702941 broadcasts (60693400 multicasts)": the first figure counts broadcasts AND
# multicasts (Cisco's show interfaces reference); IOS-XR prints them apart; EOS "Received 1 broadcasts, 273 multicast"
_IN_IOS_BM = re.compile(r"Received (\d+) broadcasts \((\d+)(?: IP)? multicasts?\)")
_IN_BM = re.compile(r"Received (\d+) broadcast(?: packets)?s?, (\d+) multicast")
_OUT_BM = re.compile(r"(?:Output|Sent) (\d+) broadcast(?: packets)?s?, (\d+) multicast")
_IN_ERR = re.compile(r"(\d+) input errors")
_OUT_ERR = re.compile(r"(\d+) output errors")
_IN_DISC = re.compile(r"(\d+) input discards")  # EOS
_OUT_DISC = re.compile(r"(\d+) output discards")  # EOS
_IOS_QUEUE = re.compile(r"Input queue: \d+/\d+/(\d+)/\d+ \(size/max/drops/flushes\); Total output drops: (\d+)")


def interfaces(text: str, ts: int) -> list[Sample]:
    out = []
    for name, status, body in blocks(text, "show interfaces"):
        c = paths.counter
        out.append(Sample(paths.oper_status(name), status, ts))
        for rx, d in ((_IN, "in"), (_OUT, "out")):
            if not (m := rx.search(body)):
                continue
            pkts = int(m.group(1))
            out.append(Sample(c(name, f"{d}-octets"), int(m.group(2)), ts))
            if m.group(3) is not None:
                out.append(Sample(c(name, f"{d}-discards"), int(m.group(3)), ts))
            if d == "in" and (b := _IN_IOS_BM.search(body)):  # IOS: broadcasts include multicasts
                out += [Sample(c(name, "in-multicast-pkts"), int(b.group(2)), ts),
                        Sample(c(name, "in-unicast-pkts"), max(0, pkts - int(b.group(1))), ts)]
            elif b := (_IN_BM if d == "in" else _OUT_BM).search(body):
                bcast, mcast = int(b.group(1)), int(b.group(2))
                out += [Sample(c(name, f"{d}-multicast-pkts"), mcast, ts),
                        Sample(c(name, f"{d}-unicast-pkts"), max(0, pkts - bcast - mcast), ts)]
        for rx, leaf in ((_IN_ERR, "in-errors"), (_OUT_ERR, "out-errors"), (_IN_DISC, "in-discards"),
                         (_OUT_DISC, "out-discards")):
            if m := rx.search(body):
                out.append(Sample(c(name, leaf), int(m.group(1)), ts))
        if q := _IOS_QUEUE.search(body):
            out += [Sample(c(name, "in-discards"), int(q.group(1)), ts),
                    Sample(c(name, "out-discards"), int(q.group(2)), ts)]
    return out


# NX-OS: RX and TX sections, two spaces between figures
_NX_PKTS = re.compile(r"(\d+) (input|output) packets\s+(\d+) bytes")
_NX_CAST = re.compile(r"(\d+) unicast packets\s+(\d+) multicast packets\s+(\d+) broadcast packets")
_NX_ERR = re.compile(r"(\d+) (?:input|output) error\b")
_NX_DISC = re.compile(r"(\d+) (?:input|output) discard\b")


def nxos_interfaces(text: str, ts: int) -> list[Sample]:
    out = []
    for name, status, body in blocks(text, "show interface"):
        out.append(Sample(paths.oper_status(name), status, ts))
        rx, sep, tx = body.partition("\n  TX\n")
        if not sep:
            continue  # an SVI or loopback: no RX/TX sections
        for section, d in ((rx, "in"), (tx, "out")):
            c = paths.counter
            if m := _NX_PKTS.search(section):
                out.append(Sample(c(name, f"{d}-octets"), int(m.group(3)), ts))
            if m := _NX_CAST.search(section):
                out += [Sample(c(name, f"{d}-unicast-pkts"), int(m.group(1)), ts),
                        Sample(c(name, f"{d}-multicast-pkts"), int(m.group(2)), ts)]
            if m := _NX_ERR.search(section):
                out.append(Sample(c(name, f"{d}-errors"), int(m.group(1)), ts))
            if m := _NX_DISC.search(section):
                out.append(Sample(c(name, f"{d}-discards"), int(m.group(1)), ts))
    return out
