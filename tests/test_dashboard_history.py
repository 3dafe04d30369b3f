"""Stored history reaches the device page's charts (real Chromium, the real hub with its database).

The live cache holds about ten minutes; anything older comes from ``/api/query``. History is written
straight into the database (``support.history``) from 6 h ago until 20 min ago, so the only way a chart
can hold a point older than 15 min is through the query API.
"""

from __future__ import annotations

import time

import nats
import pytest
from support.feed import FeedAgent, add_devices
from support.history import seed
from support.telemetry import db
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import operator_db, running_hub, sign_in  # noqa: F401 (operator_db: a fixture)

pytestmark = [pytest.mark.browser]
DEVICE = "leaf-01.dc1"
IN = "/interfaces/interface[name=Ethernet1]/state/counters/in-octets"
OUT = "/interfaces/interface[name=Ethernet1]/state/counters/out-octets"
CPU = "/system/cpus/cpu[index=0]/state/total/instant"


@pytest.mark.asyncio
@pytest.mark.timeout(150)
async def test_device_charts_show_stored_history(bootstrapped: str, operator_db: str,  # noqa: F811
                                                 page: object) -> None:  # noqa: F811
    async with db(operator_db) as conn:
        await seed(conn, DEVICE, [IN, OUT], hours=6, interval_s=60, until_s_ago=1200)
        await seed(conn, DEVICE, [CPU], hours=6, interval_s=60, until_s_ago=1200, gauge=30)
    nc = await nats.connect(bootstrapped)
    p = page
    try:
        await add_devices(nc, [DEVICE])
        agent = await FeedAgent(nc, "agent-a", interval_s=0.5, interfaces=2).start()
        await agent.claim([DEVICE])
        try:
            async with running_hub(bootstrapped, operator_db) as url:
                await sign_in(p, url, f"#/device/{DEVICE}")
                await p.locator('tr[data-if="Ethernet1"]').wait_for(timeout=15_000)  # type: ignore[attr-defined]
                await p.select_option("#range", "6h")  # type: ignore[attr-defined]
                older = (time.time() - 3600) * 1000
                for title in ("traffic", "CPU"):
                    chart = p.locator(".chart", has_text=title).first  # type: ignore[attr-defined]
                    try:
                        await p.wait_for_function(  # type: ignore[attr-defined]
                            "([el, t]) => el.dataset.firstMs && +el.dataset.firstMs < t",
                            arg=[await chart.element_handle(), older], timeout=15_000)
                    except Exception as e:
                        raise AssertionError(f"the {title} chart shows no stored point older than 1 h "
                                             f"(first point: {await chart.get_attribute('data-first-ms')!r})") from e
                await shot(p, "device-history")
        finally:
            await agent.stop()
    finally:
        await nc.close()
