"""Wire models: every message and KV value switch-telemetry writes.

Schema-evolution rule (agents and hubs are upgraded one host at a time, so old and new versions must
read each other's messages):

1. A new field is appended at the end of its Struct and always has a default.
2. A field's type never changes and a field is never removed or renamed; stop writing it instead.
3. ``v`` is the major version of a message kind. It changes only for a break that rules 1-2 cannot
   express; a reader drops (and counts) messages whose ``v`` is newer than it understands.
4. Unknown fields are ignored by readers (msgspec's default), so a newer writer never breaks an older reader.

Telemetry (the hot path) is MessagePack; :class:`Sample` is array-like to keep batches small. KV values
(devices, presence, leases) are JSON so that ``nats kv get`` stays readable for an operator.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Protocol = Literal["gnmi", "ssh", "netconf", "snmp"]
Platform = Literal["eos", "nxos", "junos", "iosxr", "srl", "generic", "ios", "iosxe"]  # ios, iosxe: added in issue 14
SubMode = Literal["sample", "on_change", "target_defined", "poll", "once"]
Value = bool | int | float | str | None

TELEMETRY_VERSION = 1
EVENT_VERSION = 1
CONFIG_VERSION = 1
FACTS_VERSION = 1
KV_VERSION = 1


# ---- inventory, presence and leases (KV values, JSON) -------------------------------------------------


class Subscription(msgspec.Struct, frozen=True, omit_defaults=True):
    """What to collect from a device: gNMI paths (or the CLI/NETCONF equivalents), a mode and an interval."""

    name: str
    paths: list[str]
    mode: SubMode = "sample"
    interval_s: float = 10.0


class Device(msgspec.Struct, omit_defaults=True):
    """``swtel_devices/<device>``: one switch. Holds a credential *reference*, never a secret."""

    name: str
    address: str
    port: int
    protocol: Protocol
    platform: Platform = "generic"
    credential: str | None = None
    tags: dict[str, str] = {}
    subscriptions: list[Subscription] = []
    pinned: str | None = None
    tls: Literal["off", "on", "skip-verify"] = "off"
    v: int = KV_VERSION


class AgentPresence(msgspec.Struct, omit_defaults=True):
    """``swtel_agents/<agent>``: rewritten every heartbeat; the bucket's max age expires a silent agent."""

    id: str
    incarnation: str
    host: str
    version: str
    capacity: int
    tags: dict[str, str] = {}
    devices: int = 0
    draining: bool = False
    started_ns: int = 0
    v: int = KV_VERSION


class Lease(msgspec.Struct, omit_defaults=True):
    """``swtel_leases/<device>``: who collects a device. The KV revision of this entry is the fencing token."""

    device: str
    agent: str
    incarnation: str
    acquired_ns: int = 0
    v: int = KV_VERSION


class FleetLeader(msgspec.Struct, omit_defaults=True):
    """``swtel_hubs/fleet-work``: the hub that runs fleet work (maintenance, alerting). Rewritten every
    heartbeat; the bucket's max age expires a silent leader. The entry's revision is the fencing token."""

    hub: str
    incarnation: str
    host: str = ""
    since_ns: int = 0
    v: int = KV_VERSION


# ---- messages (MessagePack) ---------------------------------------------------------------------------


class Sample(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """One reading. ``path`` is gNMI-style with keys: ``/interfaces/interface[name=Ethernet1]/state/counters/in-octets``.
    ``gc=False``: its fields are scalars, so it is never part of a cycle; untracked, the hundreds made per
    notification do not trigger the cyclic GC (same wire format)."""

    path: str
    value: Value
    ts: int  # nanoseconds since the epoch, as the device reported it where it did


class TelemetryBatch(msgspec.Struct, tag="telemetry", omit_defaults=True):
    """One device update on ``swtel.telemetry.<device>.<subscription>``."""

    device: str
    agent: str
    token: int  # lease revision (fencing token)
    seq: int  # per (device, token), starts at 1
    subscription: str
    samples: list[Sample]
    v: int = TELEMETRY_VERSION


EventKind = Literal[
    "session_up", "session_down", "auth_failed", "timeout", "error", "lease_acquired", "lease_released",
    "device_down", "device_up",  # hysteresis: down after N consecutive failed attempts, up at the next success
    "subscription_down", "subscription_up",  # one subscription failed / delivers again (once per change)
]


class Event(msgspec.Struct, tag="event", omit_defaults=True):
    """Something that happened to a device, on ``swtel.event.<device>.<kind>``."""

    device: str
    agent: str
    kind: str
    ts: int
    detail: str = ""
    v: int = EVENT_VERSION


class ConfigBackup(msgspec.Struct, tag="config", omit_defaults=True):
    """A device's running configuration, on ``swtel.config.<device>``."""

    device: str
    agent: str
    token: int
    ts: int
    format: str
    text: str
    v: int = CONFIG_VERSION


class InterfaceFact(msgspec.Struct, omit_defaults=True):
    """One interface found by discovery; fields the device did not answer cheaply stay empty."""

    name: str
    description: str = ""
    speed_bps: int = 0
    oper_status: str = ""


class DeviceFacts(msgspec.Struct, tag="facts", omit_defaults=True):
    """What discovery learnt about a device, on ``swtel.event.<device>.facts`` (JetStream, SWTEL_EVENTS).

    Empty strings, ``None`` and empty lists mean "not learnt" (the protocol does not tell it, or the query
    failed: ``errors`` says which)."""

    device: str
    agent: str
    token: int
    ts: int
    protocol: str
    vendor: str = ""
    model: str = ""
    os_version: str = ""
    serial: str = ""
    hostname: str = ""
    uptime_s: int | None = None
    gnmi_version: str = ""
    encodings: list[str] = []
    models: list[str] = []  # gNMI supported models (name@version) or NETCONF capabilities
    interfaces: list[InterfaceFact] = []
    errors: list[str] = []
    v: int = FACTS_VERSION


Message = TelemetryBatch | Event | ConfigBackup | DeviceFacts

# Built once and reused (msgspec's own advice): decoders are typed, so a malformed message raises
# msgspec.DecodeError / ValidationError, which every subscriber counts and drops per message.
msgpack_encoder = msgspec.msgpack.Encoder()
message_decoder = msgspec.msgpack.Decoder(Message)
batch_decoder = msgspec.msgpack.Decoder(TelemetryBatch)
json_encoder = msgspec.json.Encoder()
device_decoder = msgspec.json.Decoder(Device)
presence_decoder = msgspec.json.Decoder(AgentPresence)
lease_decoder = msgspec.json.Decoder(Lease)
leader_decoder = msgspec.json.Decoder(FleetLeader)


# ---- validation at decode (what PostgreSQL would refuse, caught with a clear reason) --------------------

INT64_MAX = 2**63 - 1
MAX_PATH_BYTES = 1024  # a series name lives in a btree index (device, name); PostgreSQL caps index rows near 2.7 kB
MAX_SUBSCRIPTION_BYTES = 256


def problems(b: TelemetryBatch) -> tuple[str, str] | None:
    """Why a decoded batch cannot be stored as a whole, as (reason, detail), or None.

    Checked: device and agent are valid names; token and seq are in 1 … 2^63-1 (PostgreSQL bigint);
    no NUL character in the device, agent, subscription or any path (PostgreSQL text cannot hold NUL);
    paths of at most ``MAX_PATH_BYTES``. (Sample timestamps need no check here: the hub drops samples
    outside its retention window as ``out_of_range`` before they reach the database.) NUL inside a string *value*
    is not a reason: it is removed at storage (docs/STORAGE.md). Sample-level limits (string size,
    samples per batch, series per device) are settings, applied by the hub per sample."""
    from .errors import InvalidInput
    from .naming import check_name

    for what, name in (("device", b.device), ("agent", b.agent)):
        if "\x00" in name:
            return "nul_byte", f"NUL character in the {what} name"
        try:
            check_name(name, what)
        except InvalidInput as e:
            return "bad_name", str(e)
    if "\x00" in b.subscription:
        return "nul_byte", "NUL character in the subscription name"
    if len(b.subscription.encode()) > MAX_SUBSCRIPTION_BYTES:
        return "too_long", f"subscription name longer than {MAX_SUBSCRIPTION_BYTES} bytes"
    for what, n in (("token", b.token), ("seq", b.seq)):
        if not 0 < n <= INT64_MAX:
            return "int_range", f"{what} {n} is outside 1 … 2^63-1"
    paths = [smp.path for smp in b.samples]  # the hot path: one join and one scan, not a check per sample
    if "\x00" in "".join(paths):
        i = next(i for i, p in enumerate(paths) if "\x00" in p)
        return "nul_byte", f"NUL character in the path of sample {i}: {paths[i][:80]!r}"
    if paths and len(max(paths, key=len)) > MAX_PATH_BYTES // 4:
        for i, p in enumerate(paths):
            if len(p.encode()) > MAX_PATH_BYTES:
                return "too_long", f"path of sample {i} longer than {MAX_PATH_BYTES} bytes"
    return None


def encode(msg: Message) -> bytes:
    return msgpack_encoder.encode(msg)


def encode_kv(value: Device | AgentPresence | Lease | FleetLeader) -> bytes:
    return json_encoder.encode(value)
