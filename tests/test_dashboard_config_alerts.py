"""The config and alerts pages in real headless Chromium (Debian's ``chromium`` through Playwright, as in
test_dashboard_browser.py), on the hub from ``create_app`` with authentication: an operator signs in through
the login form; config backups arrive through NATS and the hub's ingest; a firing alert comes from the
alert engine, and is acknowledged with the page's button (session cookie + CSRF token)."""

from __future__ import annotations

import time

import asyncpg
import nats
import pytest
from support.alertdb import alert_pool
from support.waits import eventually
from swtel.hub.alerts import db as alert_db
from swtel.hub.alerts.engine import Engine
from swtel.hub.alerts.rules import Rule
from swtel.hub.alerts.sources import LiveSource
from swtel.shared import naming, wire
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import operator_db, running_hub, sign_in  # noqa: F401 (operator_db: a fixture)

pytestmark = [pytest.mark.browser]
DEVICE = "leaf-01.dc1"
CPU = "/system/cpus/cpu[index=0]/state/total/instant"


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_config_page_shows_versions_text_and_diff(bootstrapped: str, operator_db: str,
                                                         page: object) -> None:  # noqa: F811
    database_url = operator_db
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    texts = ["hostname leaf-01\n!\ninterface Ethernet1\n   no shutdown\n!\n",
             "hostname leaf-01\n!\ninterface Ethernet1\n   no shutdown\n!\n",  # unchanged: no version
             "hostname leaf-01\n!\ninterface Ethernet1\n   description to spine-1\n   no shutdown\n!\n"]
    p = page
    try:
        async with running_hub(bootstrapped, database_url) as url:
            for i, text in enumerate(texts):
                cb = wire.ConfigBackup(device=DEVICE, agent="agent-a", token=3, ts=time.time_ns() + i, format="text",
                                       text=text)
                await js.publish(naming.config_subject(DEVICE), wire.encode(cb))

            async def two_versions() -> bool:
                conn = await asyncpg.connect(database_url)
                try:
                    stored = await conn.fetchval("SELECT count(*) FROM config_backups")
                finally:
                    await conn.close()
                info = await js.consumer_info(naming.STREAM_EVENTS, "swtel-hub-events")
                return stored == 2 and info.num_pending == 0 and info.num_ack_pending == 0

            await eventually(two_versions, timeout=20, what="two versions stored")
            await sign_in(p, url, f"#/config/{DEVICE}")
            rows = p.locator("#versions tr[data-version]")  # type: ignore[attr-defined]
            await rows.nth(1).wait_for(timeout=10_000)
            assert await rows.count() == 2
            # opens on the diff of the previous version against the latest
            await p.locator("pre.diff .d-add", has_text="+   description to spine-1").wait_for(timeout=10_000)  # type: ignore[attr-defined]
            assert await p.locator("pre.diff .d-del").count() == 0  # type: ignore[attr-defined]
            assert "version 1 → 2" in await p.locator("#title").inner_text()  # type: ignore[attr-defined]
            await shot(p, "config-diff")

            # one version's text
            await p.click('#versions tr[data-version="1"]')  # type: ignore[attr-defined]
            await p.locator("#title", has_text="version 1 ·").wait_for(timeout=5_000)  # type: ignore[attr-defined]
            assert await p.locator("pre.config").inner_text() == texts[0]  # type: ignore[attr-defined]
            # the reverse diff, chosen in the selects
            await p.select_option("#a", "2")  # type: ignore[attr-defined]
            await p.select_option("#b", "1")  # type: ignore[attr-defined]
            await p.click("#diff")  # type: ignore[attr-defined]
            await p.locator("pre.diff .d-del", has_text="-   description to spine-1").wait_for(timeout=5_000)  # type: ignore[attr-defined]

            # reached from the device page
            await p.goto(url + f"/#/device/{DEVICE}")  # type: ignore[attr-defined]
            await p.click("h1 a.sub")  # type: ignore[attr-defined]
            await p.wait_for_url(f"**/#/config/{DEVICE}")  # type: ignore[attr-defined]
            await rows.nth(1).wait_for(timeout=10_000)
            # a device without backups says so
            await p.goto(url + "/#/config/nobody")  # type: ignore[attr-defined]
            await p.locator("#status .error", has_text="no config backups").wait_for(timeout=5_000)  # type: ignore[attr-defined]
    finally:
        await nc.close()


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_alerts_page_lists_a_firing_alert_and_acknowledges_it(bootstrapped: str, operator_db: str,
                                                                     page: object) -> None:  # noqa: F811
    database_url = operator_db
    p = page
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await alert_db.add_rule(conn, Rule(name="cpu-high", device=DEVICE, path=CPU, condition="above",
                                               threshold=90, for_s=0, severity="critical"))
        src = LiveSource([wire.Device(name=DEVICE, address="127.0.0.1", port=9339, protocol="gnmi")])
        now = time.time()
        src.observe(DEVICE, CPU, 99, now)
        await Engine(pool, src).evaluate_once(now)  # for_s = 0: firing at once

        # the page is under test, not the hub's own alerting (which would resolve this alert at once: the
        # device is in no inventory), so this hub stays out of the fleet-work election
        async with running_hub(bootstrapped, database_url, hub_fleet_work=False) as url:
            await sign_in(p, url, "#/alerts")
            row = p.locator("#alerts tr[data-alert]")  # type: ignore[attr-defined]
            await row.first.wait_for(timeout=10_000)
            assert await row.count() == 1
            text = await row.first.inner_text()
            assert "cpu-high" in text and DEVICE in text and "firing" in text and "critical" in text
            history = p.locator("#history tr[data-alert]")  # type: ignore[attr-defined]
            assert await history.count() == 1  # ok → firing
            await shot(p, "alerts-firing")

            await p.click("button[data-ack]")  # type: ignore[attr-defined]
            await p.locator("#alerts td", has_text="by op").wait_for(timeout=10_000)  # type: ignore[attr-defined]
            assert await p.locator("button[data-ack]").count() == 0  # type: ignore[attr-defined]
            await p.locator("#history td", has_text="acknowledged").first.wait_for(timeout=10_000)  # type: ignore[attr-defined]
            (alert,) = [a for a in await _alerts(pool) if a.rule == "cpu-high"]
            assert alert.acknowledged and alert.acked_by == "op"  # the signed-in user, through session + CSRF
            await shot(p, "alerts-acknowledged")


async def _alerts(pool: asyncpg.Pool) -> list[alert_db.AlertView]:
    async with pool.acquire() as conn:
        return await alert_db.list_alerts(conn)
