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

    async def batch(self, subscription: str, samples: wire.Columns | list[wire.Sample]) -> None: ...

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
    # SSH and NETCONF: a private key file (OpenSSH format) offered before the password.
    ssh_key: str | None = None


DOWN_AFTER = 3  # consecutive failed attempts before a device is reported down (setting device_down_after)


@dataclass
class SubscriptionStats:
    """One subscription's (or command group's) own outcome: a device can deliver interfaces while its
    ``system`` subscription fails, and says so here instead of flipping the whole device to ``error``."""

    status: str = "starting"  # starting, collecting, or the failure status of its latest attempt
    last_success_ns: int = 0
    last_error: str = ""
    errors: int = 0
    samples: int = 0
    dropped: int = 0  # samples the device sent outside this subscription's paths (not attributed to it)
    _announced: bool = field(default=False, repr=False)  # a subscription_down was published for this failure


@dataclass
class DeviceStats:
    """Per-device collection statistics, shown by ``swtel lease list --json`` / the agent status request.

    ``status`` is ``collecting`` while any subscription delivers; otherwise the outcome of the latest
    attempt. ``subscriptions`` holds each subscription's own status and error. ``down`` has hysteresis, as
    Suzieq's device status: it turns true only after ``down_after`` consecutive failed attempts (a
    connection, a login, a poll) while nothing delivers, and false again at the next success, so one lost
    poll never flaps the dashboard. ``ok`` and ``failed`` return the transition ("up" / "down") for the
    caller to publish, else ``None``; ``subscription_ok`` / ``subscription_failed`` return whether that
    subscription's status changed (one event per change, not per poll)."""

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
    subscriptions: dict[str, SubscriptionStats] = field(default_factory=dict)

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

    def subscription(self, name: str) -> SubscriptionStats:
        sub = self.subscriptions.get(name)
        if sub is None:
            sub = self.subscriptions[name] = SubscriptionStats()
        return sub

    def delivering(self, besides: str = "", *, or_starting: bool = False) -> bool:
        """Does any subscription (other than ``besides``) deliver at the moment (or, with ``or_starting``,
        has not had its first answer yet)?"""
        alive = ("collecting", "starting") if or_starting else ("collecting",)
        return any(s.status in alive for n, s in self.subscriptions.items() if n != besides)

    def subscription_ok(self, name: str, samples: int) -> bool:
        """Count a delivery of one subscription; True when it recovers from a failure."""
        sub = self.subscription(name)
        recovered, sub._announced = sub._announced, False
        sub.status, sub.last_success_ns = "collecting", time.time_ns()
        sub.samples += samples
        return recovered

    def subscription_failed(self, name: str, status: str, error: str) -> bool:
        """Count a failure of one subscription; True when an event is due: its status changed (or was
        not announced yet) while another subscription delivers. When nothing delivers, the device's own
        status and events tell the story, and a per-subscription event would only repeat it."""
        sub = self.subscription(name)
        if sub.status != status:
            sub._announced = False
        sub.status, sub.last_error = status, error[:300]
        sub.errors += 1
        if sub._announced or not self.delivering(besides=name):
            return False
        sub._announced = True
        return True

    def session_lost(self, status: str) -> None:
        """The whole session ended: no subscription delivers now (the device-level event says why)."""
        for sub in self.subscriptions.values():
            if sub.status == "collecting":
                sub.status = status


@dataclass
class CollectorContext:
    device: wire.Device
    token: int
    publish: Publish
    credential: Credential | None
    stats: DeviceStats = field(default_factory=DeviceStats)


Collector = Callable[[CollectorContext], Awaitable[None]]


async def attempt_ok(ctx: CollectorContext, samples: int, subscription: str = "") -> None:
    """Count a successful attempt; announce ``device_up`` when it ends a down period, and
    ``subscription_up`` when a subscription that failed delivers again."""
    if subscription and ctx.stats.subscription_ok(subscription, samples):
        await ctx.publish.event("subscription_up", f"{subscription}: collecting again")
    if ctx.stats.ok(samples) == "up":
        await ctx.publish.event("device_up", "collecting again")


async def attempt_failed(ctx: CollectorContext, status: str, error: str, subscription: str = "") -> None:
    """Count a failed attempt; announce ``device_down`` when it is the N-th in a row.

    With ``subscription``: that subscription failed. Its status changes (and ``subscription_down`` is
    published once per change while another one delivers); the device's own status and down count move
    only when every other subscription has failed too: a device that delivers interfaces is
    ``collecting`` whatever ``system`` does, and one whose other subscriptions have not answered yet is
    not called failed by the first poll that comes back."""
    if subscription:
        await subscription_failed(ctx, subscription, status, error)
        if ctx.stats.delivering(besides=subscription, or_starting=True):
            ctx.stats.errors += 1
            return
    if ctx.stats.failed(status, error) == "down":
        await ctx.publish.event("device_down", f"{ctx.stats.consecutive_failures} failed attempts in a row; "
                                               f"last: {status}: {error}")


async def subscription_failed(ctx: CollectorContext, subscription: str, status: str, error: str) -> None:
    """Only the subscription's part of :func:`attempt_failed`: its status, and an event when it changes."""
    if ctx.stats.subscription_failed(subscription, status, error):
        await ctx.publish.event("subscription_down", f"{subscription}: {status}: {error}"[:500])


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Jittered exponential backoff ("full jitter"): a random wait in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2**attempt))
