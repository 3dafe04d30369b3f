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

Protocol = Literal["gnmi", "ssh", "netconf"]
Platform = Literal["eos", "nxos", "junos", "iosxr", "srl", "generic"]
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


def encode(msg: Message) -> bytes:
    return msgpack_encoder.encode(msg)


def encode_kv(value: Device | AgentPresence | Lease | FleetLeader) -> bytes:
    return json_encoder.encode(value)
