"""The live view's background work as one object: subscriptions, KV watchers and the sweeper.

``run()`` holds them in a TaskGroup until ``close()``; nothing here touches the event loop before
``run()``. The hub app starts it on startup and closes it on shutdown (see ``routes.live_components``).
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS
from swtel.shared import naming
from swtel.shared.settings import Settings

from .cache import LiveCache
from .fanout import Fanout
from .fleet import FleetState

log = logging.getLogger("swtel.hub.live")


class LiveService:
    def __init__(self, settings: Settings, nc: NATS) -> None:
        self.settings = settings
        self.nc = nc
        self.cache = LiveCache(history_points=settings.live_history_points, max_series=settings.live_max_series,
                               history_series=settings.live_history_series)
        self.fleet = FleetState(self.cache)
        self.fanout = Fanout(self.cache, self.fleet, frame_interval=settings.live_frame_interval_s,
                             send_timeout=settings.live_send_timeout_s,
                             max_devices_per_client=settings.live_max_devices_per_client)
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        js = self.nc.jetstream()
        subs = [await self.nc.subscribe(naming.TELEMETRY_ALL, cb=self.cache.on_message,
                                        pending_msgs_limit=200_000),
                await self.nc.subscribe(naming.EVENT_ALL, cb=self.cache.on_message)]
        try:
            async with asyncio.TaskGroup() as tg:
                for bucket in (naming.BUCKET_DEVICES, naming.BUCKET_AGENTS, naming.BUCKET_LEASES):
                    tg.create_task(self._follow(js, bucket), name=f"live-watch-{bucket}")
                tg.create_task(self.fanout.run_sweeper(), name="live-sweeper")
                self.started.set()
        finally:
            for sub in subs:
                try:
                    await sub.unsubscribe()
                except Exception:  # the connection may already be closed at shutdown
                    pass

    async def _follow(self, js, bucket: str) -> None:  # type: ignore[no-untyped-def]
        backoff = 0.5
        while True:  # the bucket may not exist yet (`swtel nats init` not run): keep trying, quietly
            try:
                kv = await js.key_value(bucket)
                break
            except Exception as e:
                log.warning("live view: bucket %s unavailable (%s); retrying", bucket, e or type(e).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        await self.fleet.follow(kv, bucket)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="live-service")

    async def close(self, grace: float = 5.0) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await asyncio.wait_for(self._task, grace)
        except (asyncio.CancelledError, TimeoutError):
            pass
        self._task = None

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Until every bucket's current values were read (tests and the bench wait for this)."""
        await asyncio.wait_for(self.started.wait(), timeout)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self.fleet.ready.values())), timeout)
