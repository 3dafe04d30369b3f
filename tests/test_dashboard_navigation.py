"""Leaving a page while its requests are still out, in real headless Chromium on the real hub: the answers
that arrive afterwards must not touch the page that replaced it. (Seen as "Cannot set properties of null
(setting 'textContent')" at the end of test_dashboard_e2e: a late answer wrote into an element the next page
had removed.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import nats
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from support.feed import FeedAgent, add_devices
from support.browser import page  # noqa: F401 (the Chromium fixture)
from support.live_app import operator_db, running_hub, sign_in  # noqa: F401 (operator_db: a fixture)

pytestmark = [pytest.mark.browser]
DEVICE = "leaf-01.dc1"
# what the device page asks when it opens: the device, its discovery facts, its stored series
HELD = [f"/api/devices/{DEVICE}", f"/api/devices/{DEVICE}/facts", f"/api/series?device={DEVICE}"]


@contextlib.asynccontextmanager
async def fed_hub(nats_url: str, database_url: str) -> AsyncIterator[str]:
    """The real hub (its URL), with DEVICE held by an agent that feeds 2 interfaces every 0.5 s."""
    nc = await nats.connect(nats_url)
    agent = None
    try:
        await add_devices(nc, [DEVICE])
        agent = await FeedAgent(nc, "agent-a", interval_s=0.5, interfaces=2).start()
        await agent.claim([DEVICE])
        async with running_hub(nats_url, database_url) as url:
            yield url
    finally:
        if agent is not None:
            await agent.stop()
        await nc.close()


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_answers_that_arrive_after_navigation_do_not_touch_the_next_page(
        bootstrapped: str, operator_db: str, page: object) -> None:  # noqa: F811
    p = page
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    nc = await nats.connect(bootstrapped)
    try:
        await add_devices(nc, [DEVICE])
        async with running_hub(bootstrapped, operator_db) as url:
            await sign_in(p, url, "#/fleet")
            await p.locator(f'tr[data-name="{DEVICE}"]').wait_for(timeout=10_000)  # type: ignore[attr-defined]

            # hold the device page's requests until the operator has moved on to the agents page
            held: dict[str, object] = {}
            all_held = asyncio.Event()

            async def hold(route: object) -> None:
                held[route.request.url.removeprefix(url)] = route  # type: ignore[attr-defined]
                if len(held) == len(HELD):
                    all_held.set()

            for path in HELD:
                await p.route(url + path, hold)  # type: ignore[attr-defined]
            await p.goto(url + f"/#/device/{DEVICE}")  # type: ignore[attr-defined]
            try:
                await asyncio.wait_for(all_held.wait(), 10)
            except TimeoutError:
                raise AssertionError(f"the device page asked only {sorted(held)} of {HELD}") from None
            await p.goto(url + "/#/agents")  # type: ignore[attr-defined]
            await p.locator("h1", has_text="Agents").wait_for()  # type: ignore[attr-defined]

            # now the answers: failures (each page's error path writes text) and one success
            await held[HELD[0]].fulfill(status=500, json={"detail": "late failure"})  # type: ignore[attr-defined]
            await held[HELD[1]].fulfill(status=404, json={"detail": "no facts"})  # type: ignore[attr-defined]
            await held[HELD[2]].fulfill(status=200, json=[])  # type: ignore[attr-defined]
            # the bodies have reached the page (resource timing) and a task and a frame have run since: the
            # page's handlers of those answers are done
            arrived = """(paths) => paths.every((path) => performance.getEntriesByType("resource")
                .some((e) => e.name.endsWith(path) && e.responseEnd > 0))"""
            await p.wait_for_function(arrived, arg=HELD, timeout=10_000)  # type: ignore[attr-defined]
            await p.evaluate("() => new Promise((ok) => setTimeout(() => requestAnimationFrame(() => ok()), 0))")  # type: ignore[attr-defined]
            assert not errors, f"late answers to the device page broke the agents page: {errors}"
            # the agents page is intact: the device page wrote nothing into it
            assert await p.locator("#facts, #info, #hint").count() == 0  # type: ignore[attr-defined]
            assert await p.locator("h1").inner_text() == "Agents"  # type: ignore[attr-defined]
    finally:
        await nc.close()


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_live_frames_while_a_widget_waits_for_its_second_query(
        bootstrapped: str, operator_db: str, page: object) -> None:  # noqa: F811
    """The device page's traffic chart has two queries (in, out): live readings of the first arrive while the
    second's answer is still out. (Before, the widget knew the first query's series but had no lines yet:
    "Cannot read properties of undefined (reading 'indexOf')".)"""
    p = page
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    async with fed_hub(bootstrapped, operator_db) as url:
        held: list[object] = []
        out_held = asyncio.Event()

        async def hold(route: object) -> None:
            held.append(route)
            out_held.set()

        await p.route(lambda u: "/api/panel?" in u and "out-octets" in u and "Ethernet1" in u, hold)  # type: ignore[attr-defined]
        await sign_in(p, url, f"#/device/{DEVICE}")
        try:
            await asyncio.wait_for(out_held.wait(), 20)
        except TimeoutError:
            raise AssertionError("the traffic chart never asked for Ethernet1's out-octets") from None
        # live readings reach the page (the interface table moves) while the out query is held
        row = p.locator('tr[data-if="Ethernet1"]')  # type: ignore[attr-defined]
        await row.wait_for(timeout=10_000)
        first = await row.get_attribute("data-in-octets")
        moved = "(v) => document.querySelector('tr[data-if=\"Ethernet1\"]')?.dataset.inOctets !== v"
        try:
            await p.wait_for_function(moved, arg=first, timeout=10_000)  # type: ignore[attr-defined]
        except PlaywrightTimeout:
            pass  # a page whose frame handler throws stops updating: the errors say why
        assert not errors, f"a live frame broke the half-answered widget: {errors}"
        assert await row.get_attribute("data-in-octets") != first, "no live reading reached the page in 10 s"
        for route in held:
            await route.continue_()  # type: ignore[attr-defined]
        chart = p.locator("section.widget").first.locator(".chart")  # type: ignore[attr-defined]
        await p.wait_for_function("(el) => +el.dataset.points > 0", arg=await chart.element_handle(),  # type: ignore[attr-defined]
                                  timeout=10_000)
        assert not errors, errors


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_a_widgets_second_query_failing_first_is_shown_not_thrown(
        bootstrapped: str, operator_db: str, page: object) -> None:  # noqa: F811
    """The traffic chart's out query fails while its in query is still out: the widget shows the error and the
    in line. (Before, the widget awaited its answers one by one, so the failure had no handler yet when it
    came: an "Uncaught (in promise)" page error, seen in CI as a 404 from a hub without /api/panel.)"""
    p = page
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    async with fed_hub(bootstrapped, operator_db) as url:
        held: list[object] = []
        in_held = asyncio.Event()
        out_failed = asyncio.Event()

        async def hold(route: object) -> None:
            held.append(route)
            in_held.set()

        async def fail(route: object) -> None:
            await route.fulfill(status=503, json={"detail": "database is down"})  # type: ignore[attr-defined]
            out_failed.set()

        def ethernet1(leaf: str) -> object:
            return lambda u: "/api/panel?" in u and leaf in u and "Ethernet1" in u

        await p.route(ethernet1("in-octets"), hold)  # type: ignore[attr-defined]
        await p.route(ethernet1("out-octets"), fail)  # type: ignore[attr-defined]
        await sign_in(p, url, f"#/device/{DEVICE}")
        try:
            await asyncio.wait_for(asyncio.gather(in_held.wait(), out_failed.wait()), 20)
        except TimeoutError:
            raise AssertionError("the traffic chart never asked for both of Ethernet1's counters") from None
        # the failure has reached the page (resource timing) and a task has run since
        arrived = """() => performance.getEntriesByType("resource")
            .some((e) => e.name.includes("out-octets") && e.name.includes("Ethernet1") && e.responseEnd > 0)"""
        await p.wait_for_function(arrived, timeout=10_000)  # type: ignore[attr-defined]
        await p.evaluate("() => new Promise((ok) => setTimeout(() => requestAnimationFrame(() => ok()), 0))")  # type: ignore[attr-defined]
        assert not errors, f"a failed query while another was out became a page error: {errors}"
        for route in held:
            await route.continue_()  # type: ignore[attr-defined]
        widget = p.locator("section.widget").first  # type: ignore[attr-defined]
        await widget.locator(".error", has_text="database is down").wait_for(timeout=10_000)
        await p.wait_for_function("(el) => +el.dataset.points > 0",  # type: ignore[attr-defined]
                                  arg=await widget.locator(".chart").element_handle(), timeout=10_000)
        assert not errors, errors
