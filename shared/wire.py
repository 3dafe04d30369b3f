"""Wire models: every message and KV value switch-telemetry writes.

Schema-evolution rule (agents and hubs are upgraded one host at a time, so old and new versions must
read each other's messages):

1. A new field is appended at the end of its Struct and always has a default.
2. A field's type never changes and a field is never removed or renamed; stop writing it instead.
3. ``v`` is the major version of a message kind. It changes only for a break that rules 1-2 cannot
   express; a reader drops (and counts) messages whose ``v`` is newer than it understands.
4. Unknown fields are ignored by readers (msgspec's default), so a newer writer never breaks an older reader.

Telemetry (the hot path) is MessagePack, as columns since v2 (:class:`TelemetryBatch`). KV values
(devices, presence, leases) are JSON so that ``nats kv get`` stays readable for an operator.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, groupby, repeat
from typing import Literal

import msgspec

from .errors import InvalidInput
from .naming import check_name

Protocol = Literal["gnmi", "ssh", "netconf", "snmp"]
Platform = Literal["eos", "nxos", "junos", "iosxr", "srl", "generic", "ios", "iosxe"]  # ios, iosxe: added in issue 14
SubMode = Literal["sample", "on_change", "target_defined", "poll", "once"]
Value = bool | int | float | str | None

TELEMETRY_VERSION = 2  # v1: samples as (path, value, ts) rows; v2: samples as columns (issue 20)
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
    """One reading, as v1 batches carry them (and as the polling collectors produce them).
    ``path`` is gNMI-style with keys: ``/interfaces/interface[name=Ethernet1]/state/counters/in-octets``.
    ``gc=False``: its fields are scalars, so it is never part of a cycle."""

    path: str
    value: Value
    ts: int  # nanoseconds since the epoch, as the device reported it where it did


class TelemetryBatch(msgspec.Struct, tag="telemetry", omit_defaults=True):
    """One device update on ``swtel.telemetry.<device>.<subscription>``.

    v2 carries its samples as columns: value ``values[i]`` is at path ``paths[index[i]]`` (``paths[i]``
    when ``index`` is empty, that is when no path repeats), and the first ``runs[0]`` values are stamped
    ``times[0]``, the next ``runs[1]`` ``times[1]``, and so on (one run per gNMI notification).
    v1 (older agents) carries ``samples``; a reader turns either into the columns with :func:`columnar`.

    Two details keep an old (v1) hub's refusal of a v2 batch clear, not a "malformed" message or a silent
    empty batch: a v2 writer still writes ``samples`` (empty: a v1 reader requires the field), and ``v``
    keeps its default of 1, so ``v=2`` always differs from the default and is written (``omit_defaults``
    leaves out a value equal to the default, which a v1 reader would take for v1)."""

    device: str
    agent: str
    token: int  # lease revision (fencing token)
    seq: int  # per (device, token), starts at 1
    subscription: str
    samples: list[Sample]  # v1; empty in v2
    v: int = 1  # never change this default: see above. Writers of v2 set it (see telemetry()).
    paths: list[str] = []  # v2: each path once (see index)
    index: list[int] = []  # v2: the path of each value, as a position in paths; empty when no path repeats
    values: list[Value] = []  # v2
    times: list[int] = []  # v2: nanoseconds since the epoch, as the device reported them where it did
    runs: list[int] = []  # v2: how many consecutive values carry each of ``times``


class Columns:
    """Samples as columns while a batch is gathered (agent side): ``paths[i]`` and ``values[i]`` per sample,
    ``times[k]`` for the ``runs[k]`` consecutive samples of run k. Collectors that make :class:`Sample`
    objects are converted once, by :meth:`of`."""

    __slots__ = ("paths", "values", "times", "runs")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.values: list[Value] = []
        self.times: list[int] = []
        self.runs: list[int] = []

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def of(cls, samples: list[Sample]) -> Columns:
        c = cls()
        c.paths = [s.path for s in samples]
        c.values = [s.value for s in samples]
        c.times, c.runs = _runs([s.ts for s in samples])
        return c

    def extend(self, other: Columns) -> None:
        self.paths += other.paths
        self.values += other.values
        if self.times and other.times and self.times[-1] == other.times[0]:  # the same notification, split
            self.runs[-1] += other.runs[0]
            self.times += other.times[1:]
            self.runs += other.runs[1:]
        else:
            self.times += other.times
            self.runs += other.runs

    def keep(self, keep: list[bool]) -> Columns:
        """The samples whose flag is true, as new columns."""
        out = Columns()
        i = 0
        for t, n in zip(self.times, self.runs):
            flags = keep[i : i + n]
            m = sum(flags)
            if m:
                out.paths += [p for p, k in zip(self.paths[i : i + n], flags) if k]
                out.values += [v for v, k in zip(self.values[i : i + n], flags) if k]
                out.times.append(t)
                out.runs.append(m)
            i += n
        return out

    def chunks(self, size: int) -> Iterator[Columns]:
        """At most ``size`` samples each, in order (a run split between two chunks is stamped in both)."""
        if 0 < len(self) <= size:
            yield self
            return
        starts = list(_starts(self.runs))
        for lo in range(0, len(self), size):
            hi = min(lo + size, len(self))
            c = Columns()
            c.paths, c.values = self.paths[lo:hi], self.values[lo:hi]
            for t, s, n in zip(self.times, starts, self.runs):
                a, b = max(s, lo), min(s + n, hi)
                if a < b:
                    c.times.append(t)
                    c.runs.append(b - a)
            yield c


def _runs(ts: list[int]) -> tuple[list[int], list[int]]:
    times, runs = [], []
    for t, g in groupby(ts):
        times.append(t)
        runs.append(len(list(g)))
    return times, runs


def _starts(runs: list[int]) -> Iterator[int]:
    i = 0
    for n in runs:
        yield i
        i += n


def telemetry(device: str, agent: str, token: int, seq: int, subscription: str, cols: Columns) -> TelemetryBatch:
    """A v2 batch of ``cols``: each path once, with an index only when a path repeats (two notifications of
    one leaf in one batch)."""
    b = TelemetryBatch(device=device, agent=agent, token=token, seq=seq, subscription=subscription, samples=[],
                       v=TELEMETRY_VERSION, paths=cols.paths, values=cols.values, times=cols.times, runs=cols.runs)
    if len(cols.runs) > 1 and len(set(cols.paths)) < len(cols.paths):
        pos: dict[str, int] = {}
        b.index = [pos.setdefault(p, len(pos)) for p in cols.paths]
        b.paths = list(pos)
    return b


def shape_problem(b: TelemetryBatch) -> str | None:
    """Why a batch's columns do not fit together, or None."""
    n = len(b.values)
    if b.index:
        if len(b.index) != n:
            return f"{len(b.index)} path indexes for {n} values"
        if min(b.index) < 0 or max(b.index) >= len(b.paths):
            return f"a path index outside the batch's {len(b.paths)} paths"
    elif len(b.paths) != n:
        return f"{len(b.paths)} paths for {n} values"
    if len(b.runs) != len(b.times):
        return f"{len(b.runs)} runs for {len(b.times)} timestamps"
    if b.runs and min(b.runs) < 1:
        return "a run of fewer than one value"
    if sum(b.runs) != n:
        return f"runs cover {sum(b.runs)} of {n} values"
    return None


def columnar(b: TelemetryBatch) -> TelemetryBatch:
    """Bring a decoded batch of either version to one form, in place: a path per value in ``paths`` (no
    ``index``), ``values``, ``times`` and ``runs``; v1 ``samples`` are moved into the columns (ahead of any
    columns the batch also has). Readers call it once after decoding, so everything downstream reads
    columns. Raises ValueError when the columns do not fit together (:func:`shape_problem`)."""
    problem = shape_problem(b)
    if problem is not None:
        raise ValueError(problem)
    if b.index:
        b.paths = [b.paths[i] for i in b.index]
        b.index = []
    if b.samples:
        ss = b.samples
        times, runs = _runs([s.ts for s in ss])
        b.paths = [s.path for s in ss] + b.paths
        b.values = [s.value for s in ss] + b.values
        b.times, b.runs = times + b.times, runs + b.runs
        b.samples = []
    return b


def stamps(b: TelemetryBatch | Columns) -> Iterator[int]:
    """The timestamp of each value of a :func:`columnar` batch (or of :class:`Columns`)."""
    return chain.from_iterable(map(repeat, b.times, b.runs))


def rows(b: TelemetryBatch | Columns) -> Iterator[tuple[str, Value, int]]:
    """(path, value, ts) of each sample of a decoded batch of either version (made :func:`columnar` first,
    which costs nothing more once it is) or of :class:`Columns`, in order."""
    if isinstance(b, TelemetryBatch):
        columnar(b)
    return zip(b.paths, b.values, stamps(b))


def samples_of(b: TelemetryBatch) -> list[Sample]:
    """The samples of a batch of either version as :class:`Sample` objects: for tests and tools, not the
    hot path (which reads the columns)."""
    return [Sample(p, v, t) for p, v, t in rows(b)]


def count(b: TelemetryBatch) -> int:
    """Samples in a decoded batch of either version."""
    return len(b.samples) + len(b.values)


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
    paths of at most ``MAX_PATH_BYTES``; v2 columns that fit together. (Sample timestamps need no check here: the hub drops samples
    outside its retention window as ``out_of_range`` before they reach the database.) NUL inside a string *value*
    is not a reason: it is removed at storage (docs/STORAGE.md). Sample-level limits (string size,
    samples per batch, series per device) are settings, applied by the hub per sample."""
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
    shape = shape_problem(b)
    if shape is not None:
        return "malformed", f"columns that do not fit together: {shape}"
    # the hot path: one join and one scan, not a check per sample (v2 paths are each there once)
    paths = [smp.path for smp in b.samples] + b.paths if b.samples else b.paths
    if "\x00" in "".join(paths):
        i = next(i for i, p in enumerate(paths) if "\x00" in p)
        return "nul_byte", f"NUL character in path {i}: {paths[i][:80]!r}"
    if paths and max(map(len, paths)) > MAX_PATH_BYTES // 4:
        for i, p in enumerate(paths):
            if len(p.encode()) > MAX_PATH_BYTES:
                return "too_long", f"path {i} longer than {MAX_PATH_BYTES} bytes"
    return None


def encode(msg: Message) -> bytes:
    return msgpack_encoder.encode(msg)


def encode_kv(value: Device | AgentPresence | Lease | FleetLeader) -> bytes:
    return json_encoder.encode(value)
