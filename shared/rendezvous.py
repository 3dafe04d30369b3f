"""Weighted rendezvous (highest-random-weight) ranking of agents for a device.

Every agent computes the same order from the same KV state, so no coordinator is needed. Adding or
removing an agent only moves the devices whose top choice changes: about 1/N of them.

Weighting follows Schindelhauer & Schomaker ("Weighted distributed hash tables", 2005): with a uniform
hash ``u`` in (0, 1), the score ``-w / ln(u)`` gives each agent a share proportional to its weight ``w``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import blake2b

_SCALE = 1.0 / 2**64


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the ranking needs to know about a live agent."""

    id: str
    capacity: int = 10_000
    tags: Mapping[str, str] = field(default_factory=dict)
    draining: bool = False


@lru_cache(maxsize=1 << 17)  # agents re-plan often over the same (device, agent) pairs: hash once
def score(device: str, agent: str, weight: float = 1.0) -> float:
    """The agent's weighted score for the device; higher wins."""
    h = int.from_bytes(blake2b(f"{device}\0{agent}".encode(), digest_size=8).digest(), "big")
    u = (h + 0.5) * _SCALE  # strictly inside (0, 1)
    return -weight / math.log(u)


def eligible(agent: Candidate, pinned: str | None, device_tags: Mapping[str, str]) -> bool:
    """Whether ``agent`` may collect a device with this pin and these tags.

    A pinned device may go only to its pinned agent. A draining agent takes nothing. Tags: for every tag
    key the agent declares that the device also carries, the values must agree (an agent tagged
    ``site=dc1`` never collects a device tagged ``site=dc2``; untagged devices go anywhere).
    """
    if agent.draining:
        return False
    if pinned is not None and agent.id != pinned:
        return False
    return all(device_tags.get(k, v) == v for k, v in agent.tags.items())


def rank(
    device: str,
    agents: Iterable[Candidate],
    pinned: str | None = None,
    device_tags: Mapping[str, str] | None = None,
) -> list[str]:
    """Eligible agent ids for ``device``, most preferred first (ties broken by id, for determinism)."""
    tags = device_tags or {}
    scored = [
        (score(device, a.id, max(a.capacity, 1)), a.id) for a in agents if eligible(a, pinned, tags)
    ]
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [agent_id for _, agent_id in scored]


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    name: str
    pinned: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def plan(devices: Iterable[DeviceSpec], agents: Iterable[Candidate]) -> dict[str, str | None]:
    """The target owner of every device (``None``: no eligible agent with room).

    Devices are taken in name order and each goes to its best-ranked agent that still has capacity, so
    the result is the same on every agent. While no agent is full this is exactly the rendezvous top choice.
    """
    pool = list(agents)
    room = {a.id: a.capacity for a in pool}
    out: dict[str, str | None] = {}
    for dev in sorted(devices, key=lambda d: d.name):
        owner = None
        for agent_id in rank(dev.name, pool, dev.pinned, dev.tags):
            if room[agent_id] > 0:
                room[agent_id] -= 1
                owner = agent_id
                break
        out[dev.name] = owner
    return out
