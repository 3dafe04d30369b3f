"""The NETCONF datastore of a simulated switch: YANG-shaped XML trees and RFC 6241 subtree filtering.

Operational data (``<get>``): ietf-interfaces (RFC 8343, NMDA: state and statistics under
``/interfaces/interface``), openconfig-interfaces, openconfig-system (CPU, memory) and
openconfig-platform (temperature sensors). Configuration (``<get-config>``): ietf-interfaces config and
the ietf-system host name. Trees are built only for the top-level containers a filter asks for.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from . import cli
from .model import SimDevice

NS_IETF_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NS_IANA_IFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
NS_IETF_SYS = "urn:ietf:params:xml:ns:yang:ietf-system"
NS_OC_IF = "http://openconfig.net/yang/interfaces"
NS_OC_SYS = "http://openconfig.net/yang/system"
NS_OC_PLAT = "http://openconfig.net/yang/platform"

# module capabilities (RFC 6020 style URIs) per model family
CAPABILITIES = {
    "ietf": [f"{NS_IETF_IF}?module=ietf-interfaces&revision=2018-02-20",
             f"{NS_IETF_SYS}?module=ietf-system&revision=2014-08-06"],
    "openconfig": [f"{NS_OC_IF}?module=openconfig-interfaces&revision=2021-04-06",
                   f"{NS_OC_SYS}?module=openconfig-system&revision=2020-04-13",
                   f"{NS_OC_PLAT}?module=openconfig-platform&revision=2021-01-18"],
}


def _sub(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def ietf_interfaces(dev: SimDevice, config_only: bool = False) -> ET.Element:
    root = ET.Element(f"{{{NS_IETF_IF}}}interfaces")
    q = f"{{{NS_IETF_IF}}}"
    now = time.monotonic()
    configured = dev.interface_config() if config_only else {}
    for i, name in enumerate(dev.ifnames):
        itf = _sub(root, q + "interface")
        _sub(itf, q + "name", name)
        _sub(itf, q + "type", "ianaift:ethernetCsmacd").set("xmlns:ianaift", NS_IANA_IFT)
        if config_only:  # configuration from the device's running config (descriptions, shutdown)
            desc, enabled = configured.get(name, ("", True))
            if desc:
                _sub(itf, q + "description", desc)
            _sub(itf, q + "enabled", "true" if enabled else "false")
            continue
        _sub(itf, q + "enabled", "true")
        _sub(itf, q + "admin-status", "up")
        _sub(itf, q + "oper-status", dev.oper_status(i, now).lower())
        _sub(itf, q + "speed", 10_000_000_000)
        stats = _sub(itf, q + "statistics")
        _sub(stats, q + "discontinuity-time", _iso(dev.started_wall))
        for k, v in dev.counters(i, now).items():
            _sub(stats, q + k, v)
    return root


def oc_interfaces(dev: SimDevice) -> ET.Element:
    q = f"{{{NS_OC_IF}}}"
    root = ET.Element(q + "interfaces")
    now = time.monotonic()
    for i, name in enumerate(dev.ifnames):
        itf = _sub(root, q + "interface")
        _sub(itf, q + "name", name)
        state = _sub(itf, q + "state")
        _sub(state, q + "name", name)
        _sub(state, q + "admin-status", "UP")
        _sub(state, q + "oper-status", dev.oper_status(i, now))
        counters = _sub(state, q + "counters")
        for k, v in dev.counters(i, now).items():
            _sub(counters, q + k, v)
    return root


def oc_system(dev: SimDevice) -> ET.Element:
    q = f"{{{NS_OC_SYS}}}"
    root = ET.Element(q + "system")
    state = _sub(root, q + "state")
    _sub(state, q + "hostname", dev.name)
    _sub(state, q + "software-version", dev.facts["os_version"])
    _sub(state, q + "boot-time", time.time_ns() - dev.uptime_s() * 1_000_000_000)
    cpu = _sub(_sub(root, q + "cpus"), q + "cpu")
    _sub(cpu, q + "index", "ALL")
    cpu_state = _sub(cpu, q + "state")
    _sub(cpu_state, q + "index", "ALL")
    _sub(_sub(cpu_state, q + "total"), q + "instant", dev.cpu_percent())
    physical, utilized = dev.memory()
    mem_state = _sub(_sub(root, q + "memory"), q + "state")
    _sub(mem_state, q + "physical", physical)
    _sub(mem_state, q + "utilized", utilized)
    return root


def oc_components(dev: SimDevice) -> ET.Element:
    q = f"{{{NS_OC_PLAT}}}"
    root = ET.Element(q + "components")
    comp = _sub(root, q + "component")
    name = cli.sensor_name(dev.platform)
    _sub(comp, q + "name", name)
    state = _sub(comp, q + "state")
    _sub(state, q + "name", name)
    _sub(_sub(state, q + "temperature"), q + "instant", dev.temperature())
    chassis = _sub(root, q + "component")  # what discovery reads: maker, part number, serial
    _sub(chassis, q + "name", "Chassis")
    cstate = _sub(chassis, q + "state")
    _sub(cstate, q + "name", "Chassis")
    _sub(cstate, q + "type", "CHASSIS")
    _sub(cstate, q + "mfg-name", dev.facts["vendor"])
    _sub(cstate, q + "part-no", dev.facts["model"])
    _sub(cstate, q + "serial-no", dev.serial)
    return root


def ietf_system_state(dev: SimDevice) -> ET.Element:
    """RFC 7317 system-state: platform (OS name, release, machine) and boot time."""
    q = f"{{{NS_IETF_SYS}}}"
    root = ET.Element(q + "system-state")
    platform = _sub(root, q + "platform")
    _sub(platform, q + "os-name", f"{dev.facts['vendor']} {dev.platform.upper()}")
    _sub(platform, q + "os-release", dev.facts["os_version"])
    _sub(platform, q + "os-version", dev.facts["os_version"])
    _sub(platform, q + "machine", dev.facts["model"])
    clock = _sub(root, q + "clock")
    _sub(clock, q + "current-datetime", _iso(time.time()))
    _sub(clock, q + "boot-datetime", _iso(time.time() - dev.uptime_s()))
    return root


def ietf_system_config(dev: SimDevice) -> ET.Element:
    root = ET.Element(f"{{{NS_IETF_SYS}}}system")
    _sub(root, f"{{{NS_IETF_SYS}}}hostname", dev.name)
    return root


Builder = Callable[[SimDevice], ET.Element]


def operational(models: tuple[str, ...]) -> dict[str, Builder]:
    """Top-level containers of ``<get>`` keyed by ``{namespace}name``."""
    out: dict[str, Builder] = {}
    if "ietf" in models:
        out[f"{{{NS_IETF_IF}}}interfaces"] = ietf_interfaces
        out[f"{{{NS_IETF_SYS}}}system-state"] = ietf_system_state
        out[f"{{{NS_IETF_SYS}}}system"] = ietf_system_config  # <get> answers configuration too (RFC 6241)
    if "openconfig" in models:
        out[f"{{{NS_OC_IF}}}interfaces"] = oc_interfaces
        out[f"{{{NS_OC_SYS}}}system"] = oc_system
        out[f"{{{NS_OC_PLAT}}}components"] = oc_components
    return out


CONFIG: dict[str, Builder] = {
    f"{{{NS_IETF_IF}}}interfaces": lambda dev: ietf_interfaces(dev, config_only=True),
    f"{{{NS_IETF_SYS}}}system": ietf_system_config,
}


# ---- subtree filtering (RFC 6241 section 6) -----------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _matches(f: ET.Element, d: ET.Element) -> bool:
    """A filter node without a namespace matches any namespace (RFC 6241 6.2.1)."""
    return f.tag == d.tag or (not f.tag.startswith("{") and f.tag == _local(d.tag))


def _is_content_match(f: ET.Element) -> bool:
    return len(f) == 0 and bool((f.text or "").strip())


def filter_children(fnode: ET.Element, dnode: ET.Element) -> list[ET.Element] | None:
    """Children of ``dnode`` selected by the children of ``fnode``; ``None`` when a content match fails."""
    fchildren = list(fnode)
    content = [f for f in fchildren if _is_content_match(f)]
    for f in content:
        want = (f.text or "").strip()
        if not any(_matches(f, d) and (d.text or "").strip() == want for d in dnode):
            return None
    if content and len(content) == len(fchildren):
        return list(dnode)  # only content-match siblings: the whole instance is selected
    out = []
    for d in dnode:
        for f in fchildren:
            if not _matches(f, d):
                continue
            if f in content or len(f) == 0:  # content match or selection node: the whole node
                out.append(d)
            else:  # containment node: recurse
                sub = filter_children(f, d)
                if sub:
                    e = ET.Element(d.tag, d.attrib)
                    e.text = d.text
                    e.extend(sub)
                    out.append(e)
            break
    return out


def select(builders: dict[str, Builder], dev: SimDevice, flt: ET.Element | None) -> list[ET.Element]:
    """The top-level containers the filter selects (all when there is no filter)."""
    if flt is None:
        return [build(dev) for build in builders.values()]
    wanted = [tag for tag in builders if any(_matches(f, ET.Element(tag)) for f in flt)]
    root = ET.Element("data")
    root.extend(builders[tag](dev) for tag in wanted)
    return filter_children(flt, root) or []


# ---- serialisation with default namespaces (no ns0: prefixes) -----------------------------------------

_tags: dict[str, tuple[str, str]] = {}  # "{ns}local" -> (ns, local); a device model has few distinct tags


def _split(tag: str) -> tuple[str, str]:
    got = _tags.get(tag)
    if got is None:
        ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        got = _tags[tag] = (ns, local)
    return got


def _text(t: str) -> str:
    return escape(t) if ("&" in t or "<" in t or ">" in t) else t


def _write(e: ET.Element, parent_ns: str, out: list[str]) -> None:
    ns, local = _split(e.tag)
    head = f"<{local} xmlns={quoteattr(ns)}" if ns != parent_ns else f"<{local}"
    if e.attrib:
        head += "".join(f" {k}={quoteattr(v)}" for k, v in e.attrib.items())
    if len(e):
        out.append(head + ">" + _text(e.text or ""))
        for child in e:
            _write(child, ns, out)
        out.append(f"</{local}>")
    elif e.text:
        out.append(f"{head}>{_text(e.text)}</{local}>")
    else:
        out.append(head + "/>")


def to_xml(e: ET.Element, parent_ns: str = "") -> str:
    out: list[str] = []
    _write(e, parent_ns, out)
    return "".join(out)
