"""The contract between the lease manager, a collector and the publisher.

A collector is an ``async`` function ``run(ctx)`` that collects one device until it is cancelled. The
lease manager starts it when the agent claims the device and cancels it (then waits, bounded) before the
lease is released or handed over, so two collectors never run for one device.

Rules every collector follows:
- It never raises because of the device: connection errors, wrong passwords, garbage and timeouts are
  reported through ``ctx.publish.event`` and ``ctx.stats`` and retried with jittered exponential backoff.
- Every network wait has a timeout; buffers are bounded.
- Samples are normalised: gNMI-style path with keys
  (``/interfaces/interface[name=Ethernet1]/state/counters/in-octets``), typed value, timestamp in ns.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from swtel.shared import wire


class Publish(Protocol):
    """Bound to one device and its fencing token by the agent."""

    async def batch(self, subscription: str, samples: list[wire.Sample]) -> None: ...

    async def event(self, kind: str, detail: str = "") -> None: ...

    async def config(self, format: str, text: str) -> bool: ...  # a config backup (jobs/backup.py)

    async def facts(self, facts: wire.DeviceFacts) -> bool: ...


@dataclass
class Credential:
    username: str
    password: str = field(repr=False)  # never in logs or reprs
    # TLS material for the device session (file paths); gNMI uses them when the device's tls is "on".
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # SNMP: a v2c community, or a v3 user (``username``) with auth/priv protocols and passphrases
    community: str | None = field(default=None, repr=False)
    auth_protocol: str = ""  # md5, sha (sha1), sha224, sha256, sha384, sha512
    auth_password: str = field(default="", repr=False)
    priv_protocol: str = ""  # des, aes (aes128), aes192, aes256
    priv_password: str = field(default="", repr=False)
    # SSH CLI: the secret for `enable` when a shell lands at an unprivileged prompt (`sw>`); never logged
    enable_secret: str | None = field(default=None, repr=False)


DOWN_AFTER = 3  # consecutive failed attempts before a device is reported down (setting device_down_after)


@dataclass
class DeviceStats:
    """Per-device collection statistics, shown by ``swtel lease list --json`` / the agent status request.

    ``status`` is the outcome of the latest attempt. ``down`` has hysteresis, as Suzieq's device status:
    it turns true only after ``down_after`` consecutive failed attempts (a connection, a login, a poll)
    and false again at the next success, so one lost poll never flaps the dashboard. ``ok`` and
    ``failed`` return the transition ("up" / "down") for the caller to publish, else ``None``."""

    status: str = "starting"  # starting, collecting, auth_failed, unreachable, timeout, error
    last_success_ns: int = 0
    last_error: str = ""
    errors: int = 0
    samples: int = 0
    batches: int = 0
    _window_start: float = field(default_factory=time.monotonic, repr=False)
    _window_samples: int = field(default=0, repr=False)
    samples_per_s: float = 0.0
    malformed: int = 0  # messages counted and dropped (undecodable values, unparsable paths)
    consecutive_failures: int = 0
    down: bool = False
    down_after: int = DOWN_AFTER

    def ok(self, samples: int) -> str | None:
        self.consecutive_failures = 0
        came_up = self.down
        self.down = False
        self.status = "collecting"
        self.last_success_ns = time.time_ns()
        self.samples += samples
        self.batches += 1
        self._window_samples += samples
        now = time.monotonic()
        if now - self._window_start >= 10.0:
            self.samples_per_s = self._window_samples / (now - self._window_start)
            self._window_start, self._window_samples = now, 0
        return "up" if came_up else None

    def failed(self, status: str, error: str) -> str | None:
        self.status = status
        self.last_error = error
        self.errors += 1
        self.consecutive_failures += 1
        if not self.down and self.consecutive_failures >= self.down_after:
            self.down = True
            return "down"
        return None


@dataclass
class CollectorContext:
    device: wire.Device
    token: int
    publish: Publish
    credential: Credential | None
    stats: DeviceStats = field(default_factory=DeviceStats)


Collector = Callable[[CollectorContext], Awaitable[None]]


async def attempt_ok(ctx: CollectorContext, samples: int) -> None:
    """Count a successful attempt; announce ``device_up`` when it ends a down period."""
    if ctx.stats.ok(samples) == "up":
        await ctx.publish.event("device_up", "collecting again")


async def attempt_failed(ctx: CollectorContext, status: str, error: str) -> None:
    """Count a failed attempt; announce ``device_down`` when it is the N-th in a row."""
    if ctx.stats.failed(status, error) == "down":
        await ctx.publish.event("device_down", f"{ctx.stats.consecutive_failures} failed attempts in a row; "
                                               f"last: {status}: {error}")


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Jittered exponential backoff ("full jitter"): a random wait in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2**attempt))
