"""The lease protocol with real agent processes on a real nats-server: assignment, failover, handover, join.

Agents run with short timings (tests/support/agents.py FAST_ENV: heartbeat 0.25 s, presence TTL 1 s) so
the file stays fast; the benchmark (bench/leases) measures the defaults.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from support.agents import FAST_TTL_S, Fleet, swtel_cli
from support.waits import eventually

N = 240


async def leases_by_device(fleet: Fleet) -> dict[str, str]:
    return {lease.device: lease.agent for lease, _ in await fleet.inv.lease_list()}


@pytest.mark.asyncio
async def test_cold_start_assigns_every_device_exactly_once_by_rendezvous(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    for a in ("a1", "a2", "a3"):
        fleet.start(a)
    want = fleet.expected(devices, ["a1", "a2", "a3"])
    await fleet.converge(want, timeout=20, what="cold start to match the rendezvous plan")
    assert await leases_by_device(fleet) == want
    counts = Counter(want.values())
    assert max(counts.values()) / (N / 3) < 1.3, counts  # each agent got about a third
    fleet.assert_no_overlap()

    rows = json.loads((await swtel_cli(fleet.url, "lease", "list", "--json")).out)
    assert {r["device"]: r["agent"] for r in rows} == want and all(r["token"] > 0 for r in rows)
    await eventually(lambda: _agent_counts(fleet, dict(counts)), timeout=5, what="agent device counts")

    check = await swtel_cli(fleet.url, "agent", "check", "--json", env={"SWTEL_AGENT_ID": "a2"})
    assert check.code == 0, check.err
    status = json.loads(check.out)
    held = {d for d, a in want.items() if a == "a2"}
    assert status["id"] == "a2" and status["healthy"] and set(status["devices"]) == held
    tokens = {r["device"]: r["token"] for r in rows}
    assert all(status["devices"][d]["token"] == tokens[d] for d in held)  # the claim revision is the token
    assert (await swtel_cli(fleet.url, "agent", "check", "--id", "nobody")).code == 1


async def _agent_counts(fleet: Fleet, want: dict[str, int]) -> bool:
    agents = json.loads((await swtel_cli(fleet.url, "agent", "list", "--json")).out)
    return {a["id"]: a["devices"] for a in agents} == want


@pytest.mark.asyncio
async def test_kill_9_devices_are_claimed_by_others_within_ttl(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    for a in ("a1", "a2", "a3"):
        fleet.start(a)
    await fleet.converge(fleet.expected(devices, ["a1", "a2", "a3"]), timeout=20, what="cold start")
    before = await leases_by_device(fleet)

    fleet.agents["a2"].kill()
    took = await fleet.converge(fleet.expected(devices, ["a1", "a3"]), timeout=10, what="failover after kill -9")
    assert took <= FAST_TTL_S + 1.0, f"failover took {took:.2f}s"
    after = await leases_by_device(fleet)
    moved = {d for d in devices if after[d] != before[d]}
    assert moved == {d for d, a in before.items() if a == "a2"}  # only the dead agent's devices moved
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_graceful_stop_hands_over_at_once(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    for a in ("a1", "a2", "a3"):
        fleet.start(a)
    await fleet.converge(fleet.expected(devices, ["a1", "a2", "a3"]), timeout=20, what="cold start")
    t0 = time.monotonic()
    assert fleet.agents["a3"].terminate() == 0
    await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=5, what="handover after SIGTERM")
    assert time.monotonic() - t0 < 1.0 + 1.0  # process exit included; the bench measures the handover alone
    log = fleet.agents["a3"].log_path.read_text()
    assert "reason=shutdown" in log and "agent stopped id=a3" in log
    assert not any(a == "a3" for a in (await leases_by_device(fleet)).values())
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_joining_agent_takes_about_one_nth_and_nothing_else_moves(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    for a in ("a1", "a2", "a3"):
        fleet.start(a)
    await fleet.converge(fleet.expected(devices, ["a1", "a2", "a3"]), timeout=20, what="cold start")
    before = await leases_by_device(fleet)
    fleet.start("a4")
    want = fleet.expected(devices, ["a1", "a2", "a3", "a4"])
    await fleet.converge(want, timeout=15, what="the new agent to receive its share after the settle period")
    after = await leases_by_device(fleet)
    moved = {d for d in devices if after[d] != before[d]}
    assert moved == {d for d, a in want.items() if a == "a4"}  # every move went to the new agent
    assert len(moved) <= 1.25 * N / 4, len(moved)
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_a_device_removed_while_its_holder_is_dead_loses_its_claim(fleet: Fleet) -> None:
    devices = await fleet.add_devices(40)
    for a in ("a1", "a2"):
        fleet.start(a)
    await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=20, what="cold start")
    held_by_a2 = sorted(d for d, a in (await leases_by_device(fleet)).items() if a == "a2")
    fleet.agents["a2"].kill()
    gone = held_by_a2[0]
    assert (await swtel_cli(fleet.url, "device", "remove", gone)).code == 0
    rest = [d for d in devices if d != gone]
    await fleet.converge(fleet.expected(rest, ["a1"]), timeout=10, what="failover without the removed device")

    async def claim_deleted() -> bool:
        return gone not in await leases_by_device(fleet)

    await eventually(claim_deleted, timeout=5, what=f"the stale claim of removed device {gone} to be deleted")
    fleet.assert_no_overlap()
