"""The fleet as the dashboard shows it: inventory, presence and leases watched in KV, plus a status per device.

Each bucket is followed with one KV watcher (current values, then live changes). A watcher that fails is
recreated with backoff (NATS-NOTES: a watcher can stall after a server restart; tight recreate loops pile
up consumers). Presence and lease entries can be deleted, purged or expire (server limit markers arrive
as PURGE), and a DEL may be followed by a PURGE for the same key: all of them mean "gone".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from nats.js.kv import KeyValue
from swtel.shared import naming, wire

from .cache import LiveCache

log = logging.getLogger("swtel.hub.live")

# Status of a device, in the words the fleet page uses.
COLLECTING, AUTH_FAILED, UNREACHABLE, UNASSIGNED, WAITING, DOWN = (
    "collecting", "auth failed", "unreachable", "unassigned", "waiting", "down")
STATUSES = (COLLECTING, AUTH_FAILED, UNREACHABLE, UNASSIGNED, WAITING, DOWN)
STALE_INTERVALS = 3  # no telemetry for this many collection intervals: unreachable


class FleetListener:
    def devices_changed(self, names: list[str]) -> None: ...

    def agents_changed(self) -> None: ...


class FleetState:
    def __init__(self, cache: LiveCache, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self.clock = clock
        self.devices: dict[str, wire.Device] = {}
        self.leases: dict[str, tuple[wire.Lease, int]] = {}
        self.agents: dict[str, tuple[wire.AgentPresence, float]] = {}  # presence, monotonic time last written
        self.listener = FleetListener()
        self.malformed = 0
        self.ready = {naming.BUCKET_DEVICES: asyncio.Event(), naming.BUCKET_AGENTS: asyncio.Event(),
                      naming.BUCKET_LEASES: asyncio.Event()}

    # ---- KV watching -------------------------------------------------------------------------------

    async def follow(self, kv: KeyValue, bucket: str) -> None:
        """Follow one bucket forever; recreate the watcher with backoff when it fails."""
        backoff = 0.5
        while True:
            try:
                watcher = await kv.watchall()
                try:
                    while True:
                        entry = await watcher.updates(timeout=None)
                        if entry is None:  # initial values done
                            self.ready[bucket].set()
                            continue
                        self.apply(bucket, entry.key, entry.value, entry.operation, entry.revision)
                        backoff = 0.5
                finally:
                    await watcher.stop()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a lost server or consumer: wait, then watch again from the current values
                log.warning("watching %s failed (%s); retrying in %.1fs", bucket, e or type(e).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def apply(self, bucket: str, key: str, value: bytes | None, operation: str | None, revision: int) -> None:
        gone = operation in ("DEL", "PURGE") or not value
        try:
            name = naming.decode_name(key)
        except ValueError:
            self.malformed += 1
            return
        try:
            if bucket == naming.BUCKET_DEVICES:
                if gone:
                    self.devices.pop(name, None)
                    self.cache.forget(name)
                else:
                    self.devices[name] = wire.device_decoder.decode(value)  # type: ignore[arg-type]
                self.listener.devices_changed([name])
            elif bucket == naming.BUCKET_LEASES:
                if gone:
                    self.leases.pop(name, None)
                else:
                    self.leases[name] = (wire.lease_decoder.decode(value), revision)  # type: ignore[arg-type]
                self.listener.devices_changed([name])
                self.listener.agents_changed()
            elif bucket == naming.BUCKET_AGENTS:
                if gone:
                    if self.agents.pop(name, None) is None:
                        return
                else:
                    self.agents[name] = (wire.presence_decoder.decode(value), self.clock())  # type: ignore[arg-type]
                self.listener.agents_changed()
                # devices held by an agent that vanished change status; their rows show it
                held = [d for d, (lease, _) in self.leases.items() if lease.agent == name]
                if held and gone:
                    self.listener.devices_changed(held)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.malformed += 1

    # ---- views -------------------------------------------------------------------------------------

    def status(self, name: str, now: float) -> str:
        held = self.leases.get(name)
        if held is None or held[0].agent not in self.agents:
            return UNASSIGNED
        live = self.cache.devices.get(name)
        if live is None:
            return WAITING
        # Hysteresis (docs/DISCOVERY.md): one failed attempt changes nothing here; the agent says
        # device_down after N in a row. A refused login is the likeliest cause worth naming.
        if live.down:
            return AUTH_FAILED if live.event == "auth_failed" else DOWN
        if live.last_mono == 0:
            return WAITING
        if now - live.last_mono > STALE_INTERVALS * self.interval(name):
            return UNREACHABLE
        return COLLECTING

    def interval(self, name: str) -> float:
        d = self.devices.get(name)
        return max((s.interval_s for s in d.subscriptions), default=10.0) if d else 10.0

    def row(self, name: str, now: float) -> dict[str, Any]:
        """One fleet-table row; ``last_ms`` is wall-clock ms of the last batch (0: never)."""
        d = self.devices.get(name)
        held = self.leases.get(name)
        live = self.cache.devices.get(name)
        return {
            "name": name,
            "status": self.status(name, now),
            "agent": held[0].agent if held else None,
            "address": d.address if d else "",
            "protocol": d.protocol if d else "",
            "platform": d.platform if d else "",
            "tags": d.tags if d else {},
            "last_ms": live.last_ms if live else 0,
            "sps": round(live.sps, 2) if live else 0.0,
            "event": live.event if live else "",
        }

    def agents_view(self, now: float) -> list[dict[str, Any]]:
        held: dict[str, int] = {}
        for lease, _ in self.leases.values():
            held[lease.agent] = held.get(lease.agent, 0) + 1
        out = []
        for agent_id, (p, seen) in sorted(self.agents.items()):
            out.append({"id": agent_id, "host": p.host, "version": p.version, "capacity": p.capacity,
                        "tags": p.tags, "draining": p.draining, "devices": held.get(agent_id, 0),
                        "reported_devices": p.devices, "incarnation": p.incarnation,
                        "heartbeat_age_s": round(max(0.0, now - seen), 2),
                        "load": round(held.get(agent_id, 0) / p.capacity, 4) if p.capacity else 0.0})
        return out

    def lease_map(self) -> dict[str, list[str]]:
        """agent id → sorted device names it holds (agents without presence included: orphans show)."""
        out: dict[str, list[str]] = {}
        for device, (lease, _) in self.leases.items():
            out.setdefault(lease.agent, []).append(device)
        for names in out.values():
            names.sort()
        return out
