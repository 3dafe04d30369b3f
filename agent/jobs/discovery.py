"""Discovery: what a device is (vendor, model, OS, serial, uptime, host name), what it speaks (gNMI
version, encodings and models, or NETCONF capabilities) and which interfaces it has.

Run by the agent that holds the device's lease: once when the slot starts, then every
``discovery_interval_s`` (6 h by default). The result is one :class:`~swtel.shared.wire.DeviceFacts`
published on ``swtel.event.<device>.facts`` through JetStream; the hub keeps the latest per device.

One short session of the device's own protocol, with the collectors' protocol code:
- gNMI: Capabilities, then Get of openconfig-system state, the platform components (maker, part number,
  serial of the chassis) and interface oper-status/description. Paths a device does not have are skipped.
- SSH: the platform's ``FACTS_COMMANDS`` (``show version`` and friends, parsed in ``collectors/parsers``);
  interfaces from the platform's status command or, failing that, its interface poll.
- NETCONF: the hello's capabilities, then ``<get>`` of openconfig-system/platform and ietf-system (the
  configured host name, the platform, the boot time), the ietf-yang-library module list, and the
  interfaces (ietf or openconfig, as the collector chooses). Servers without OpenConfig still name their
  maker: the vendor is read from the namespaces of the vendor's own modules (``VENDOR_NAMESPACES``).
- SNMP: sysDescr, sysObjectID (its enterprise number names the vendor), sysName and sysUpTime; ENTITY-MIB
  model, serial, maker and software of the chassis entity; interfaces from IF-MIB (name, ifAlias,
  ifHighSpeed, ifOperStatus). ``models`` holds sysObjectID and ``os_version`` sysDescr's first line when
  no entity names a software version.

A query that fails is named in ``errors`` and the rest is still published; a device that cannot be
reached at all is retried with backoff (from 5 s up to the interval). Nothing here raises for the device
and nothing touches the collector's statistics: discovery failing never marks a device down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from datetime import datetime
from typing import Any

from swtel.agent.collectors.base import CollectorContext, backoff
from swtel.agent.collectors.sshconn import SshOptions
from swtel.shared import wire
from swtel.shared.settings import Settings

log = logging.getLogger("swtel.agent.discovery")

TIMEOUT_S = 60.0  # one whole discovery, whatever the protocol
RETRY_BASE_S = 5.0
# At most this many discoveries at once per agent process: after a failover an agent claims hundreds of
# devices in a second, and their collectors already open a session each; discoveries queue behind these.
MAX_CONCURRENT = 16
_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _limit() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()  # a semaphore belongs to one event loop
    sem = _limits.get(loop)
    if sem is None:
        sem = _limits[loop] = asyncio.Semaphore(MAX_CONCURRENT)
    return sem


def jobs_for(device: wire.Device, settings: Settings) -> list[Any]:
    opts = SshOptions.from_settings(settings)
    return [functools.partial(run, interval_s=settings.discovery_interval_s, opts=opts)]


async def run(ctx: CollectorContext, *, interval_s: float, opts: SshOptions) -> None:
    """Discover now, then every ``interval_s``; failures are retried with backoff, never raised."""
    attempt = 0
    while True:
        facts = None
        try:
            async with _limit(), asyncio.timeout(TIMEOUT_S):  # the timeout starts once it may run
                facts = await discover(ctx, opts)
        except Exception as e:  # noqa: BLE001 - a device fault or a bug: logged, retried
            log.info("%s: discovery failed: %s", ctx.device.name, _reason(e))
        published = False
        if facts is not None:
            try:
                published = bool(await ctx.publish.facts(facts))  # type: ignore[attr-defined]
            except Exception as e:  # noqa: BLE001
                log.info("%s: facts not published: %s", ctx.device.name, _reason(e))
        # the facts (48 interfaces and a model list: ~25 kB per device at 500 devices) are not kept while
        # waiting the 6 h for the next discovery: nothing per device outlives the update it belongs to
        facts = None
        if published:
            attempt = 0
            await asyncio.sleep(interval_s)
        else:
            await asyncio.sleep(min(interval_s, RETRY_BASE_S + backoff(attempt, base=RETRY_BASE_S, cap=600.0)))
            attempt += 1


def _reason(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup):
        return _reason(e.exceptions[0])
    return f"{type(e).__name__}: {e}"[:300] if str(e) else type(e).__name__


async def discover(ctx: CollectorContext, opts: SshOptions) -> wire.DeviceFacts:
    """One discovery; raises when the device cannot be reached at all."""
    d = ctx.device
    facts = wire.DeviceFacts(device=d.name, agent="", token=ctx.token,
                             ts=time.time_ns(), protocol=d.protocol)
    if d.protocol == "gnmi":
        await _gnmi(ctx, facts)
    elif d.protocol == "ssh":
        await _ssh(ctx, opts, facts)
    elif d.protocol == "netconf":
        await _netconf(ctx, opts, facts)
    elif d.protocol == "snmp":
        await _snmp(ctx, facts)
    facts.ts = time.time_ns()
    return facts


def _set(facts: wire.DeviceFacts, values: dict[str, Any]) -> None:
    for k, v in values.items():
        if v not in (None, "", []):
            setattr(facts, k, v)


def _interfaces_from_samples(samples: list[wire.Sample]) -> list[wire.InterfaceFact]:
    """Interface names, oper-status and description from normalised samples, in the device's order."""
    from swtel.agent.collectors import gnmi_paths

    found: dict[str, wire.InterfaceFact] = {}
    for s in samples:
        try:
            _, elems = gnmi_paths.parse(s.path)
        except ValueError:
            continue
        if len(elems) < 2 or elems[0][0] != "interfaces" or elems[1][0] != "interface":
            continue
        name = dict(elems[1][1]).get("name")
        if not name:
            continue
        itf = found.setdefault(name, wire.InterfaceFact(name))
        leaf = elems[-1][0]
        if leaf == "oper-status" and s.value is not None:
            itf.oper_status = str(s.value).upper()
        elif leaf == "description" and s.value is not None:
            itf.description = str(s.value)
        elif leaf in ("port-speed", "speed") and isinstance(s.value, int):
            itf.speed_bps = s.value
    return list(found.values())


# ---- gNMI ---------------------------------------------------------------------------------------------

GNMI_GETS = {  # path → required (a missing optional path is no error)
    "/system/state": True,
    "/components/component/state": False,
    "/interfaces/interface/state/oper-status": True,
    "/interfaces/interface/state/description": False,
}


async def _gnmi(ctx: CollectorContext, facts: wire.DeviceFacts) -> None:
    import grpc
    from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

    from swtel.agent.collectors import gnmi, gnmi_paths

    channel = await gnmi.open_channel(ctx)
    try:
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        metadata = gnmi.call_metadata(ctx)
        caps = await gnmi.capabilities(stub, metadata)
        facts.gnmi_version = caps.gNMI_version
        facts.encodings = [gnmi_pb2.Encoding.Name(e) for e in caps.supported_encodings
                           if e in gnmi_pb2.Encoding.values()]
        facts.models = [f"{m.name}@{m.version}" if m.version else m.name for m in caps.supported_models]
        encoding, _ = gnmi.choose_encoding(ctx.device, caps)
        cols = wire.Columns()
        for path, required in GNMI_GETS.items():
            try:
                resp = await stub.Get(gnmi_pb2.GetRequest(path=[gnmi_paths.to_proto(path)], encoding=encoding),
                                      metadata=metadata, timeout=gnmi.RPC_TIMEOUT_S)
                if resp is None:
                    raise ValueError("the device sent a malformed message")
                for n in resp.notification:
                    gnmi.decode_notification(n, cols)
            except grpc.aio.AioRpcError as e:
                if required or e.code() != grpc.StatusCode.NOT_FOUND:
                    facts.errors.append(f"Get {path}: {e.code().name} ({(e.details() or '').strip()})"[:200])
            except ValueError as e:
                facts.errors.append(f"Get {path}: {e}"[:200])
    finally:
        await channel.close(grace=None)
    samples = [wire.Sample(p, v, t) for p, v, t in wire.rows(cols)]  # a few answers once: no hot path
    _set(facts, _gnmi_values(samples))
    facts.interfaces = _interfaces_from_samples(samples)


def _gnmi_values(samples: list[wire.Sample]) -> dict[str, Any]:
    """Facts from openconfig-system state and the chassis component (the one with a serial number,
    preferring one called or typed chassis)."""
    from swtel.agent.collectors import gnmi_paths

    out: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for s in samples:
        try:
            _, elems = gnmi_paths.parse(s.path)
        except ValueError:
            continue
        names = [e[0] for e in elems]
        leaf = names[-1] if names else ""
        if names[:2] == ["system", "state"] and len(names) == 3:
            if leaf == "hostname":
                out["hostname"] = str(s.value)
            elif leaf == "software-version":
                out["os_version"] = str(s.value)
            elif leaf == "boot-time" and s.value is not None:
                boot_ns = int(s.value)  # type: ignore[arg-type]
                out["uptime_s"] = max(0, (time.time_ns() - boot_ns) // 1_000_000_000)
        elif names[:3] == ["components", "component", "state"] and len(names) == 4:
            comp = dict(elems[1][1]).get("name", "")
            components.setdefault(comp, {})[leaf] = s.value
    return _chassis(components, out)


def _chassis(components: dict[str, dict[str, Any]], out: dict[str, Any]) -> dict[str, Any]:
    """Add maker, part number and serial from openconfig-platform component states (name → leaf → value):
    the component with a serial number, preferring one called or typed chassis. Same for gNMI and NETCONF."""
    found = sorted((c for c in components.items() if c[1].get("serial-no")),
                   key=lambda c: ("chassis" not in (c[0] + str(c[1].get("type", ""))).lower(), c[0]))
    if found:
        state = found[0][1]
        out.update(vendor=str(state.get("mfg-name", "")), model=str(state.get("part-no", "")),
                   serial=str(state.get("serial-no", "")))
        if not out.get("os_version") and state.get("software-version"):
            out["os_version"] = str(state["software-version"])
    return out


# ---- SSH CLI ------------------------------------------------------------------------------------------


async def _ssh(ctx: CollectorContext, opts: SshOptions, facts: wire.DeviceFacts) -> None:
    from swtel.agent.collectors import polling, ssh, sshconn

    # open_cli: the collector's session (exec, or a shell when the device refuses exec; `enable` first)
    conn, cli = await ssh.open_cli(ctx.device, ctx.credential, opts)
    platform = cli.platform
    try:
        outputs: dict[str, str] = {}
        for cmd in getattr(platform, "FACTS_COMMANDS", []):
            try:
                outputs[cmd] = await cli.command(cmd)
            except (polling.DeviceError, TimeoutError) as e:
                facts.errors.append(f"{cmd!r}: {e or 'no answer in time'}"[:200])
        try:
            _set(facts, platform.facts(outputs))
        except (polling.DeviceError, ValueError, KeyError, TypeError, AttributeError) as e:
            facts.errors.append(f"facts: {e}"[:200])
        if not facts.interfaces:  # no cheap status table: the interface poll's oper-status samples
            try:
                facts.interfaces = _interfaces_from_samples(await cli.poll({"interfaces"}))
            except polling.PartialPoll as e:  # what answered still names the interfaces
                facts.interfaces = _interfaces_from_samples(e.samples)
                facts.errors.append(f"interfaces: {e}"[:200])
            except (polling.DeviceError, TimeoutError) as e:
                facts.errors.append(f"interfaces: {e or 'no answer in time'}"[:200])
    finally:
        await sshconn.close(conn)


# ---- NETCONF ------------------------------------------------------------------------------------------

NS_IETF_SYS = "urn:ietf:params:xml:ns:yang:ietf-system"
NS_YANG_LIBRARY = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
CAP_YANG_LIBRARY = "urn:ietf:params:netconf:capability:yang-library:1.0"
NS_YUMA123_SYS = "http://yuma123.org/ns/yuma123-system"


async def _netconf(ctx: CollectorContext, opts: SshOptions, facts: wire.DeviceFacts) -> None:
    from swtel.agent.collectors import netconf, polling, sshconn

    conn = await sshconn.connect(ctx.device, ctx.credential, opts)
    nc = netconf.NetconfSession(conn, opts, base11=ctx.device.tags.get("netconf_framing") != "1.0")
    try:
        await nc.open()
        facts.models = sorted(nc.capabilities)
        values: dict[str, Any] = {}
        if nc.offers(netconf.NS_OC_SYS) or nc.offers(netconf.NS_OC_PLAT):
            try:
                data = await nc.get(f'<system xmlns="{netconf.NS_OC_SYS}"><state/></system>'
                                    f'<components xmlns="{netconf.NS_OC_PLAT}"><component><name/><state>'
                                    f"<type/><mfg-name/><part-no/><serial-no/><software-version/></state>"
                                    f"</component></components>")
                values.update(_oc_values(data))
            except polling.DeviceError as e:
                facts.errors.append(f"openconfig system: {e}"[:200])
        if nc.offers(NS_IETF_SYS):
            try:
                data = await nc.get(f'<system-state xmlns="{NS_IETF_SYS}"/><system xmlns="{NS_IETF_SYS}">'
                                    f"<hostname/><contact/><location/></system>")
                values = {**_ietf_values(data), **values}  # openconfig's answers win
            except polling.DeviceError as e:
                facts.errors.append(f"ietf-system: {e}"[:200])
        namespaces = {c.partition("?")[0] for c in nc.capabilities}
        if nc.offers(NS_YANG_LIBRARY) or any(c.startswith(CAP_YANG_LIBRARY) for c in nc.capabilities):
            try:  # RFC 7895 servers may list their modules here only, not in the hello
                data = await nc.get(f'<modules-state xmlns="{NS_YANG_LIBRARY}"><module><name/><revision/>'
                                    f"<namespace/></module></modules-state>")
                library = _library_modules(data)
                namespaces |= {ns for _, ns in library}
                facts.models = sorted(set(facts.models) | {name for name, _ in library})
            except polling.DeviceError as e:
                facts.errors.append(f"yang-library: {e}"[:200])
        values.setdefault("vendor", vendor_of(namespaces))
        _set(facts, values)
        try:
            facts.interfaces = _interfaces_from_samples(await nc.poll({"interfaces"}))
        except polling.DeviceError as e:
            facts.errors.append(f"interfaces: {e}"[:200])
    finally:
        await nc.close()
        await sshconn.close(conn)


def _oc_values(data: Any) -> dict[str, Any]:
    from swtel.agent.collectors.netconf import NS_OC_PLAT, NS_OC_SYS, _q

    out: dict[str, Any] = {}
    state = data.find(_q(NS_OC_SYS, "system", "state"))
    if state is not None:
        out["hostname"] = (state.findtext(_q(NS_OC_SYS, "hostname")) or "").strip()
        out["os_version"] = (state.findtext(_q(NS_OC_SYS, "software-version")) or "").strip()
        boot = (state.findtext(_q(NS_OC_SYS, "boot-time")) or "").strip()
        if boot.isdigit():
            out["uptime_s"] = max(0, (time.time_ns() - int(boot)) // 1_000_000_000)
    components = {
        (comp.findtext(_q(NS_OC_PLAT, "name")) or "").strip():
            {e.tag.rpartition("}")[2]: (e.text or "").strip() for e in comp.findall(_q(NS_OC_PLAT, "state", "*"))}
        for comp in data.iterfind(_q(NS_OC_PLAT, "components", "component"))}
    return _chassis(components, out)


def _ietf_values(data: Any) -> dict[str, Any]:
    """Facts from ietf-system (RFC 7317): the configured host name, the platform (os-name, os-release,
    machine) and the boot time; where the platform is absent, the yuma123-system augmentation that
    netconfd (yuma123) puts under system-state (uname, server id, start time)."""
    from swtel.agent.collectors.netconf import _q

    out: dict[str, Any] = {}
    out["hostname"] = (data.findtext(_q(NS_IETF_SYS, "system", "hostname")) or "").strip()
    platform = data.find(_q(NS_IETF_SYS, "system-state", "platform"))
    if platform is not None:
        name = (platform.findtext(_q(NS_IETF_SYS, "os-name")) or "").strip()
        release = (platform.findtext(_q(NS_IETF_SYS, "os-release")) or "").strip()
        out["os_version"] = release if release.lower().startswith(name.lower()) else f"{name} {release}".strip()
        out["model"] = (platform.findtext(_q(NS_IETF_SYS, "machine")) or "").strip()
    boot = (data.findtext(_q(NS_IETF_SYS, "system-state", "clock", "boot-datetime")) or "").strip()
    yuma = data.find(f"{{{NS_IETF_SYS}}}system-state/{{{NS_YUMA123_SYS}}}yuma")
    if yuma is not None:
        y = f"{{{NS_YUMA123_SYS}}}"
        uname = {e.tag.rpartition("}")[2]: (e.text or "").strip() for e in yuma.findall(f"{y}uname/*")}
        sys_name = (yuma.findtext(f"{y}sysName") or "").strip()
        out["hostname"] = out["hostname"] or uname.get("nodename", "") or sys_name
        out.setdefault("os_version", f"{uname.get('sysname', '')} {uname.get('release', '')}".strip())
        out.setdefault("model", uname.get("machine", ""))
        boot = boot or (yuma.findtext(f"{y}sysBootDateTime") or "").strip()
    try:
        out["uptime_s"] = max(0, int(time.time() - datetime.fromisoformat(boot.replace("Z", "+00:00")).timestamp()))
    except ValueError:
        pass
    return out


def _library_modules(data: Any) -> list[tuple[str, str]]:
    """(name, namespace) of each module in ietf-yang-library's modules-state."""
    from swtel.agent.collectors.netconf import _q

    return [((m.findtext(_q(NS_YANG_LIBRARY, "name")) or "").strip(),
             (m.findtext(_q(NS_YANG_LIBRARY, "namespace")) or "").strip())
            for m in data.iterfind(_q(NS_YANG_LIBRARY, "modules-state", "module"))]


# Who wrote a NETCONF server's vendor-specific modules, by namespace prefix. A device lists its maker's
# own YANG modules (in the hello or the yang-library); standard ones (ietf, openconfig, iana) say nothing.
VENDOR_NAMESPACES = (
    ("http://cisco.com/ns/", "Cisco"), ("urn:cisco", "Cisco"), ("http://www.cisco.com/", "Cisco"),
    ("http://yang.juniper.net/", "Juniper"), ("http://xml.juniper.net/", "Juniper"),
    ("http://arista.com/yang/", "Arista"), ("urn:nokia.com:", "Nokia"), ("urn:srl_nokia", "Nokia"),
    ("urn:alcatel-lucent.com:", "Nokia"), ("http://www.huawei.com/netconf/", "Huawei"), ("urn:huawei", "Huawei"),
    ("http://www.ciena.com/", "Ciena"), ("urn:ciena", "Ciena"), ("http://www.extremenetworks.com/", "Extreme"),
    ("urn:dell", "Dell"), ("http://www.hpe.com/", "HPE"), ("urn:hpe", "HPE"), ("http://www.h3c.com/", "H3C"),
    ("urn:ruijie", "Ruijie"), ("http://www.zte.com.cn/", "ZTE"), ("urn:6wind", "6WIND"),
    ("http://tail-f.com/ns/", "Cisco (Tail-f ConfD)"), ("http://netopeer.cesnet.cz/", "CESNET (Netopeer2)"),
    ("urn:sysrepo", "CESNET (Netopeer2)"),
    ("http://yuma123.org/ns/", "yuma123 (netconfd)"), ("http://netconfcentral.org/ns/", "yuma123 (netconfd)"),
)


def vendor_of(namespaces: set[str]) -> str:
    """The maker whose modules a NETCONF server lists most ("" when it lists only standard ones)."""
    counts: dict[str, int] = {}
    for ns in namespaces:
        for prefix, vendor in VENDOR_NAMESPACES:
            if ns.startswith(prefix):
                counts[vendor] = counts.get(vendor, 0) + 1
                break
    return max(sorted(counts), key=lambda v: counts[v]) if counts else ""


# ---- SNMP ---------------------------------------------------------------------------------------------


async def _snmp(ctx: CollectorContext, facts: wire.DeviceFacts) -> None:
    from swtel.agent.collectors import polling, snmp
    from swtel.agent.collectors import snmp_mibs as mib

    poller = await snmp.connect(ctx.device, ctx.credential, snmp.SnmpOptions.for_device(ctx.device))
    system = await poller.get_many([mib.SYS_DESCR, mib.SYS_OBJECT_ID, mib.SYS_NAME, mib.SYS_UPTIME])
    descr = mib.text(system.get(mib.SYS_DESCR))
    object_id = mib.text(system.get(mib.SYS_OBJECT_ID)).lstrip(".")
    uptime = mib.num(system.get(mib.SYS_UPTIME))
    values: dict[str, Any] = {"hostname": mib.text(system.get(mib.SYS_NAME)), "vendor": mib.vendor_of(object_id),
                              "os_version": descr.splitlines()[0][:200] if descr else "",
                              "uptime_s": None if uptime is None else uptime // 100,
                              "models": [object_id] if object_id else []}
    try:
        fields = {"model": mib.ENT_PHYSICAL_MODEL, "serial": mib.ENT_PHYSICAL_SERIAL, "vendor": mib.ENT_PHYSICAL_MFG,
                  "os_version": mib.ENT_PHYSICAL_SOFTWARE}
        classes = await poller.walk(mib.ENT_PHYSICAL_CLASS)
        if classes:
            values.update(mib.chassis(classes, {k: await poller.walk(col) for k, col in fields.items()}))
    except (polling.DeviceError, TimeoutError) as e:
        facts.errors.append(f"ENTITY-MIB: {e or 'no answer in time'}"[:200])
    _set(facts, values)
    try:
        cols = {c: await poller.walk(c) for c in (mib.IF_NAME, mib.IF_DESCR, mib.IF_ALIAS, mib.IF_HIGH_SPEED,
                                                  mib.IF_SPEED, mib.IF_OPER_STATUS)}
        names = mib.interface_names(cols[mib.IF_NAME], cols[mib.IF_DESCR])
        facts.interfaces = [
            wire.InterfaceFact(name, description=mib.text(cols[mib.IF_ALIAS].get(idx)),
                               speed_bps=mib.speed_bps(cols[mib.IF_HIGH_SPEED], cols[mib.IF_SPEED], idx),
                               oper_status=mib.OPER_STATUS.get(mib.num(cols[mib.IF_OPER_STATUS].get(idx)) or 0, ""))
            for idx, name in sorted(names.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)]
    except (polling.DeviceError, TimeoutError) as e:
        facts.errors.append(f"IF-MIB: {e or 'no answer in time'}"[:200])
