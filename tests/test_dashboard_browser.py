"""The dashboard in real headless Chromium (``support.browser``) on the real hub (``create_app``, an operator
signed in through the login form). Screenshots of each page land in ``test-artifacts/``.

Agents here are ``support.feed.FeedAgent``: real KV presence and leases and real telemetry on NATS, written
the way agents write them. To run against real agents, replace ``start_agent``/``kill_agent`` with
``swtel agent run`` processes (and the simulator) and SIGKILL; the assertions stay the same.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.feed import FeedAgent, add_devices
from support.live_app import operator_db, running_hub, sign_in  # noqa: F401 (operator_db: a fixture)
from support.waits import eventually
from swtel.shared.inventory import Inventory

pytestmark = [pytest.mark.browser]


@contextlib.asynccontextmanager
async def hub_and_fleet(nats_url: str, database_url: str) -> AsyncIterator[tuple[str, NATS]]:
    """The real hub (its base URL) and a NATS connection for writing the inventory and running agents."""
    nc = await nats.connect(nats_url)
    try:
        async with running_hub(nats_url, database_url) as url:
            yield url, nc
    finally:
        await nc.close()


async def start_agent(nc: object, agent_id: str, devices: list[str]) -> FeedAgent:
    agent = await FeedAgent(nc, agent_id, interval_s=0.5, interfaces=8).start()  # type: ignore[arg-type]
    await agent.claim(devices)
    return agent


async def kill_agent(agent: FeedAgent) -> None:
    await agent.kill()


NAMES = [f"leaf-{i:02d}.dc1" for i in range(1, 13)]


@pytest.mark.asyncio
async def test_fleet_and_device_pages_show_live_data(bootstrapped: str, operator_db: str,
                                                      page: object) -> None:  # noqa: F811
    p = page
    async with hub_and_fleet(bootstrapped, operator_db) as (url, nc):
        await add_devices(nc, NAMES)
        agent = await start_agent(nc, "agent-a", NAMES[:10])  # the last two stay unassigned
        try:
            await sign_in(p, url, "#/fleet")
            for name in NAMES:
                await p.wait_for_selector(f'tr[data-name="{name}"]', timeout=10_000)  # type: ignore[attr-defined]
            counts = p.locator(".count")  # type: ignore[attr-defined]
            await counts.filter(has_text="collecting").filter(has_text="10").wait_for(timeout=10_000)
            await counts.filter(has_text="unassigned").filter(has_text="2").wait_for()
            assert await p.locator('tr[data-name="leaf-01.dc1"] td').nth(2).inner_text() == "agent-a"  # type: ignore[attr-defined]
            await shot(p, "fleet")
            await p.fill("#q", "leaf-03")  # type: ignore[attr-defined]
            await p.locator("#shown", has_text="1 of 12").wait_for()  # type: ignore[attr-defined]
            await p.fill("#q", "")  # type: ignore[attr-defined]

            # device page: the interface counters move on their own, within a few seconds
            await p.click('a[href="#/device/leaf-01.dc1"]')  # type: ignore[attr-defined]
            row = p.locator('tr[data-if="Ethernet1"]')  # type: ignore[attr-defined]
            await row.wait_for(timeout=10_000)
            first = int(await row.get_attribute("data-in-octets"))

            async def grew() -> int | None:
                now = int(await row.get_attribute("data-in-octets"))
                return now if now > first else None

            await eventually(grew, timeout=5, what="Ethernet1's in-octets to grow on the device page")
            in_bps = row.locator("td").nth(2)
            await eventually(lambda: _text_has_digit(in_bps), timeout=5, what="an in bit/s rate")
            await p.locator("#cpu", has_text="%").wait_for()  # type: ignore[attr-defined]
            await p.locator("#temp", has_text="°C").wait_for()  # type: ignore[attr-defined]
            await p.wait_for_function("document.querySelectorAll('.chart path').length >= 2")  # type: ignore[attr-defined]
            await shot(p, "device")
        finally:
            await agent.stop()


async def _text_has_digit(locator: object) -> bool:
    return any(c.isdigit() for c in await locator.inner_text())  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_killing_an_agent_moves_its_devices_to_another(bootstrapped: str, operator_db: str,
                                                            page: object) -> None:  # noqa: F811
    p = page
    async with hub_and_fleet(bootstrapped, operator_db) as (url, nc):
        await add_devices(nc, NAMES)
        a = await start_agent(nc, "agent-a", NAMES[:6])
        b = await start_agent(nc, "agent-b", NAMES[6:])
        try:
            await sign_in(p, url, "#/agents")
            await p.locator('td[data-agent-devices="agent-a"]', has_text="6").wait_for(timeout=10_000)  # type: ignore[attr-defined]
            await p.locator('td[data-agent-devices="agent-b"]', has_text="6").wait_for()  # type: ignore[attr-defined]
            await shot(p, "agents-before")

            await kill_agent(a)
            inv = await Inventory.open(nc.jetstream())

            async def a_gone() -> bool:
                return "agent-a" not in [x.id for x in await inv.agent_list()]

            # presence expires after its TTL; then the survivor takes the orphans over, as agents do
            await eventually(a_gone, timeout=10, what="agent-a's presence to expire")
            await p.locator('tr[data-agent="agent-a"]', has_text="gone").wait_for(timeout=5_000)  # type: ignore[attr-defined]
            await b.claim(NAMES[:6])
            await p.locator('td[data-agent-devices="agent-b"]', has_text="12").wait_for(timeout=5_000)  # type: ignore[attr-defined]
            assert await p.locator('td[data-agent-devices="agent-a"]').count() == 0  # type: ignore[attr-defined]
            await shot(p, "agents")

            await p.goto(url + "/#/fleet")  # type: ignore[attr-defined]
            await p.locator('tr[data-name="leaf-01.dc1"] td', has_text="agent-b").wait_for(timeout=5_000)  # type: ignore[attr-defined]
            await p.locator(".count", has_text="collecting").filter(has_text="12").wait_for(timeout=10_000)  # type: ignore[attr-defined]

            await p.goto(url + "/#/events")  # type: ignore[attr-defined]
            moved = p.locator('tr[data-kind="lease_acquired"]', has_text="agent-b")  # type: ignore[attr-defined]
            await moved.filter(has_text="leaf-01.dc1").first.wait_for(timeout=5_000)
            await shot(p, "events")
        finally:
            await a.stop()
            await b.stop()


@pytest.mark.asyncio
async def test_fleet_view_stays_responsive_with_5000_devices(bootstrapped: str, operator_db: str,
                                                            page: object) -> None:  # noqa: F811
    p = page
    names = [f"sw{i:05d}.example.net" for i in range(5000)]
    async with hub_and_fleet(bootstrapped, operator_db) as (url, nc):
        await add_devices(nc, names)
        # a tenth of them live, so rows keep changing while the page is used
        agent = await FeedAgent(nc, "agent-a", interval_s=1.0, interfaces=1).start()
        await agent.claim(names[::10])
        try:
            await sign_in(p, url, "#/fleet")
            await p.locator("#shown", has_text="5000 of 5000").wait_for(timeout=15_000)  # type: ignore[attr-defined]
            await p.locator(".count", has_text="collecting").filter(has_text="500").wait_for(timeout=15_000)  # type: ignore[attr-defined]
            await _use_big_fleet(p)
        finally:
            await agent.stop()


async def _use_big_fleet(p: object) -> None:
    """Virtualised rows, quick scrolling and searching, animation frames not starved."""
    rows = await p.locator("#rows tr[data-name]").count()  # type: ignore[attr-defined]
    assert 0 < rows < 200, f"{rows} rows in the DOM: the table is not virtualised"
    # scrolling to the end renders the last device quickly; a frozen page would not answer
    t0 = time.monotonic()
    await p.evaluate("document.getElementById('scroll').scrollTop = 1e9")  # type: ignore[attr-defined]
    await p.wait_for_selector('tr[data-name="sw04999.example.net"]', timeout=3_000)  # type: ignore[attr-defined]
    busy = await p.evaluate("""() => new Promise((ok) => {
        const t = performance.now(); requestAnimationFrame(() => ok(performance.now() - t)); })""")  # type: ignore[attr-defined]
    assert busy < 500, f"the page needed {busy:.0f} ms for one animation frame"
    await p.fill("#q", "sw0420")  # type: ignore[attr-defined]
    await p.locator("#shown", has_text="10 of 5000").wait_for(timeout=3_000)  # type: ignore[attr-defined]
    assert time.monotonic() - t0 < 10
    await p.fill("#q", "")  # type: ignore[attr-defined]
    await shot(p, "fleet-5000")

