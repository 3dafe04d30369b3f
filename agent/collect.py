"""What the lease manager runs for each held device: credential, publisher binding and collector.

``make_slot_factory`` returns ``(slot_factory, stats_provider)``. The agent awaits
``slot_factory(device, token)`` as one task per held device and cancels it on release; the task never
raises for device faults. ``stats_provider()`` maps each held device to its statistics as a dict
(status, last success, errors, samples/s …), for ``swtel lease list --json`` or an agent status request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from swtel.agent.collectors.base import Collector, CollectorContext, Credential, DeviceStats, attempt_failed
from swtel.agent.credentials import Credentials
from swtel.agent.jobs import jobs_for
from swtel.agent.publisher import Publisher
from swtel.shared import wire
from swtel.shared.errors import UserError
from swtel.shared.settings import Settings

log = logging.getLogger("swtel.agent.collect")

SlotFactory = Callable[[wire.Device, int], Awaitable[None]]
StatsProvider = Callable[[], dict[str, dict[str, Any]]]
COLLECTORS = {  # protocol → module; imported when first needed
    "gnmi": "swtel.agent.collectors.gnmi",  # `async def run(ctx)`
    "ssh": "swtel.agent.collectors.ssh",  # `collector(SshOptions) -> run`
    "netconf": "swtel.agent.collectors.netconf",
    "snmp": "swtel.agent.collectors.snmp",  # `async def run(ctx)`; per-device knobs are snmp_* tags
}
CREDENTIAL_RETRY_S = 30.0
JOB_STOP_TIMEOUT_S = 2.0


def collector_for(protocol: str, settings: Settings | None = None) -> Collector | None:
    """The collector for a protocol; SSH and NETCONF ones are built with the SSH settings (host keys, timeouts)."""
    module_name = COLLECTORS.get(protocol)
    if module_name is None:
        return None
    module = importlib.import_module(module_name)
    if hasattr(module, "collector"):
        from swtel.agent.collectors.sshconn import SshOptions

        opts = SshOptions.from_settings(settings) if settings is not None else SshOptions()
        return module.collector(opts)  # type: ignore[no-any-return]
    return module.run  # type: ignore[no-any-return]


def _job_name(job: Any) -> str:
    return getattr(job, "func", job).__module__.rsplit(".", 1)[-1]  # "discovery", "backup"


def stats_dict(stats: DeviceStats) -> dict[str, Any]:
    out = {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats) if not f.name.startswith("_")}
    out["subscriptions"] = {name: {f.name: getattr(sub, f.name) for f in dataclasses.fields(sub)
                                   if not f.name.startswith("_")} for name, sub in stats.subscriptions.items()}
    return out


class Collection:
    """One per agent: the publisher, the credential store and the statistics of every running slot."""

    def __init__(self, nc: NATS, settings: Settings, agent_id: str, *, js: JetStreamContext | None = None,
                 credentials: Credentials | None = None) -> None:
        self.settings = settings
        self.publisher = Publisher(nc, agent_id, js=js)
        self._collectors: dict[str, Collector | None] = {}
        self.credentials = credentials or Credentials(settings.secrets_file)
        self.stats: dict[str, tuple[int, str, DeviceStats]] = {}  # device → (token, protocol, stats)

    async def slot(self, device: wire.Device, token: int) -> None:
        stats = DeviceStats(down_after=self.settings.device_down_after)
        self.stats[device.name] = (token, device.protocol, stats)
        publish = self.publisher.bind(device.name, token)
        try:
            if device.protocol not in self._collectors:  # one per protocol: SSH connection reuse lives in it
                self._collectors[device.protocol] = collector_for(device.protocol, self.settings)
            collector = self._collectors[device.protocol]
            if collector is None:
                stats.failed("error", f"this agent has no {device.protocol} collector")
                await publish.event("error", stats.last_error)
                await asyncio.Event().wait()  # hold the lease quietly until released
            ctx = CollectorContext(device, token, publish, None, stats)
            ctx.credential = await self._credential(ctx)
            # device work beside collection starts and stops with the slot (and so with the lease)
            side = [asyncio.create_task(job(ctx), name=f"{_job_name(job)}-{device.name}")
                    for job in jobs_for(device, self.settings)]
            try:
                await collector(ctx)  # type: ignore[misc]
            finally:
                for task in side:
                    task.cancel()
                if side:  # bounded, like the slot's own stop: a job that ignores its cancel is reported
                    _, stuck = await asyncio.wait(side, timeout=JOB_STOP_TIMEOUT_S)
                    for task in stuck:
                        log.error("%s: device job %s did not stop within %.0fs", device.name, task.get_name(),
                                  JOB_STOP_TIMEOUT_S)
        finally:
            if self.stats.get(device.name, (0, "", None))[2] is stats:
                del self.stats[device.name]

    async def _credential(self, ctx: CollectorContext) -> Credential | None:
        """Resolve the device's credential; while it cannot be, report it and try again now and then."""
        announced = False
        while True:
            try:
                return self.credentials.resolve(ctx.device.credential)
            except UserError as e:  # not defined, unreadable, malformed: the message names no secret
                await attempt_failed(ctx, "auth_failed", str(e))  # a failed attempt: counts toward down
                if not announced:
                    log.warning("%s: %s", ctx.device.name, e)
                    await ctx.publish.event("auth_failed", str(e))
                    announced = True
            await asyncio.sleep(CREDENTIAL_RETRY_S)

    def device_stats(self) -> dict[str, dict[str, Any]]:
        return {name: {"token": token, "protocol": proto, **stats_dict(st)}
                for name, (token, proto, st) in self.stats.items()}


def raise_fd_limit(devices: int) -> None:
    """Best effort: one socket per held device, and many systems start processes at 1,024 open files."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = devices + 1024
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(hard, want)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            log.warning("open-files limit %d is below %d: raise it (LimitNOFILE=) to hold %d devices",
                        new, want, devices)


GC_GEN0 = 20_000


def tune_gc() -> None:
    """For a collecting process, once its start-up is done: the cyclic GC out of the decode loop.

    ``gc.freeze()`` moves what start-up made (modules, classes, functions: ~100k objects) to the permanent
    generation, so full collections no longer walk them. A gen0 threshold of 20,000 tracked allocations
    instead of 700: a notification allocates a few hundred container objects (Samples are untracked,
    ``gc=False``), so with 700 a young collection ran every one or two notifications. Garbage cycles are
    rare here (exceptions with tracebacks) and still collected, only in bigger, rarer steps."""
    import gc

    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0, g1, g2)
    with contextlib.suppress(RuntimeError):  # no running loop: nothing to schedule
        trim_memory_every(asyncio.get_running_loop(), TRIM_PERIOD_S)


TRIM_PERIOD_S = 30.0


def trim_memory_every(loop: asyncio.AbstractEventLoop, period_s: float) -> None:
    """Give memory the process freed back to the system every ``period_s`` (glibc's ``malloc_trim``).

    Thousands of devices' updates arrive in bursts: gRPC's threads and the decode loop allocate and free
    tens of MB per burst, and glibc keeps the freed pages of its heaps (the main one and each thread's
    arena) mapped, so RSS stays at the bursts' high-water mark (~30 kB per device at 500 gNMI devices,
    `python -m bench.agent`). ``malloc_trim(0)`` returns every whole free page of every arena; it takes
    milliseconds. Not glibc (musl, macOS): nothing to do."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return

    def tick() -> None:
        trim(0)
        loop.call_later(period_s, tick)

    loop.call_later(period_s, tick)


def make_slot_factory(nc: NATS, settings: Settings, agent_id: str, *,
                      js: JetStreamContext | None = None) -> tuple[SlotFactory, StatsProvider]:
    raise_fd_limit(settings.agent_capacity)
    collection = Collection(nc, settings, agent_id, js=js)
    return collection.slot, collection.device_stats
