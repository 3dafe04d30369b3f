"""The outputs page on the real hub in real Chromium, signed in as a viewer: a delivering output (real
InfluxDB 1.x) shows running, no lag and what it delivered; one that cannot deliver (its credential is not
defined on the hub host) shows the error state, the error and the growing age of what waits for it; a
paused one shows paused. Screenshot: test-artifacts/pages-outputs.png."""

from __future__ import annotations

import asyncpg
import nats
import pytest

from support import tsdb
from support.ports import free_port
from support.telemetry import make_batch, migrate, publish
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import running_hub
from swtel.hub.auth import store
from swtel.hub.auth.passwords import hash_password_sync
from swtel.hub.outputs.model import OutputStore, make_output

pytestmark = [pytest.mark.browser]
PASSWORD = "viewer-pass-4e1b"
BATCHES, PATHS = 6, 5


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_outputs_page_shows_state_lag_and_counts(bootstrapped: str, database_url: str,
                                                       page: object) -> None:  # noqa: F811
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    await store.add_user(conn, "noc", "viewer", hash_password_sync(PASSWORD))
    await conn.close()
    p = page
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    try:
        with tsdb.InfluxDB1() as influx:
            influx.query("CREATE DATABASE swtel")
            outs = await OutputStore.open(js)
            await outs.add(make_output("influx", "influx", url=influx.url, database="swtel"))
            down = f"http://127.0.0.1:{free_port()}/api/v1/write"
            await outs.add(make_output("prom", "remote_write", url=down, auth="basic", credential="prom/rw"))
            await outs.add(make_output("later", "influx", url=influx.url, database="swtel"))
            await outs.set_paused("later", True)
            async with running_hub(bootstrapped, database_url) as url:
                for seq in range(1, BATCHES + 1):
                    await publish(js, make_batch("sw1", seq, agent="a1", paths=PATHS))
                await p.goto(url + "/")  # type: ignore[attr-defined]
                await p.wait_for_url("**/login**")  # type: ignore[attr-defined]
                await p.fill('input[name="name"]', "noc")  # type: ignore[attr-defined]
                await p.fill('input[name="password"]', PASSWORD)  # type: ignore[attr-defined]
                await p.click('button[type="submit"]')  # type: ignore[attr-defined]
                await p.wait_for_url(url + "/")  # type: ignore[attr-defined]
                await p.click('nav a[data-page="outputs"]')  # type: ignore[attr-defined]

                ok = p.locator('tr[data-output="influx"]')  # type: ignore[attr-defined]
                await ok.locator('[data-col="delivered"]', has_text=str(BATCHES * PATHS)).wait_for(timeout=60_000)
                await ok.locator('[data-col="lag-messages"]', has_text="0").wait_for(timeout=20_000)
                assert "running" in await ok.locator('[data-col="state"]').inner_text()

                bad = p.locator('tr[data-output="prom"]')  # type: ignore[attr-defined]
                await bad.locator('[data-col="state"] .badge', has_text="error").wait_for(timeout=30_000)
                # the lag is read from the consumer every 2 s and the page every 2 s
                await p.wait_for_function(  # type: ignore[attr-defined]
                    """() => +document.querySelector('tr[data-output="prom"] [data-col="lag-messages"]')
                       .textContent > 0""", timeout=20_000)
                await p.wait_for_function(  # type: ignore[attr-defined]  # not delivered: the age grows
                    """() => parseFloat(document.querySelector('tr[data-output="prom"] [data-col="lag-seconds"]')
                       .textContent) >= 1""", timeout=20_000)
                error = await bad.locator('[data-col="error"]').inner_text()
                assert "credential 'prom/rw' is not defined" in error, error  # the secret lives on the hub host
                dest = await bad.locator(".dest").inner_text()
                assert down in dest and "credential prom/rw" in dest, dest
                assert await bad.locator('[data-col="delivered"]').inner_text() == "0"

                paused = p.locator('tr[data-output="later"]')  # type: ignore[attr-defined]
                assert "paused" in await paused.locator('[data-col="state"] .badge').inner_text()
                await shot(p, "pages-outputs")
    finally:
        await nc.close()
