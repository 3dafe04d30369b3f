"""The dashboard on the real stack, in headless Chromium: the hub from `create_app` with authentication,
real `swtel agent run` processes collecting simulated gNMI switches, and kill -9 of an agent."""

from __future__ import annotations


import asyncpg
import pytest

from support.agents import AgentProc
from support.gnmisim import gnmi_fleet
from support.telemetry import hub_settings, migrate
from swtel.agent.sim.model import SimDevice
from swtel.hub.auth import store
from swtel.hub.auth.passwords import hash_password_sync
from swtel.shared.inventory import Inventory, make_device
from swtel.shared.natsconn import connect
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import running_hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NAMES = [f"sw{i}.lab" for i in range(6)]
PASSWORD = "correct horse battery staple"


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_real_agents_fail_over_and_the_agents_page_shows_it(bootstrapped: str, database_url: str,
                                                                  page: object) -> None:  # noqa: F811
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    await store.add_user(conn, "noc", "viewer", hash_password_sync(PASSWORD))
    await conn.close()
    sims = [SimDevice(n, interfaces=4) for n in NAMES]
    agents = [AgentProc(a, bootstrapped, collect=True, env={"SWTEL_CRED_SIM_USERNAME": "admin",
                                                             "SWTEL_CRED_SIM_PASSWORD": "admin"})
              for a in ("agent-a", "agent-b")]
    s = hub_settings(bootstrapped, database_url)
    nc = await connect(s, name="test")
    p = page
    try:
        async with gnmi_fleet(*sims) as fleet, running_hub(bootstrapped, database_url) as url:
            inv = await Inventory.open(nc.jetstream())
            for name, port in zip(NAMES, fleet.ports):
                await inv.add(make_device(name, "127.0.0.1", "gnmi", port=port, credential="sim", interval="1s"))
            for a in agents:
                a.start()

            # signing in through the login form is the only way in
            await p.goto(url + "/")  # type: ignore[attr-defined]
            await p.wait_for_url("**/login**")  # type: ignore[attr-defined]
            await p.fill('input[name="name"]', "noc")  # type: ignore[attr-defined]
            await p.fill('input[name="password"]', PASSWORD)  # type: ignore[attr-defined]
            await p.click('button[type="submit"]')  # type: ignore[attr-defined]
            await p.locator(".count", has_text="collecting").filter(has_text="6").wait_for(timeout=60_000)  # type: ignore[attr-defined]
            await shot(p, "e2e-fleet")
            # discovery ran on the claiming agent: the device page shows its facts from the database
            await p.goto(url + f"/#/device/{NAMES[0]}")  # type: ignore[attr-defined]
            await p.locator("#facts", has_text=sims[0].serial).filter(has_text="SIM-48").wait_for(timeout=30_000)  # type: ignore[attr-defined]
            await shot(p, "e2e-device-facts")

            leases = {lease.device: lease.agent for lease, _ in await inv.lease_list()}
            victim = next(a for a in agents if a.agent_id in leases.values())
            survivor = next(a for a in agents if a is not victim)
            moved = sorted(d for d, holder in leases.items() if holder == victim.agent_id)
            await p.goto(url + "/#/agents")  # type: ignore[attr-defined]
            await p.locator(f'td[data-agent-devices="{victim.agent_id}"]', has_text=str(len(moved))).wait_for(timeout=10_000)  # type: ignore[attr-defined]

            victim.kill()  # kill -9: no goodbye
            await p.locator(f'td[data-agent-devices="{survivor.agent_id}"]', has_text="6").wait_for(timeout=15_000)  # type: ignore[attr-defined]
            await shot(p, "e2e-agents-after-kill")
            await p.goto(url + "/#/fleet")  # type: ignore[attr-defined]
            await p.locator(f'tr[data-name="{moved[0]}"] td', has_text=survivor.agent_id).wait_for(timeout=10_000)  # type: ignore[attr-defined]
            await p.locator(".count", has_text="collecting").filter(has_text="6").wait_for(timeout=30_000)  # type: ignore[attr-defined]
    finally:
        for a in agents:
            a.kill()
        await nc.close()
