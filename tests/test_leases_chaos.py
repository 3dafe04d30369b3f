"""Chaos: random kill -9, graceful stops and starts; at every step no device has two active slots, and at the
end every device has exactly one. Bounded: a fixed number of steps (seeded; the seed is in the failure)."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from support.agents import Fleet

N = 120
AGENTS = ["c1", "c2", "c3", "c4"]
STEPS = 14


@pytest.mark.slow
@pytest.mark.asyncio
async def test_random_kills_and_starts_never_double_collect(fleet: Fleet) -> None:
    seed = int(os.environ.get("SWTEL_CHAOS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    devices = await fleet.add_devices(N)
    for a in AGENTS[:3]:
        fleet.start(a)
    await fleet.converge(fleet.expected(devices, AGENTS[:3]), timeout=20, what=f"cold start (seed {seed})")
    for step in range(STEPS):
        running = [a for a in AGENTS if fleet.agents.get(a) and fleet.agents[a].alive]
        stopped = [a for a in AGENTS if a not in running]
        actions = (["kill", "stop"] if len(running) > 1 else []) + (["start"] if stopped else [])
        action = rng.choice(actions)
        if action == "start":
            fleet.start(rng.choice(stopped))
        elif action == "kill":
            fleet.agents[rng.choice(running)].kill()
        else:
            await asyncio.to_thread(fleet.agents[rng.choice(running)].terminate)
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        doubled = {d: a for d, a in fleet.active().items() if len(a) > 1}
        assert not doubled, f"step {step} ({action}, seed {seed}): two active slots: {list(doubled.items())[:3]}"
        fleet.assert_no_overlap()
    running = [a for a in AGENTS if fleet.agents.get(a) and fleet.agents[a].alive]
    await fleet.converge(fleet.expected(devices, running), timeout=20, what=f"the end state (seed {seed})")
    fleet.assert_no_overlap()
