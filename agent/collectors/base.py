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


@dataclass
class Credential:
    username: str
    password: str = field(repr=False)  # never in logs or reprs
    # TLS material for the device session (file paths); gNMI uses them when the device's tls is "on".
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass
class DeviceStats:
    """Per-device collection statistics, shown by ``swtel lease list --json`` / the agent status request."""

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

    def ok(self, samples: int) -> None:
        self.status = "collecting"
        self.last_success_ns = time.time_ns()
        self.samples += samples
        self.batches += 1
        self._window_samples += samples
        now = time.monotonic()
        if now - self._window_start >= 10.0:
            self.samples_per_s = self._window_samples / (now - self._window_start)
            self._window_start, self._window_samples = now, 0

    def failed(self, status: str, error: str) -> None:
        self.status = status
        self.last_error = error
        self.errors += 1


@dataclass
class CollectorContext:
    device: wire.Device
    token: int
    publish: Publish
    credential: Credential | None
    stats: DeviceStats = field(default_factory=DeviceStats)


Collector = Callable[[CollectorContext], Awaitable[None]]


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Jittered exponential backoff ("full jitter"): a random wait in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2**attempt))
