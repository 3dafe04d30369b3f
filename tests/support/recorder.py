"""A Publish implementation that records what a collector publishes (a recorder, not a mock), and a
helper to run one collector as a task for a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from swtel.agent.collectors.base import Collector, CollectorContext, Credential
from swtel.shared import wire

from .waits import eventually


TRANSITIONS = ("device_down", "device_up")


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[str, list[wire.Sample]]] = []
        self.events: list[tuple[str, str]] = []
        self.configs: list[tuple[str, str]] = []  # (format, text)
        self.facts_seen: list[wire.DeviceFacts] = []

    async def batch(self, subscription: str, samples: wire.Columns | list[wire.Sample]) -> None:
        if isinstance(samples, wire.Columns):  # the gNMI collector hands over columns
            samples = [wire.Sample(p, v, t) for p, v, t in wire.rows(samples)]
        self.batches.append((subscription, samples))

    async def event(self, kind: str, detail: str = "") -> None:
        self.events.append((kind, detail))

    async def config(self, format: str, text: str) -> bool:
        self.configs.append((format, text))
        return True

    async def facts(self, facts: wire.DeviceFacts) -> bool:
        self.facts_seen.append(facts)
        return True

    def kinds(self) -> list[str]:
        """Session events; the hysteresis transitions (device_down/device_up) are in :meth:`transitions`."""
        return [k for k, _ in self.events if k not in TRANSITIONS]

    def transitions(self) -> list[str]:
        return [k for k, _ in self.events if k in TRANSITIONS]

    def values(self, subscription: str | None = None) -> dict[str, Any]:
        """The latest value of every path published (for one subscription or all)."""
        out: dict[str, Any] = {}
        for sub, samples in self.batches:
            if subscription in (None, sub):
                out.update((s.path, s.value) for s in samples)
        return out

    async def wait_event(self, kind: str, timeout: float = 10.0) -> None:
        async def seen() -> bool:
            return kind in self.kinds()

        await eventually(seen, timeout=timeout, what=f"a {kind!r} event (events so far: {self.events})")

    async def wait_batches(self, n: int, subscription: str | None = None, timeout: float = 10.0) -> None:
        async def enough() -> int:
            return sum(1 for s, _ in self.batches if subscription in (None, s)) >= n

        await eventually(enough, timeout=timeout, what=f"{n} batches of {subscription or 'any subscription'}")


def device(name: str, port: int, protocol: str, platform: str = "generic", interval: float = 0.3,
           tags: dict[str, str] | None = None, paths: dict[str, list[str]] | None = None) -> wire.Device:
    from swtel.shared.inventory import DEFAULT_PATHS

    subs = [wire.Subscription(n, ps, interval_s=interval) for n, ps in (paths or DEFAULT_PATHS).items()]
    return wire.Device(name=name, address="127.0.0.1", port=port, protocol=protocol,  # type: ignore[arg-type]
                       platform=platform, tags=tags or {}, subscriptions=subs)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def collecting(collector: Collector, dev: wire.Device, credential: Credential | None = None
                     ) -> AsyncIterator[tuple[Recorder, CollectorContext]]:
    """Run ``collector`` for ``dev`` while the block runs; cancel it afterwards and check it stopped."""
    rec = Recorder()
    ctx = CollectorContext(device=dev, token=1, publish=rec,
                           credential=credential or Credential("admin", "admin"))
    task = asyncio.create_task(collector(ctx))
    try:
        yield rec, ctx
        assert not task.done(), f"the collector ended on its own: {task}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
