"""The fixed pages on the real hub in real Chromium: distinct agent colours (never red while the holder
lives), the gNMI note on the config page, the hint on a device never collected, the styled login form with a
readable throttle message, and logout. Screenshots: test-artifacts/pages-{fleet,device,agents,login}.png."""

from __future__ import annotations

import nats
import pytest
from support.feed import FeedAgent, add_devices
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import operator_db, running_hub, sign_in  # noqa: F401 (operator_db: a fixture)

pytestmark = [pytest.mark.browser]
NAMES = [f"leaf-{i:02d}.dc1" for i in range(1, 9)]
RED = "rgb(248, 81, 73)"


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_agents_colours_config_note_never_collected_hint_login_and_logout(
        bootstrapped: str, operator_db: str, page: object) -> None:  # noqa: F811
    nc = await nats.connect(bootstrapped)
    p = page
    try:
        await add_devices(nc, NAMES)
        a = await FeedAgent(nc, "demo-agent-1", interval_s=1, interfaces=4).start()
        b = await FeedAgent(nc, "demo-agent-2", interval_s=1, interfaces=4).start()
        await a.claim(NAMES[:3])
        await b.claim(NAMES[3:6])  # the last two are never collected
        try:
            async with running_hub(bootstrapped, operator_db) as url:
                await sign_in(p, url, "#/fleet")
                await p.locator(".count", has_text="collecting").filter(has_text="6").wait_for(timeout=20_000)  # type: ignore[attr-defined]
                await shot(p, "pages-fleet")

                await p.goto(url + "/#/agents")  # type: ignore[attr-defined]
                rows = p.locator("#held tr[data-agent]")  # type: ignore[attr-defined]
                await rows.nth(1).wait_for(timeout=10_000)
                colours = [await rows.nth(i).locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor")
                           for i in range(2)]
                assert colours[0] != colours[1] and RED not in colours, colours
                await shot(p, "pages-agents")

                # gNMI devices are never backed up: the config page says so instead of "no backups yet"
                await p.goto(url + f"/#/config/{NAMES[0]}")  # type: ignore[attr-defined]
                note = p.locator("#gnmi-note")  # type: ignore[attr-defined]
                await note.wait_for(timeout=10_000)
                assert "not backed up" in await note.inner_text()
                assert await p.locator("#status .error").count() == 0  # type: ignore[attr-defined]

                # a device never collected: a hint says why its charts are empty
                await p.goto(url + f"/#/device/{NAMES[-1]}")  # type: ignore[attr-defined]
                hint = p.locator("#hint")  # type: ignore[attr-defined]
                await hint.wait_for(timeout=10_000)
                assert "never been collected" in await hint.inner_text()
                await p.goto(url + f"/#/device/{NAMES[0]}")  # type: ignore[attr-defined]
                await p.locator('tr[data-if="Ethernet1"]').wait_for(timeout=10_000)  # type: ignore[attr-defined]
                await p.wait_for_function("+(document.querySelector('.board')?.dataset.loaded || 0) > 0")  # type: ignore[attr-defined]
                assert await p.locator("#hint").is_hidden()  # type: ignore[attr-defined]
                await shot(p, "pages-device")

                # logout: back to the (styled) login form; failed attempts end in a readable throttle message
                await p.click("#logout")  # type: ignore[attr-defined]
                await p.wait_for_url("**/login**")  # type: ignore[attr-defined]
                for _ in range(20):
                    await p.fill('input[name="name"]', "op")  # type: ignore[attr-defined]
                    await p.fill('input[name="password"]', "wrong")  # type: ignore[attr-defined]
                    await p.click('button[type="submit"]')  # type: ignore[attr-defined]
                    await p.wait_for_load_state()  # type: ignore[attr-defined]
                    if "throttled=" in p.url:  # type: ignore[attr-defined]
                        break
                alert = p.locator(".alert")  # type: ignore[attr-defined]
                assert "Too many failed sign-ins. Try again in" in await alert.inner_text()
                assert "{" not in await p.locator("body").inner_text()  # type: ignore[attr-defined]
                await shot(p, "pages-login")
        finally:
            await a.stop()
            await b.stop()
    finally:
        await nc.close()
