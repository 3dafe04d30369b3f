"""Pin, drain, tags and capacity are obeyed by real agents; assign plan previews exactly the moves."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from support.agents import Fleet, swtel_cli

N = 120


@pytest.mark.asyncio
async def test_pin_and_unpin(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    fleet.start("a1"), fleet.start("a2")
    want = fleet.expected(devices, ["a1", "a2"])
    await fleet.converge(want, timeout=20, what="cold start")
    moving = [d for d, a in want.items() if a == "a1"][:5]
    for d in moving:
        await fleet.inv.pin(d, "a2")
        want[d] = "a2"
    await fleet.converge(want, timeout=5, what="pinned devices to move to their agent at once")
    await fleet.inv.pin("dev-0000", "nobody")  # pinned to an agent that is not running: nobody collects it
    want["dev-0000"] = None
    await fleet.converge(want, timeout=5, what="a device pinned to an absent agent to be released")
    for d in [*moving, "dev-0000"]:
        await fleet.inv.pin(d, None)
    await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=10, what="unpinned devices to go back")
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_drain_and_undrain(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    fleet.start("a1"), fleet.start("a2")
    await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=20, what="cold start")
    res = await swtel_cli(fleet.url, "agent", "drain", "a1")
    assert res.code == 0, res.err
    await fleet.converge(fleet.expected(devices, ["a2"]), timeout=5, what="a drained agent to give up everything")
    agents = json.loads((await swtel_cli(fleet.url, "agent", "list", "--json")).out)
    assert {a["id"]: a["draining"] for a in agents} == {"a1": True, "a2": False}
    assert (await swtel_cli(fleet.url, "agent", "undrain", "a1")).code == 0
    await fleet.converge(fleet.expected(devices, ["a1", "a2"]), timeout=10, what="undrained agent to get its share")
    missing = await swtel_cli(fleet.url, "agent", "drain", "nobody")
    assert missing.code == 2 and "not running" in missing.err and "Traceback" not in missing.err
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_tags(fleet: Fleet) -> None:
    from swtel.shared.inventory import make_device
    from swtel.shared.rendezvous import Candidate, DeviceSpec, plan

    dc1 = [make_device(f"dc1-{i:03d}", "127.0.0.1", "gnmi", tags={"site": "dc1"}) for i in range(30)]
    dc2 = [make_device(f"dc2-{i:03d}", "127.0.0.1", "gnmi", tags={"site": "dc2"}) for i in range(30)]
    await fleet.inv.add_many(dc1 + dc2)
    fleet.start("east", "--tag", "site=dc1")
    fleet.start("west", "--tag", "site=dc2")
    fleet.start("any")
    cands = [Candidate("east", tags={"site": "dc1"}), Candidate("west", tags={"site": "dc2"}), Candidate("any")]
    want = plan([DeviceSpec(d.name, tags=d.tags) for d in dc1 + dc2], cands)
    assert all(want[d.name] in ("east", "any") for d in dc1) and all(want[d.name] in ("west", "any") for d in dc2)
    await fleet.converge(want, timeout=20, what="tags to be obeyed")
    act = fleet.active()
    assert not any(v == ["east"] for d, v in act.items() if d.startswith("dc2"))
    assert not any(v == ["west"] for d, v in act.items() if d.startswith("dc1"))
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_capacity_is_a_hard_limit(fleet: Fleet) -> None:
    devices = await fleet.add_devices(30)
    fleet.start("c1", "--capacity", "10")
    fleet.start("c2", "--capacity", "10")
    want = fleet.expected(devices, {"c1": {"capacity": 10}, "c2": {"capacity": 10}})
    await fleet.converge(want, timeout=20, what="each agent to hold its capacity and no more")
    act = fleet.active()
    assert sorted(Counter(v[0] for v in act.values()).values()) == [10, 10] and len(act) == 20
    fleet.start("c3", "--capacity", "10")  # room for the rest
    await fleet.converge(fleet.expected(devices, {f"c{i}": {"capacity": 10} for i in (1, 2, 3)}), timeout=15,
                         what="the third agent to take the devices nobody had room for")
    fleet.assert_no_overlap()


@pytest.mark.asyncio
async def test_assign_plan_previews_exactly_the_moves(fleet: Fleet) -> None:
    devices = await fleet.add_devices(N)
    fleet.start("a1"), fleet.start("a2"), fleet.start("a3")
    await fleet.converge(fleet.expected(devices, ["a1", "a2", "a3"]), timeout=20, what="cold start")
    res = await swtel_cli(fleet.url, "assign", "plan", "--without", "a3", "--with", "a4", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    before, after = fleet.expected(devices, ["a1", "a2", "a3"]), fleet.expected(devices, ["a1", "a2", "a4"])
    assert {m["device"]: (m["from"], m["to"]) for m in out["moves"]} == {
        d: (before[d], after[d]) for d in devices if before[d] != after[d]}
    rows = {r["agent"]: r for r in out["agents"]}
    assert rows["a3"]["change"] == "removed" and rows["a4"]["change"] == "added" and rows["a4"]["holds"] == 0
    assert rows["a1"]["holds"] == rows["a1"]["planned_now"]
    table = await swtel_cli(fleet.url, "assign", "plan", "--with", "a4")
    assert table.code == 0 and "would move" in table.out
    bad = await swtel_cli(fleet.url, "assign", "plan", "--without", "ghost")
    assert bad.code == 2 and "no such live agent" in bad.err
