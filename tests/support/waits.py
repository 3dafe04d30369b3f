"""Bounded waits with clear failure messages, for what cannot be awaited as an event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)


async def _quiet(err: Exception) -> None:
    pass


async def wait_jetstream(url: str, timeout: float = 20.0, replicas: int = 1) -> None:
    """Until JetStream answers (a cluster needs a meta leader first) and, with ``replicas`` > 1, can place a
    stream on that many servers (every node has joined: else "no suitable peers for placement")."""
    import nats

    async def ready() -> bool:
        try:
            nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1, connect_timeout=1,
                                    reconnect_time_wait=0.1, error_cb=_quiet)
        except Exception:
            return False
        try:
            js = nc.jetstream(timeout=2)
            await js.account_info()
            if replicas > 1:
                await js.add_stream(name="SWTEL_TEST_PLACEMENT", subjects=["swtel-test-placement"],
                                    num_replicas=replicas, storage="memory")
                await js.delete_stream("SWTEL_TEST_PLACEMENT")
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    await eventually(ready, timeout=timeout, what=f"JetStream at {url}", interval=0.2)
