"""SNMP MIB objects → the project's normalised OpenConfig paths, as pure functions (no I/O).

The collector (:mod:`.snmp`) walks columns and hands the rows here; everything that decides a value —
which table answers, how 32-bit counters wrap, how a sensor reading is scaled — lives in this module so
it is tested without a device.

Sources, in order of preference:
- interfaces: IF-MIB ``ifXTable`` 64-bit ``ifHC*`` counters; a device without them (SNMPv1-era agents)
  falls back to the 32-bit ``ifTable`` counters, unwrapped by :class:`Unwrapper`. Errors and discards
  exist only as 32-bit ``ifTable`` columns, so they are always unwrapped. Names are ``ifName``, else
  ``ifDescr``; ``ifOperStatus``, ``ifAlias`` (description) and ``ifHighSpeed`` (Mb/s) as well.
- CPU: HOST-RESOURCES ``hrProcessorLoad`` (mean over processors), else CISCO-PROCESS-MIB
  ``cpmCPUTotal1minRev`` (mean over CPUs), else UCD-SNMP-MIB ``100 - ssCpuIdle`` (Net-SNMP based agents,
  such as Arista EOS's).
- memory: HOST-RESOURCES ``hrStorage`` row of type ``hrStorageRam``, else CISCO-PROCESS-MIB
  ``cpmCPUMemoryUsed``/``Free`` (KiB), else UCD-SNMP-MIB ``memTotalReal``/``memAvailReal`` (KiB).
- temperature: ENTITY-SENSOR-MIB rows of type celsius, named by ENTITY-MIB ``entPhysicalName``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from swtel.shared import wire

from . import paths

# ---- OIDs ---------------------------------------------------------------------------------------------

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1"
IF_DESCR = f"{IF_TABLE}.2"
IF_SPEED = f"{IF_TABLE}.5"
IF_OPER_STATUS = f"{IF_TABLE}.8"
IF_NAME = f"{IF_X_TABLE}.1"
IF_HIGH_SPEED = f"{IF_X_TABLE}.15"
IF_ALIAS = f"{IF_X_TABLE}.18"

# OpenConfig counter leaf → (64-bit ifXTable column, 32-bit column); None: no such column
COUNTER_COLUMNS: dict[str, tuple[str | None, str]] = {
    "in-octets": (f"{IF_X_TABLE}.6", f"{IF_TABLE}.10"),
    "in-unicast-pkts": (f"{IF_X_TABLE}.7", f"{IF_TABLE}.11"),
    "in-multicast-pkts": (f"{IF_X_TABLE}.8", f"{IF_X_TABLE}.2"),
    "out-octets": (f"{IF_X_TABLE}.10", f"{IF_TABLE}.16"),
    "out-unicast-pkts": (f"{IF_X_TABLE}.11", f"{IF_TABLE}.17"),
    "out-multicast-pkts": (f"{IF_X_TABLE}.12", f"{IF_X_TABLE}.4"),
    "in-discards": (None, f"{IF_TABLE}.13"),
    "in-errors": (None, f"{IF_TABLE}.14"),
    "out-discards": (None, f"{IF_TABLE}.19"),
    "out-errors": (None, f"{IF_TABLE}.20"),
}
HC_PROBE = COUNTER_COLUMNS["in-octets"][0]  # a device that has ifHCInOctets has the HC columns

OPER_STATUS = {1: "UP", 2: "DOWN", 3: "TESTING", 4: "UNKNOWN", 5: "DORMANT", 6: "NOT_PRESENT", 7: "LOWER_LAYER_DOWN"}

HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE = "1.3.6.1.2.1.25.2.3.1"
HR_STORAGE_TYPE = f"{HR_STORAGE}.2"
HR_STORAGE_UNITS = f"{HR_STORAGE}.4"
HR_STORAGE_SIZE = f"{HR_STORAGE}.5"
HR_STORAGE_USED = f"{HR_STORAGE}.6"
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"

CISCO_CPU_1MIN = "1.3.6.1.4.1.9.9.109.1.1.1.1.7"  # cpmCPUTotal1minRev, percent
CISCO_MEM_USED = "1.3.6.1.4.1.9.9.109.1.1.1.1.12"  # cpmCPUMemoryUsed, KiB
CISCO_MEM_FREE = "1.3.6.1.4.1.9.9.109.1.1.1.1.13"  # cpmCPUMemoryFree, KiB
UCD_CPU_IDLE = "1.3.6.1.4.1.2021.11.11.0"  # ssCpuIdle, percent
UCD_MEM_TOTAL = "1.3.6.1.4.1.2021.4.5.0"  # memTotalReal, KiB
UCD_MEM_AVAIL = "1.3.6.1.4.1.2021.4.6.0"  # memAvailReal, KiB

ENT_PHYSICAL_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
ENT_PHYSICAL_DESCR = "1.3.6.1.2.1.47.1.1.1.1.2"
ENT_PHYSICAL_CLASS = "1.3.6.1.2.1.47.1.1.1.1.5"
ENT_PHYSICAL_MFG = "1.3.6.1.2.1.47.1.1.1.1.12"
ENT_PHYSICAL_SERIAL = "1.3.6.1.2.1.47.1.1.1.1.11"
ENT_PHYSICAL_MODEL = "1.3.6.1.2.1.47.1.1.1.1.13"
ENT_PHYSICAL_SOFTWARE = "1.3.6.1.2.1.47.1.1.1.1.10"
ENT_CLASS_CHASSIS = 3
ENT_SENSOR = "1.3.6.1.2.1.99.1.1.1"
ENT_SENSOR_TYPE = f"{ENT_SENSOR}.1"
ENT_SENSOR_SCALE = f"{ENT_SENSOR}.2"
ENT_SENSOR_PRECISION = f"{ENT_SENSOR}.3"
ENT_SENSOR_VALUE = f"{ENT_SENSOR}.4"
SENSOR_CELSIUS = 8
# EntitySensorDataScale (RFC 3433) → power of ten
SENSOR_SCALE = {1: -24, 2: -21, 3: -18, 4: -15, 5: -12, 6: -9, 7: -6, 8: -3, 9: 0, 10: 3, 11: 6, 12: 9, 13: 12,
                14: 18, 15: 15, 16: 21, 17: 24}

Column = Mapping[str, object]  # row index (the OID suffix after the column) → value


def column(rows: list[tuple[str, object]], col: str) -> dict[str, object]:
    """A walk's ``(oid, value)`` pairs under ``col`` as ``{index: value}`` (index = the OID suffix)."""
    prefix = col + "."
    return {oid[len(prefix):]: v for oid, v in rows if oid.startswith(prefix)}


def text(v: object) -> str:
    """An OCTET STRING as text (devices send Latin-1 or UTF-8; undecodable bytes never fail a poll)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace").rstrip("\x00").strip()
    return "" if v is None else str(v).strip()


def num(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


# ---- 32-bit counters ----------------------------------------------------------------------------------

WRAP32 = 1 << 32
MIN_FRAME_BYTES = 64  # the smallest Ethernet frame bounds how many packets a link can carry


def unwrap32(last_raw: int, last_total: int, raw: int, *, max_delta: float | None = None) -> int:
    """The running total of a 32-bit counter after reading ``raw``.

    A raw value below the last one wrapped once at 2**32, unless that wrap would imply more than
    ``max_delta`` (what the link could carry since the last reading): then the counter was cleared or
    the device restarted, and the total starts again from ``raw`` (consumers see the drop as a reset)."""
    if raw >= last_raw:
        return last_total + (raw - last_raw)
    wrapped = raw + WRAP32 - last_raw
    if max_delta is not None and wrapped > max_delta:
        return raw
    return last_total + wrapped


@dataclass
class Unwrapper:
    """Per-device state that turns 32-bit counters into totals that only grow (until a real reset).

    Each counter remembers its last raw value, its total and the sysUpTime of that reading, so the time a
    wrap had is the counter's own (subscriptions that poll the device in between do not shorten it).
    ``restart`` forgets everything (sysUpTime went backwards: the device rebooted and its counters started
    over). A counter's first reading is published as it is."""

    last: dict[tuple[str, str], tuple[int, int, int | None]] = field(default_factory=dict)

    def restart(self) -> None:
        self.last.clear()

    def total(self, ifindex: str, leaf: str, raw: int, *, uptime_cs: int | None = None, speed_bps: int = 0,
              bound: float | None = None) -> int:
        """The running total after reading ``raw``. The wrap bound is ``bound`` when given, else what a
        link of ``speed_bps`` carries in the sysUpTime since this counter's previous reading."""
        key = (ifindex, leaf)
        prev = self.last.get(key)
        if prev is None:
            total = raw
        else:
            if bound is None and uptime_cs is not None and prev[2] is not None and uptime_cs >= prev[2]:
                bound = max_delta(leaf, speed_bps, (uptime_cs - prev[2]) / 100)
            total = unwrap32(prev[0], prev[1], raw, max_delta=bound)
        self.last[key] = (raw, total, uptime_cs)
        return total


def max_delta(leaf: str, speed_bps: int, elapsed_s: float) -> float | None:
    """What a link of ``speed_bps`` can count in ``elapsed_s`` (+10 %), or None when unknown."""
    if speed_bps <= 0 or elapsed_s <= 0:
        return None
    octets = speed_bps / 8 * elapsed_s * 1.1
    return octets if leaf.endswith("octets") else octets / MIN_FRAME_BYTES


# ---- interfaces ---------------------------------------------------------------------------------------


def interface_names(names: Column, descrs: Column) -> dict[str, str]:
    """ifIndex → name: ``ifName`` where the device has it, else ``ifDescr``."""
    out = {i: text(v) for i, v in descrs.items() if text(v)}
    out.update({i: text(v) for i, v in names.items() if text(v)})
    return out


def speed_bps(high_speed: Column, speed: Column, ifindex: str) -> int:
    """Interface speed in b/s: ``ifHighSpeed`` (Mb/s) when set, else ``ifSpeed`` (b/s, caps at 4.29 G)."""
    hs = num(high_speed.get(ifindex))
    if hs:
        return hs * 1_000_000
    return num(speed.get(ifindex)) or 0


PORT_SPEEDS = {10: "SPEED_10MB", 100: "SPEED_100MB", 1000: "SPEED_1GB", 2500: "SPEED_2500MB", 5000: "SPEED_5GB",
               10000: "SPEED_10GB", 25000: "SPEED_25GB", 40000: "SPEED_40GB", 50000: "SPEED_50GB",
               100000: "SPEED_100GB", 200000: "SPEED_200GB", 400000: "SPEED_400GB", 800000: "SPEED_800GB"}


def interface_samples(cols: Mapping[str, Column], hc: bool, unwrap: Unwrapper, uptime_cs: int | None,
                      ts: int) -> list[wire.Sample]:
    """Samples for every named interface from the walked columns (column OID → rows).

    ``hc``: the device has the 64-bit columns (then only errors and discards are 32-bit). ``uptime_cs``:
    the device's sysUpTime at this poll, to tell a wrap from a clear."""
    empty: dict[str, object] = {}
    names = interface_names(cols.get(IF_NAME, empty), cols.get(IF_DESCR, empty))
    oper = cols.get(IF_OPER_STATUS, empty)
    alias = cols.get(IF_ALIAS, empty)
    high, low = cols.get(IF_HIGH_SPEED, empty), cols.get(IF_SPEED, empty)
    out: list[wire.Sample] = []
    for idx, name in names.items():
        st = num(oper.get(idx))
        if st is not None:
            out.append(wire.Sample(paths.oper_status(name), OPER_STATUS.get(st, "UNKNOWN"), ts))
        if idx in alias:
            out.append(wire.Sample(f"/interfaces/interface[name={name}]/state/description", text(alias[idx]), ts))
        hs = num(high.get(idx))
        if hs is not None:
            out.append(wire.Sample(f"/interfaces/interface[name={name}]/ethernet/state/negotiated-port-speed",
                                   PORT_SPEEDS.get(hs, "SPEED_UNKNOWN"), ts))
        bps = speed_bps(high, low, idx)
        for leaf, (col64, col32) in COUNTER_COLUMNS.items():
            if hc and col64 is not None:
                v = num(cols.get(col64, empty).get(idx))
                if v is not None:
                    out.append(wire.Sample(paths.counter(name, leaf), v, ts))
                continue
            raw = num(cols.get(col32, empty).get(idx))
            if raw is not None:
                total = unwrap.total(idx, leaf, raw, uptime_cs=uptime_cs, speed_bps=bps)
                out.append(wire.Sample(paths.counter(name, leaf), total, ts))
    return out


DESCRIPTION = "/interfaces/interface/state/description"
PORT_SPEED = "/interfaces/interface/ethernet/state/negotiated-port-speed"


def optional_leaves(subscription_paths: list[str]) -> set[str]:
    """Which optional interface leaves (``description``, ``speed``) any of the paths asks for (for any
    interface: keys are ignored, the column is walked whole)."""
    match = paths.matcher([re.sub(r"\[[^\]]*\]", "", p) for p in subscription_paths])
    return {leaf for leaf, p in (("description", DESCRIPTION), ("speed", PORT_SPEED)) if match(p)}


def interface_columns(hc: bool, wants: set[str] | frozenset[str] = frozenset({"description", "speed"})) -> list[str]:
    """The columns one interface poll walks (ifDescr only when ifName is missing: see the poller).

    ``ifAlias`` and ``ifHighSpeed`` only when a subscription wants descriptions or speeds, except that a
    32-bit device always needs the speeds to tell a counter wrap from a clear."""
    counters = [c64 if hc and c64 is not None else c32 for c64, c32 in COUNTER_COLUMNS.values()]
    optional = ([IF_ALIAS] if "description" in wants else []) + ([IF_HIGH_SPEED] if "speed" in wants or not hc else [])
    return [IF_NAME, IF_OPER_STATUS, *optional] + ([] if hc else [IF_SPEED]) + counters


# ---- system -------------------------------------------------------------------------------------------


def mean_percent(loads: Column) -> int | None:
    vals = [v for v in (num(x) for x in loads.values()) if v is not None]
    return round(sum(vals) / len(vals)) if vals else None


def hr_memory(types: Column, units: Column, size: Column, used: Column) -> tuple[int, int] | None:
    """(physical, utilized) bytes from the hrStorage rows of type hrStorageRam (summed), or None."""
    total = util = 0
    found = False
    for idx, t in types.items():
        if str(t).lstrip(".") != HR_STORAGE_RAM:
            continue
        u, s, us = num(units.get(idx)), num(size.get(idx)), num(used.get(idx))
        if u is None or s is None or us is None:
            continue
        found = True
        total += u * s
        util += u * us
    return (total, util) if found else None


def sensor_celsius(value: int, scale: int, precision: int) -> float:
    """An entPhySensorValue as degrees: value × 10^scale / 10^precision (RFC 3433)."""
    return round(value * 10.0 ** SENSOR_SCALE.get(scale, 0) / 10.0 ** precision, 3)


def temperatures(types: Column, scales: Column, precisions: Column, values: Column,
                 names: Mapping[str, object]) -> list[tuple[str, float]]:
    """(component name, °C) for each celsius sensor; unnamed ones are called ``sensor<index>``."""
    out = []
    for idx, t in types.items():
        v = num(values.get(idx))
        if num(t) != SENSOR_CELSIUS or v is None:
            continue
        name = text(names.get(idx)) or f"sensor{idx}"
        out.append((name, sensor_celsius(v, num(scales.get(idx)) or 9, num(precisions.get(idx)) or 0)))
    return out


def system_samples(cpu: int | None, memory: tuple[int, int] | None, temps: list[tuple[str, float]],
                   ts: int) -> list[wire.Sample]:
    out = []
    if cpu is not None:
        out.append(wire.Sample(paths.CPU, cpu, ts))
    if memory is not None:
        out.append(wire.Sample(paths.MEM_PHYSICAL, memory[0], ts))
        out.append(wire.Sample(paths.MEM_UTILIZED, memory[1], ts))
    out += [wire.Sample(paths.temperature(name), c, ts) for name, c in temps]
    return out


# ---- discovery ----------------------------------------------------------------------------------------

VENDORS = {"9": "Cisco", "30065": "Arista", "2636": "Juniper", "6527": "Nokia", "8072": "Net-SNMP",
           "11": "HPE", "2011": "Huawei", "674": "Dell", "1991": "Brocade", "25506": "H3C"}


def vendor_of(sys_object_id: str) -> str:
    """The vendor named by sysObjectID's enterprise number (1.3.6.1.4.1.<n>…), or ''."""
    parts = sys_object_id.lstrip(".").split(".")
    if parts[:6] == ["1", "3", "6", "1", "4", "1"] and len(parts) > 6:
        return VENDORS.get(parts[6], "")
    return ""


def chassis(classes: Column, fields: Mapping[str, Column]) -> dict[str, str]:
    """Model, serial, maker and software of the chassis entity (entPhysicalClass chassis(3)), else of the
    first entity with a serial number. ``fields`` maps model/serial/vendor/os_version to columns."""
    serials = fields.get("serial", {})
    candidates = sorted(classes, key=lambda i: (num(classes[i]) != ENT_CLASS_CHASSIS, not text(serials.get(i)),
                                                int(i) if i.isdigit() else 0))
    if not candidates:
        candidates = sorted(serials, key=lambda i: int(i) if i.isdigit() else 0)
    for idx in candidates:
        row = {k: text(col.get(idx)) for k, col in fields.items()}
        if any(row.values()):
            return {k: v for k, v in row.items() if v}
    return {}
