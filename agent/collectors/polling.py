"""The loop shared by the polling collectors (SSH CLI, NETCONF, SNMP): connect, poll each subscription on its
interval, classify every failure into one device status, reconnect with jittered backoff.

A session is an async context manager yielding ``poll(groups) -> samples``. Within a session each
subscription runs as its own task on its own interval; a reply that is garbage or an error is a failed
poll (status ``error``), the session goes on. A poll whose commands partly failed raises
:class:`PartialPoll`: what parsed is published (the poll counts as a success) and the failed commands are
reported once per change of the failing set (an ``error`` event, ``last_error``), not on every poll.
Anything that breaks the session (timeout, lost
connection, broken framing) ends it; the supervisor reports it and reconnects after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import asyncssh
from swtel.shared import inventory, wire

from . import paths
from .base import CollectorContext, attempt_failed, attempt_ok, backoff

log = logging.getLogger("swtel.agent.polling")

Poll = Callable[[set[str]], Awaitable[list[wire.Sample]]]
OpenSession = Callable[[], AbstractAsyncContextManager[Poll]]

# Polls start on a grid of this many seconds of the event loop's clock (at most a tenth of the interval),
# still spread over the interval at random: devices whose polls fall in the same slot are polled
# together, so one loop wakeup sends several devices' commands and one reads several answers. Polls
# spread evenly wake the loop once or more per command, and each wakeup pays the loop's and asyncssh's
# fixed work with cold caches. 200 SSH shell devices at 10 s, single runs on a shared host, CPU s per
# million samples: spread 4.8-6.6; grid 0.1 s 4.9-5.0, 0.5 s 3.0-4.1, 1 s 2.7-4.0, 2 s 2.9-3.2. A slot's
# devices are a burst of slot/interval of all devices (a tenth at most), short next to the interval.
POLL_SLOT_S = 1.0

STATUS_EVENT = {"auth_failed": "auth_failed", "timeout": "timeout", "unreachable": "error", "error": "error"}


class DeviceError(Exception):
    """The device answered, but with garbage, an error or something unparseable: one poll fails."""


class SessionBroken(DeviceError):
    """The session cannot be trusted any more (bad framing, lost prompt): reconnect."""


class AuthFailed(Exception):
    """The device refused the credential, or the credential cannot be used with this protocol."""


class PartialPoll(DeviceError):
    """Some commands of a poll failed: ``samples`` holds what the others gave, ``failures`` maps each failed
    command to its one-line reason."""

    def __init__(self, samples: list[wire.Sample], failures: dict[str, str]) -> None:
        self.samples = samples
        self.failures = failures
        super().__init__("; ".join(f"{cmd}: {why}" if not why.startswith(f"'{cmd}") else why
                                   for cmd, why in failures.items()))


class Status:
    """One clear status per device, and events only when it changes, so a device that fails the same way
    on every retry says so once. ``session_up`` is announced with a session's first good poll (a device
    that accepts the login and then hangs never looked up), ``session_down`` when an announced session ends."""

    def __init__(self, ctx: CollectorContext) -> None:
        self.ctx = ctx
        self.detail = ""
        self.announced = False
        self.reported: str | None = None  # the failure status last announced
        self.failing: dict[str, dict[str, str]] = {}  # subscription -> {command: reason} last announced

    async def partial(self, subscription: str, failures: dict[str, str]) -> None:
        """Commands of ``subscription`` failed while others delivered: the subscription (and the device)
        stays ``collecting``; its ``last_error`` (and the device's) names the failed commands, and one
        ``error`` event is sent when the set of failing commands changes, not once per poll."""
        sub = self.ctx.stats.subscription(subscription)
        if failures:
            detail = f"subscription {subscription}: " + "; ".join(
                why if why.startswith(f"'{cmd}") else f"{cmd}: {why}" for cmd, why in sorted(failures.items()))
            self.ctx.stats.last_error = sub.last_error = detail[:500]
        else:
            sub.last_error = ""
        if set(failures) != set(self.failing.get(subscription, {})):
            if failures:
                await self.ctx.publish.event("error", detail[:500])
            else:
                log.info("%s: subscription %s: every command answers again", self.ctx.device.name, subscription)
        self.failing[subscription] = dict(failures)

    def connected(self, detail: str) -> None:
        self.detail = detail

    async def ok(self, samples: int, subscription: str = "") -> None:
        await attempt_ok(self.ctx, samples, subscription)
        self.reported = None
        if not self.announced:
            self.announced = True
            await self.ctx.publish.event("session_up", self.detail)

    async def fail(self, status: str, detail: str, session_lost: bool = True, subscription: str = "") -> None:
        """A failed attempt. With ``subscription`` (one poll failed, the session goes on) the failure is
        that subscription's: while another subscription delivers, the device stays ``collecting`` and
        only ``subscription_down`` is published, once per change, not once per poll."""
        await attempt_failed(self.ctx, status, detail, subscription)
        if session_lost:
            self.ctx.stats.session_lost(status)
            if self.announced:
                self.announced = False
                await self.ctx.publish.event("session_down", detail)
        if subscription and self.ctx.stats.delivering(besides=subscription, or_starting=True):
            return
        if self.reported != status:
            self.reported = status
            await self.ctx.publish.event(STATUS_EVENT[status], detail)


def subscriptions(device: wire.Device) -> list[wire.Subscription]:
    if device.subscriptions:
        return list(device.subscriptions)
    return [wire.Subscription(name, ps, interval_s=inventory.DEFAULT_INTERVAL_S)
            for name, ps in inventory.DEFAULT_PATHS.items()]


def classify(exc: BaseException) -> tuple[str, str, float]:
    """(status, one-line detail, backoff base in seconds) for an exception that ended a session."""
    if isinstance(exc, BaseExceptionGroup):
        return classify(exc.exceptions[0])
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth_failed", "authentication failed", 5.0  # slow down: devices lock accounts out
    if isinstance(exc, AuthFailed):
        return "auth_failed", str(exc) or "authentication failed", 5.0
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return "error", f"host key not verifiable: {exc.reason}", 5.0
    if isinstance(exc, TimeoutError):
        return "timeout", str(exc) or "no answer in time", 0.5
    if isinstance(exc, DeviceError):
        return "error", str(exc) or type(exc).__name__, 0.5
    if isinstance(exc, asyncssh.Error):
        return "unreachable", f"ssh: {exc.reason}", 0.5
    if isinstance(exc, (OSError, EOFError)):
        return "unreachable", f"{type(exc).__name__}: {exc}", 0.5
    log.exception("unexpected error collecting a device", exc_info=exc)
    return "error", f"internal: {type(exc).__name__}", 1.0


async def supervise(ctx: CollectorContext, open_session: OpenSession, what: str | Callable[[], str]) -> None:
    """Collect ``ctx.device`` until cancelled; never raises for the device. ``what`` (or what it returns
    once the session is open) describes the session in ``session_up``."""
    status = Status(ctx)
    attempt = 0
    while True:
        base = 0.5
        try:
            async with open_session() as poll:
                status.connected(what if isinstance(what, str) else what())
                attempt = 0
                await _poll_all(ctx, poll, status)
        except Exception as e:  # noqa: BLE001 - every device failure is classified and retried
            kind, detail, base = classify(e)
            await status.fail(kind, detail)
        await asyncio.sleep(backoff(attempt, base=base))
        attempt += 1


async def _poll_all(ctx: CollectorContext, poll: Poll, status: Status) -> None:
    async with asyncio.TaskGroup() as tg:
        for sub in subscriptions(ctx.device):
            groups = paths.groups(sub.paths)
            if groups:
                ctx.stats.subscription(sub.name)  # known from the start: "starting" until it answers
                tg.create_task(_poll_one(ctx, sub, groups, poll, status))
            else:
                log.warning("%s: subscription %s has no path this collector knows", ctx.device.name, sub.name)
        # a session with nothing to poll stays open (the agent's keepalive shows it alive)
        tg.create_task(asyncio.Event().wait())


def slot_s(interval_s: float) -> float:
    return min(POLL_SLOT_S, interval_s / 10)


def _slot_from(t: float, interval_s: float) -> float:
    """The first slot boundary at or after ``t``."""
    slot = slot_s(interval_s)
    return math.ceil(t / slot) * slot


def first_poll(now: float, interval_s: float) -> float:
    """When a subscription's first poll is due: a random point of its first interval (thousands of devices
    do not poll in step), moved up to the next slot boundary (devices in one slot poll together)."""
    return _slot_from(now + random.uniform(0, interval_s), interval_s)


def next_poll(due: float, now: float, interval_s: float) -> float:
    """The poll after the one that was ``due``: one interval later (devices that started in one slot stay
    together), or, for a device slower than its interval, the first slot an interval from ``now`` (the
    missed rounds are skipped rather than bunched up)."""
    due += interval_s
    return due if due >= now else _slot_from(now + interval_s, interval_s)


async def _poll_one(ctx: CollectorContext, sub: wire.Subscription, groups: set[str], poll: Poll,
                    status: Status) -> None:
    loop = asyncio.get_running_loop()
    due = first_poll(loop.time(), sub.interval_s)
    await asyncio.sleep(due - loop.time())
    while True:
        failures: dict[str, str] = {}
        try:
            raw = await poll(groups)
        except SessionBroken:
            raise
        except PartialPoll as e:
            raw, failures = e.samples, e.failures
        except DeviceError as e:
            raw, failures = [], {"": str(e)}
        samples = paths.keep(raw, sub.paths)
        if raw or not failures:  # something answered: publish it, this subscription is collecting
            if samples:
                await ctx.publish.batch(sub.name, samples)
            await status.ok(len(samples), sub.name)
            await status.partial(sub.name, failures)
        else:  # nothing answered: this subscription fails (the device stays collecting while others deliver)
            detail = failures[""] if "" in failures else str(PartialPoll([], failures))
            await status.fail("error", f"{sub.name}: {detail}", session_lost=False, subscription=sub.name)
        now = loop.time()
        due = next_poll(due, now, sub.interval_s)
        await asyncio.sleep(due - now)
