"""The agent's heartbeat in ``swtel_agents/<agent>`` and the self-fencing deadline it earns.

One put per heartbeat, whatever the number of devices held. The server expires the entry ``presence_ttl_s``
after the last write *it* received; this side cannot read that clock, so it keeps its own monotonic
deadline measured from *before* the last successful write was sent, minus a margin. When the deadline
passes without a fresh success, the agent must stop every slot (see ``Agent._fence``): by then nobody can
have taken its devices yet, because others wait for the server to expire the presence.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from importlib.metadata import PackageNotFoundError, version

from nats.js.kv import KeyValue

from swtel.shared import naming, wire
from swtel.shared.settings import Settings

log = logging.getLogger("swtel.agent.presence")


def _version() -> str:
    try:
        return version("switch-telemetry")
    except PackageNotFoundError:
        return "0+unknown"


def new_incarnation() -> str:
    return secrets.token_hex(6)


class Presence:
    def __init__(self, kv: KeyValue, settings: Settings, agent_id: str) -> None:
        self.kv = kv
        self.settings = settings
        self.agent_id = agent_id
        self.key = naming.encode_name(agent_id)
        self.incarnation = new_incarnation()
        self.started_ns = time.time_ns()
        self.draining = False
        self.devices = 0
        self.deadline = 0.0  # monotonic; acting on claims is allowed only before it
        self.writes = 0
        self.failures = 0
        self.renewed = asyncio.Event()  # set on every successful write (wakes the fence monitor)
        self.ttl = settings.presence_ttl_s  # lowered to the bucket's max age if that is shorter

    def valid(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.deadline

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def reincarnate(self) -> None:
        old, self.incarnation = self.incarnation, new_incarnation()
        self.started_ns = time.time_ns()
        log.warning("new incarnation agent=%s old=%s new=%s", self.agent_id, old, self.incarnation)

    def value(self) -> bytes:
        s = self.settings
        return wire.encode_kv(
            wire.AgentPresence(
                id=self.agent_id,
                incarnation=self.incarnation,
                host=socket.gethostname(),
                version=_version(),
                capacity=s.agent_capacity,
                tags=dict(s.agent_tags),
                devices=self.devices,
                draining=self.draining,
                started_ns=self.started_ns,
            )
        )

    async def beat(self) -> bool:
        """One presence write; on success the fencing deadline moves to (send time + TTL − margin)."""
        sent = time.monotonic()
        incarnation = self.incarnation
        try:
            # Never wait past the point where the write could no longer help.
            await asyncio.wait_for(self.kv.put(self.key, self.value()), max(0.2, self.ttl - self.settings.fence_margin_s))
        except Exception as e:  # timeouts, no responders, disconnects: all mean "not renewed"
            self.failures += 1
            log.debug("presence write failed: %r", e)
            return False
        self.writes += 1
        if incarnation == self.incarnation:  # a write of a superseded incarnation earns nothing
            self.deadline = max(self.deadline, sent + self.ttl - self.settings.fence_margin_s)
            self.renewed.set()
        return True

    async def remove(self) -> None:
        """Graceful stop: others see the agent leave at once instead of after the TTL."""
        try:
            await asyncio.wait_for(self.kv.delete(self.key), 2.0)
        except Exception as e:
            log.warning("could not delete presence (it expires by itself): %r", e)
