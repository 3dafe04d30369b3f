"""The device inventory and the views of presence and leases, all in NATS KV.

Used by the CLI (``swtel device …``) and the hub's API alike, so both validate and write the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any, get_args

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from . import naming, wire
from .errors import AlreadyExists, Conflict, InvalidInput, NotFound, UserError

PROTOCOLS: tuple[str, ...] = get_args(wire.Protocol)
PLATFORMS: tuple[str, ...] = get_args(wire.Platform)
DEFAULT_PORTS = {"gnmi": 9339, "ssh": 22, "netconf": 830, "snmp": 161}
DEFAULT_INTERVAL_S = 10.0

# What a device gives without --path: interface counters and state, and the system health readings.
DEFAULT_PATHS = {
    "interfaces": ["/interfaces/interface/state/counters", "/interfaces/interface/state/oper-status"],
    "system": [
        "/system/cpus/cpu/state/total/instant",
        "/system/memory/state",
        "/components/component/state/temperature/instant",
    ],
}

_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, what: str = "interval") -> float:
    """``"10s"``, ``"500ms"``, ``"5m"``, ``"1h"`` or plain seconds → seconds (> 0)."""
    m = _DURATION_RE.match(str(text))
    if not m:
        raise InvalidInput(f"{what} {text!r} is not a duration like 10s, 500ms, 5m or 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not 0.1 <= seconds <= 86400:
        raise InvalidInput(f"{what} {text!r} must be between 100ms and 24h")
    return seconds


def parse_tags(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise InvalidInput(f"tag {item!r} is not key=value")
        out[k.strip()] = v.strip()
    return out


def check_address(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    if not _HOST_RE.match(address) or address.replace(".", "").isdigit():
        raise InvalidInput(f"address {address!r} is neither an IP address nor a valid host name", "address")
    return address


def _field(field: str, check: Callable[..., Any], *args: Any) -> Any:
    """Run a check and name the field in the error it raises."""
    try:
        return check(*args)
    except InvalidInput as e:
        e.field = e.field or field
        raise


def make_device(
    name: str,
    address: str,
    protocol: str,
    *,
    port: int | None = None,
    platform: str = "generic",
    credential: str | None = None,
    tags: dict[str, str] | None = None,
    interval: str | float | None = None,
    paths: list[str] | None = None,
    pinned: str | None = None,
    tls: str = "off",
) -> wire.Device:
    """Validate user input and build a :class:`wire.Device`; every problem is an :class:`InvalidInput`."""
    _field("name", naming.check_name, name)
    address = check_address(address)
    if protocol not in PROTOCOLS:
        raise InvalidInput(f"protocol {protocol!r} is unknown; use one of {', '.join(PROTOCOLS)}", "protocol")
    if platform not in PLATFORMS:
        raise InvalidInput(f"platform {platform!r} is unknown; use one of {', '.join(PLATFORMS)}", "platform")
    port = DEFAULT_PORTS[protocol] if port is None else port
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"port {port!r} must be a number from 1 to 65535", "port")
    if credential is not None and not re.fullmatch(r"[A-Za-z0-9_.\-/]{1,128}", credential):
        raise InvalidInput(f"credential reference {credential!r} may use only letters, digits and _ . - /", "credential")
    if tls not in ("off", "on", "skip-verify"):
        raise InvalidInput(f"tls {tls!r} must be off, on or skip-verify", "tls")
    if pinned is not None:
        _field("pin", naming.check_name, pinned, "agent id")
    if interval in (None, ""):
        interval_s = DEFAULT_INTERVAL_S
    else:
        interval_s = _field("interval", parse_duration, str(interval))
    if paths:
        for p in paths:
            if not p.startswith("/") and ":" not in p:
                raise InvalidInput(f"path {p!r} must start with / (or an origin prefix such as openconfig:)", "paths")
        subs = [wire.Subscription(name="custom", paths=list(paths), interval_s=interval_s)]
    else:
        subs = [wire.Subscription(name=n, paths=list(p), interval_s=interval_s) for n, p in DEFAULT_PATHS.items()]
    return wire.Device(
        name=name,
        address=address,
        port=port,
        protocol=protocol,  # type: ignore[arg-type]
        platform=platform,  # type: ignore[arg-type]
        credential=credential,
        tags=dict(tags or {}),
        subscriptions=subs,
        pinned=pinned,
        tls=tls,  # type: ignore[arg-type]
    )


def edit_device(
    device: wire.Device,
    *,
    address: str | None = None,
    port: int | None = None,
    platform: str | None = None,
    credential: str | None = None,
    tls: str | None = None,
    interval: str | None = None,
    set_tags: dict[str, str] | None = None,
    drop_tags: Iterable[str] = (),
    paths: list[str] | None = None,
) -> wire.Device:
    """``device`` with the given fields changed, validated as :func:`make_device` validates a new one.

    ``interval`` applies to every subscription; ``paths`` replaces the subscriptions with one of those
    paths (at the new or the current interval). ``None`` leaves a field as it is.
    """
    tags = {k: v for k, v in device.tags.items() if k not in set(drop_tags)}
    tags.update(set_tags or {})
    subs = list(device.subscriptions)
    interval_s = _field("interval", parse_duration, interval) if interval not in (None, "") else None
    if paths:
        current = subs[0].interval_s if subs else DEFAULT_INTERVAL_S
        subs = [wire.Subscription(name="custom", paths=list(paths), interval_s=interval_s or current)]
    elif interval_s is not None:
        subs = [msgspec.structs.replace(s, interval_s=interval_s) for s in subs]
    paths_in = [p for s in subs for p in s.paths] if paths else None
    new = make_device(
        device.name,
        device.address if address is None else address,
        device.protocol,
        port=device.port if port is None else port,
        platform=device.platform if platform is None else platform,
        credential=device.credential if credential is None else (credential or None),
        tags=tags,
        interval=subs[0].interval_s if subs else None,
        paths=paths_in,
        pinned=device.pinned,
        tls=device.tls if tls is None else tls,
    )
    return msgspec.structs.replace(new, subscriptions=subs)  # keeps modes and names of existing subscriptions


def same_device(a: wire.Device, b: wire.Device) -> bool:
    """Equal in every field an operator sets (the encoding version ``v`` aside)."""
    return msgspec.structs.replace(a, v=0) == msgspec.structs.replace(b, v=0)


async def snapshot(kv: KeyValue) -> dict[str, KeyValue.Entry]:
    """Every live key of a bucket with its latest entry (one ordered consumer, not one get per key).

    The end of the initial values is taken from each entry's ``delta`` (messages still pending), not from
    nats-py's "initial values done" marker alone: that marker can be queued before values the server had
    already sent, which made a full bucket look empty now and then.
    """
    if (await kv.status()).values == 0:
        return {}
    watcher = await kv.watchall()  # deletes included: the last message may be a tombstone (delta 0)
    out: dict[str, KeyValue.Entry] = {}
    marker_seen = False
    try:
        while True:
            try:
                entry = await watcher.updates(timeout=0.5 if marker_seen else 10)
            except NatsTimeoutError:
                if marker_seen:  # the bucket emptied between status() and the watch
                    return out
                raise
            if entry is None:
                marker_seen = True
                continue
            if entry.value is not None and entry.operation is None:
                out[entry.key] = entry
            else:
                out.pop(entry.key, None)
            if entry.delta == 0:
                return out
    finally:
        await watcher.stop()


class Inventory:
    """Reads and writes ``swtel_devices`` and reads ``swtel_agents`` / ``swtel_leases``."""

    def __init__(self, devices: KeyValue, agents: KeyValue, leases: KeyValue) -> None:
        self.devices = devices
        self.agents = agents
        self.leases = leases

    @classmethod
    async def open(cls, js: JetStreamContext) -> Inventory:
        try:
            kvs = [await js.key_value(b) for b in (naming.BUCKET_DEVICES, naming.BUCKET_AGENTS, naming.BUCKET_LEASES)]
        except BucketNotFoundError:
            raise UserError("the switch-telemetry buckets do not exist on this NATS server: run `swtel nats init`") from None
        return cls(*kvs)

    # ---- devices -------------------------------------------------------------------------------------

    async def add(self, device: wire.Device) -> int:
        try:
            return await self.devices.create(naming.encode_name(device.name), wire.encode_kv(device))
        except KeyWrongLastSequenceError:
            raise AlreadyExists(f"device {device.name!r} already exists") from None

    async def get(self, name: str) -> tuple[wire.Device, int]:
        try:
            entry = await self.devices.get(naming.encode_name(name))
        except KeyNotFoundError:
            entry = None
        if entry is None or entry.value is None:
            raise NotFound(f"device {name!r} does not exist")
        return wire.device_decoder.decode(entry.value), entry.revision

    async def list(self) -> list[wire.Device]:
        entries = await snapshot(self.devices)
        return sorted((wire.device_decoder.decode(e.value) for e in entries.values()), key=lambda d: d.name)

    async def remove(self, name: str) -> None:
        _, rev = await self.get(name)
        try:
            await self.devices.delete(naming.encode_name(name), last=rev)
        except BadRequestError as e:  # stale `last` is a plain BadRequestError (err_code 10071)
            if getattr(e, "err_code", None) == 10071:
                raise Conflict(f"device {name!r} changed while removing it; try again") from None
            raise

    async def modify(self, name: str, change: Callable[[wire.Device], wire.Device], attempts: int = 5) -> wire.Device:
        return (await self.edit(name, change, attempts))[1]

    async def edit(
        self, name: str, change: Callable[[wire.Device], wire.Device], attempts: int = 5
    ) -> tuple[wire.Device, wire.Device, int]:
        """Read-modify-write with compare-and-set, retried when someone else wrote in between: ``change``
        is applied again to their newer device, so a concurrent writer's fields are never overwritten.
        Returns (the device as read, as written, its revision now)."""
        for _ in range(attempts):
            device, rev = await self.get(name)
            new = change(device)
            if same_device(new, device):
                return device, device, rev
            try:
                rev = await self.devices.update(naming.encode_name(name), wire.encode_kv(new), last=rev)
                return device, new, rev
            except KeyWrongLastSequenceError:
                continue
        raise Conflict(f"device {name!r} kept changing; gave up after {attempts} attempts")

    async def entries(self) -> dict[str, tuple[wire.Device, int]]:
        """Every device by name with its KV revision (the compare-and-set token for a later write)."""
        out: dict[str, tuple[wire.Device, int]] = {}
        for e in (await snapshot(self.devices)).values():
            d = wire.device_decoder.decode(e.value)
            out[d.name] = (d, e.revision)
        return out

    async def update_if(self, device: wire.Device, revision: int) -> int:
        """Replace a device still at ``revision``; :class:`Conflict` if someone wrote it since."""
        try:
            return await self.devices.update(naming.encode_name(device.name), wire.encode_kv(device), last=revision)
        except KeyWrongLastSequenceError:
            raise Conflict(f"device {device.name!r} changed since it was read (revision {revision})") from None

    async def remove_if(self, name: str, revision: int) -> None:
        """Delete a device still at ``revision``; :class:`Conflict` if someone wrote it since."""
        try:
            await self.devices.delete(naming.encode_name(name), last=revision)
        except (BadRequestError, KeyWrongLastSequenceError) as e:
            if isinstance(e, KeyWrongLastSequenceError) or getattr(e, "err_code", None) == 10071:
                raise Conflict(f"device {name!r} changed since it was read (revision {revision})") from None
            raise

    async def pin(self, name: str, agent: str | None) -> wire.Device:
        if agent is not None:
            naming.check_name(agent, "agent id")
        return await self.modify(name, lambda d: msgspec.structs.replace(d, pinned=agent))

    async def add_many(
        self, devices: list[wire.Device], progress: Callable[[int], Any] | None = None, concurrency: int = 64
    ) -> None:
        """All or nothing: every name is checked first; if a write still fails, what was written is undone."""
        existing = set((await snapshot(self.devices)).keys())
        taken = [d.name for d in devices if naming.encode_name(d.name) in existing]
        if taken:
            more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
            raise AlreadyExists(f"device(s) already exist: {', '.join(taken[:5])}{more}; nothing was imported")
        written: list[str] = []
        sem = asyncio.Semaphore(concurrency)

        async def one(d: wire.Device) -> None:
            async with sem:
                await self.add(d)
                written.append(d.name)
                if progress:
                    progress(1)

        try:
            async with asyncio.TaskGroup() as tg:
                for d in devices:
                    tg.create_task(one(d))
        except BaseException as e:
            for name in written:
                try:
                    await self.devices.delete(naming.encode_name(name))
                except Exception:  # best effort: report what is left below
                    pass
            first = e.exceptions[0] if isinstance(e, BaseExceptionGroup) else e
            if isinstance(first, UserError):
                raise type(first)(f"{first}; nothing was imported") from None
            raise

    # ---- presence and leases -------------------------------------------------------------------------

    async def agent_list(self) -> list[wire.AgentPresence]:
        entries = await snapshot(self.agents)
        return sorted((wire.presence_decoder.decode(e.value) for e in entries.values()), key=lambda a: a.id)

    async def lease_list(self) -> list[tuple[wire.Lease, int]]:
        entries = await snapshot(self.leases)
        out = [(wire.lease_decoder.decode(e.value), e.revision) for e in entries.values()]
        return sorted(out, key=lambda t: t[0].device)
