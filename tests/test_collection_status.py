"""Per-subscription status end to end: a real agent process collects a simulated gNMI switch whose one
subscription always fails; `swtel lease list --json`, `swtel agent check --json` and the hub's device API
(the dashboard's device page) all show the device collecting and that subscription's own error."""

from __future__ import annotations

import json
from typing import Any

import nats
import pytest
from litestar.testing import AsyncTestClient
from support.agents import FAST_ENV, AgentProc, swtel_cli
from support.gnmisim import gnmi_fleet
from support.telemetry import hub_settings, migrate
from support.waits import eventually

from swtel.agent.sim.model import SimDevice
from swtel.hub.app import create_app
from swtel.shared import wire
from swtel.shared.inventory import Inventory, make_device


def _ok(c: dict[str, Any] | None) -> bool:
    subs = (c or {}).get("subscriptions") or {}
    return bool(c and c["status"] == "collecting" and subs.get("ifs", {}).get("status") == "collecting"
                and subs.get("bogus", {}).get("status") == "error")


@pytest.mark.asyncio
async def test_one_failing_subscription_is_shown_per_subscription_everywhere(bootstrapped: str,
                                                                               database_url: str) -> None:
    await migrate(database_url)
    nc = await nats.connect(bootstrapped)
    agent = AgentProc("agent-s", bootstrapped, collect=True, env={
        **FAST_ENV, "SWTEL_CRED_SIM_USERNAME": "admin", "SWTEL_CRED_SIM_PASSWORD": "admin"})
    try:
        async with gnmi_fleet(SimDevice("half", interfaces=2)) as fleet:
            dev = make_device("half", "127.0.0.1", "gnmi", port=fleet.ports[0], credential="sim")
            dev.subscriptions = [wire.Subscription("ifs", ["/interfaces/interface/state/counters"], "sample", 0.5),
                                 wire.Subscription("bogus", ["/no/such/thing"], "sample", 0.5)]
            await (await Inventory.open(nc.jetstream())).add(dev)
            agent.start()

            async def listed() -> Any:
                rows = json.loads((await swtel_cli(bootstrapped, "lease", "list", "--json")).out)
                return rows if rows and _ok(rows[0].get("collection")) else None

            rows = await eventually(listed, timeout=30, what=f"lease list with per-subscription detail; "
                                                             f"agent log: {agent.tail()}")
            c = rows[0]["collection"]
            assert rows[0]["agent"] == "agent-s" and c["agent"] == "agent-s" and not c["down"]
            assert "NOT_FOUND" in c["subscriptions"]["bogus"]["last_error"]
            table = (await swtel_cli(bootstrapped, "lease", "list")).out
            assert "collecting" in table and "bogus:error" in table and "ifs:collecting" in table

            check = await swtel_cli(bootstrapped, "agent", "check", "--json", env={"SWTEL_AGENT_ID": "agent-s"})
            st = json.loads(check.out)["devices"]["half"]
            assert _ok(st) and st["subscriptions"]["bogus"]["errors"] >= 1

            app = create_app(hub_settings(bootstrapped, database_url), ingest=False, auth=False)
            async with AsyncTestClient(app) as client:
                view = (await client.get("/api/devices/half")).json()
            assert view["agent"] == "agent-s" and _ok(view["collection"])
            assert "NOT_FOUND" in view["collection"]["subscriptions"]["bogus"]["last_error"]
    finally:
        agent.kill()
        await nc.close()


class _Events:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    async def event(self, kind: str, detail: str = "") -> None:
        self.kinds.append(kind)


@pytest.mark.asyncio
async def test_status_rules_device_collecting_while_anything_delivers_one_event_per_change() -> None:
    from swtel.agent.collectors.base import CollectorContext, DeviceStats, attempt_failed, attempt_ok

    ev = _Events()
    ctx = CollectorContext(make_device("d", "127.0.0.1", "gnmi"), 1, ev, None, DeviceStats(down_after=2))  # type: ignore[arg-type]
    for name in ("ifs", "sys"):
        ctx.stats.subscription(name)
    await attempt_failed(ctx, "error", "sys: refused", "sys")  # ifs has not answered yet: nobody is failed
    assert ctx.stats.status == "starting" and ev.kinds == []
    await attempt_ok(ctx, 10, "ifs")
    for _ in range(5):  # sys keeps failing while ifs delivers: one event, the device collects, never down
        await attempt_failed(ctx, "error", "sys: refused", "sys")
        await attempt_ok(ctx, 10, "ifs")
    assert ev.kinds == ["subscription_down"] and ctx.stats.status == "collecting" and not ctx.stats.down
    assert ctx.stats.subscriptions["sys"].errors == 6 and ctx.stats.subscriptions["ifs"].samples == 60
    await attempt_ok(ctx, 1, "sys")
    assert ev.kinds == ["subscription_down", "subscription_up"]
    # nothing delivers any more: the device's own status and hysteresis take over
    for name in ("ifs", "sys", "ifs", "sys"):
        await attempt_failed(ctx, "timeout", "no data", name)
    assert ctx.stats.status == "timeout" and ctx.stats.down and "device_down" in ev.kinds
    assert ev.kinds.count("subscription_down") == 2  # ifs's own change, announced while sys still delivered
