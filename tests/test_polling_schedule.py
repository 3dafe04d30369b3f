"""When the polling collectors poll: spread over the interval, on a grid of slots (devices in one slot are
polled together, one loop wakeup for several devices), never bunching up missed rounds."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator

import pytest
from support.recorder import Recorder, device
from swtel.agent.collectors import polling
from swtel.agent.collectors.base import CollectorContext
from swtel.shared import wire


def on_grid(t: float, slot: float) -> bool:
    return math.isclose(t / slot, round(t / slot), abs_tol=1e-6)


def test_first_polls_are_spread_over_the_interval_on_slot_boundaries() -> None:
    random.seed(7)
    now, interval = 12345.678, 10.0
    firsts = [polling.first_poll(now, interval) for _ in range(2000)]
    slot = polling.slot_s(interval)
    assert slot == polling.POLL_SLOT_S
    assert all(on_grid(t, slot) for t in firsts)
    assert all(now <= t <= now + interval + slot for t in firsts)
    # every slot of the interval is used: still spread, not bunched at one instant
    assert len(set(round(t / slot) for t in firsts)) >= interval / slot


def test_short_intervals_get_slots_of_a_tenth_of_the_interval() -> None:
    assert polling.slot_s(0.2) == pytest.approx(0.02)
    assert all(on_grid(polling.first_poll(3.21, 0.2), 0.02) for _ in range(100))


def test_next_polls_keep_the_slot_and_skip_missed_rounds() -> None:
    due = 1000.0
    assert polling.next_poll(due, 1001.0, 10.0) == 1010.0  # on time: one interval later, same slot
    late = polling.next_poll(due, 1023.2, 10.0)  # a device slower than its interval
    assert late >= 1033.2 and on_grid(late, polling.POLL_SLOT_S)


@contextlib.asynccontextmanager
async def polled(n: int, interval: float, times: dict[int, list[float]]) -> AsyncIterator[None]:
    """``n`` devices polled by the real supervisor through a session that only notes when each poll came."""
    loop = asyncio.get_running_loop()

    def session(i: int):  # noqa: ANN202
        @contextlib.asynccontextmanager
        async def open_session() -> AsyncIterator[polling.Poll]:
            async def poll(groups: set[str]) -> list[wire.Sample]:
                times.setdefault(i, []).append(loop.time())
                return [wire.Sample("/interfaces/interface[name=e1]/state/oper-status", "UP", 1)]

            yield poll

        return open_session

    paths = {"interfaces": ["/interfaces"]}
    ctxs = [CollectorContext(device=device(f"d{i}", 1, "ssh", interval=interval, paths=paths), token=1,
                             publish=Recorder(), credential=None) for i in range(n)]
    tasks = [asyncio.create_task(polling.supervise(ctx, session(i), "test")) for i, ctx in enumerate(ctxs)]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.asyncio
async def test_devices_in_one_slot_are_polled_together() -> None:
    times: dict[int, list[float]] = {}
    interval, n = 1.0, 30
    slot = polling.slot_s(interval)
    async with polled(n, interval, times):
        while len([ts for ts in times.values() if len(ts) >= 2]) < n:
            await asyncio.sleep(0.05)
    for ts in times.values():
        # each poll starts at a slot boundary (a loop wakes a little after its timer: well under half a slot);
        # spread evenly, 30 devices would all land in the first half of a slot with a chance of 2**-30
        assert all((t / slot) % 1 < 0.5 for t in ts[:2]), ts
        assert ts[1] - ts[0] == pytest.approx(interval, abs=slot / 2)
    # the 30 devices share at most the interval's 10 slots
    assert len({math.floor(ts[0] / slot) for ts in times.values()}) <= interval / slot + 1
