"""User dashboards built through the UI in real headless Chromium, on the real hub (``create_app`` with its
database and authentication): an operator builds one, reloads it, widens the range to 6 h and sees points
the database held from before (written straight into it), exports it, imports the file again, downloads a
widget's CSV; a viewer then reads it but cannot edit (no edit controls, and the API refuses a write).
Screenshots: test-artifacts/{dashboard-user,dashboard-edit,dashboards}.png."""

from __future__ import annotations

import json
import re
import time

import asyncpg
import nats
import pytest
import pytest_asyncio
from support.feed import FeedAgent, add_devices
from support.history import seed
from support.telemetry import db
from swtel.hub.auth import store
from swtel.hub.auth.passwords import hash_password_sync
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import PASSWORD, operator_db, running_hub  # noqa: F401 (operator_db: a fixture)

pytestmark = [pytest.mark.browser]
DEVICE = "leaf-01.dc1"
IFS = [f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-octets" for i in (1, 2)]
PATTERN = "/interfaces/interface[name=*]/state/counters/in-octets"


@pytest_asyncio.fixture
async def users_db(operator_db: str) -> str:  # noqa: F811
    """The operator ``op`` and the viewer ``noc``, both with ``PASSWORD``."""
    conn = await asyncpg.connect(operator_db)
    try:
        await store.add_user(conn, "noc", "viewer", hash_password_sync(PASSWORD))
    finally:
        await conn.close()
    return operator_db


async def sign_in(p: object, url: str, user: str, hash_: str) -> None:
    await p.goto(url + "/login")  # type: ignore[attr-defined]
    await p.fill('input[name="name"]', user)  # type: ignore[attr-defined]
    await p.fill('input[name="password"]', PASSWORD)  # type: ignore[attr-defined]
    await p.click('button[type="submit"]')  # type: ignore[attr-defined]
    await p.wait_for_url(url + "/")  # type: ignore[attr-defined]
    await p.goto(url + "/" + hash_)  # type: ignore[attr-defined]


async def add_widget(p: object, *, type_: str, title: str, unit: str, path: str, fn: str, scale: str,
                     legend: str) -> None:
    await p.click("#add")  # type: ignore[attr-defined]
    form = p.locator("#wform")  # type: ignore[attr-defined]
    await form.locator('[name="type"]').select_option(type_)
    await form.locator('[name="title"]').fill(title)
    await form.locator('[name="unit"]').fill(unit)
    q = form.locator(".query").first
    await q.locator('[name="path"]').fill(path)
    await q.locator('[name="fn"]').select_option(fn)
    await q.locator('[name="scale"]').fill(scale)
    await q.locator('[name="legend"]').fill(legend)
    await form.locator("#wok").click()
    await form.wait_for(state="hidden")


async def board_loaded(p: object, after: float = 0) -> None:
    await p.wait_for_function("(t) => +(document.querySelector('.board')?.dataset.loaded || 0) > t", arg=after,  # type: ignore[attr-defined]
                              timeout=15_000)


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_build_reload_range_export_import_and_viewer(bootstrapped: str, users_db: str, page: object,  # noqa: F811
                                                           tmp_path: object) -> None:
    async with db(users_db) as conn:
        await seed(conn, DEVICE, IFS, hours=6, interval_s=60, until_s_ago=1200, counter_rate=1e5)
    nc = await nats.connect(bootstrapped)
    p = page
    try:
        await add_devices(nc, [DEVICE])
        agent = await FeedAgent(nc, "agent-a", interval_s=0.5, interfaces=2).start()
        await agent.claim([DEVICE])
        try:
            async with running_hub(bootstrapped, users_db) as url:
                # an operator builds a dashboard through the UI
                await sign_in(p, url, "op", "#/dashboards")
                await p.click("#new")  # type: ignore[attr-defined]
                await p.locator("#dtitle").fill("Core traffic")  # type: ignore[attr-defined]
                await p.locator('select[data-var="device"]').select_option(DEVICE)  # type: ignore[attr-defined]
                await add_widget(p, type_="line", title="in traffic", unit="bit/s", path=PATTERN, fn="rate",
                                 scale="8", legend="{name}")
                await add_widget(p, type_="topn", title="top in", unit="bit/s", path=PATTERN, fn="rate",
                                 scale="8", legend="{name}")
                await add_widget(p, type_="table", title="in table", unit="bit/s", path=PATTERN, fn="rate",
                                 scale="8", legend="{name}")
                await shot(p, "dashboard-edit")
                await p.click("#save")  # type: ignore[attr-defined]
                await p.wait_for_url(re.compile(r"#/dashboard/\d+$"))  # type: ignore[attr-defined]
                dash_url = p.url  # type: ignore[attr-defined]
                dash_id = dash_url.rsplit("/", 1)[1]
                assert dash_id.isdigit(), dash_url

                # reload: it comes back from the database
                await p.reload()  # type: ignore[attr-defined]
                await board_loaded(p)
                assert await p.locator("#title").inner_text() == "Core traffic"  # type: ignore[attr-defined]
                widgets = p.locator("section.widget")  # type: ignore[attr-defined]
                assert await widgets.count() == 3
                assert "in traffic" in await widgets.nth(0).inner_text()
                # live continuation: the line chart grows while the page is open
                chart = widgets.nth(0).locator(".chart")
                await p.wait_for_function("(el) => +el.dataset.points > 0", arg=await chart.element_handle(),  # type: ignore[attr-defined]
                                          timeout=15_000)
                before = int(await chart.get_attribute("data-points"))
                await p.wait_for_function("([el, n]) => +el.dataset.points > n",  # type: ignore[attr-defined]
                                          arg=[await chart.element_handle(), before], timeout=15_000)

                # 6 h: points stored long before the live cache's ten minutes
                t = time.time() * 1000
                await p.select_option("#range", "6h")  # type: ignore[attr-defined]
                await board_loaded(p, t)
                chart = widgets.nth(0).locator(".chart")
                first = float(await chart.get_attribute("data-first-ms"))
                assert first < (time.time() - 5 * 3600) * 1000, f"first point {first} is not from 5 h+ ago"
                assert await widgets.nth(1).locator(".plot").get_attribute("data-rows") == "2"  # top-N
                assert await widgets.nth(2).locator("tbody tr").count() == 2  # table
                await shot(p, "dashboard-user")

                # a widget's CSV
                async with p.expect_download() as dl:  # type: ignore[attr-defined]
                    await widgets.nth(0).locator('button[data-act="csv"]').click()
                csv_text = (await (await dl.value).path()).read_text()
                lines = csv_text.splitlines()
                assert lines[0] == "time,series,device,path,value" and len(lines) > 300
                assert any(f'"{DEVICE}","{IFS[1]}"' in line for line in lines)

                # a widget's PNG (Plotly's image export)
                async with p.expect_download() as dl:  # type: ignore[attr-defined]
                    await widgets.nth(1).locator('button[data-act="png"]').click()
                png = (await (await dl.value).path()).read_bytes()
                assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000 and (await dl.value).suggested_filename == "top-in.png"

                # an absolute range, entered in UTC: the widgets show that window and nothing live
                await p.check("#utc")  # type: ignore[attr-defined]
                await p.select_option("#range", "abs")  # type: ignore[attr-defined]
                frm, to = time.time() - 5 * 3600, time.time() - 4 * 3600
                fmt = "%Y-%m-%dT%H:%M"
                await p.fill("#from", time.strftime(fmt, time.gmtime(frm)))  # type: ignore[attr-defined]
                await p.fill("#to", time.strftime(fmt, time.gmtime(to)))  # type: ignore[attr-defined]
                t = time.time() * 1000
                await p.click("#apply")  # type: ignore[attr-defined]
                await board_loaded(p, t)
                chart = widgets.nth(0).locator(".chart")
                first = float(await chart.get_attribute("data-first-ms"))
                assert (frm - 60) * 1000 <= first <= (frm + 300) * 1000, (first, frm)
                assert int(await chart.get_attribute("data-points")) <= 2 * 61  # one hour, two series, 60 s apart

                # export, then import the file: a second dashboard with the same widgets
                async with p.expect_download() as dl:  # type: ignore[attr-defined]
                    await p.click("#export")  # type: ignore[attr-defined]
                exported = tmp_path / "core.json"  # type: ignore[operator]
                await (await dl.value).save_as(str(exported))
                doc = json.loads(exported.read_text())
                assert doc["title"] == "Core traffic" and len(doc["spec"]["widgets"]) == 3
                await p.goto(url + "/#/dashboards")  # type: ignore[attr-defined]
                await p.locator(f'tr[data-dashboard="{dash_id}"]').wait_for(timeout=10_000)  # type: ignore[attr-defined]
                await p.set_input_files("#import", str(exported))  # type: ignore[attr-defined]
                await p.locator("#title", has_text="Core traffic (2)").wait_for(timeout=10_000)  # type: ignore[attr-defined]
                await board_loaded(p)
                assert await p.locator("section.widget").count() == 3  # type: ignore[attr-defined]
                await p.goto(url + "/#/dashboards")  # type: ignore[attr-defined]
                await p.locator("#list tr[data-dashboard]").nth(1).wait_for(timeout=10_000)  # type: ignore[attr-defined]
                await shot(p, "dashboards")

                # a viewer reads it, and cannot edit
                await p.click("#logout")  # type: ignore[attr-defined]
                await p.wait_for_url("**/login**")  # type: ignore[attr-defined]
                await sign_in(p, url, "noc", f"#/dashboard/{dash_id}")
                await board_loaded(p)
                assert await p.locator("section.widget").count() == 3  # type: ignore[attr-defined]
                assert await p.locator("#edit").is_hidden()  # type: ignore[attr-defined]
                assert await p.locator('button[data-act="edit"]').count() == 0  # type: ignore[attr-defined]
                status = await p.evaluate("""async (id) => {
                    const { csrf_token: token } = await (await fetch("/api/csrf")).json();
                    const r = await fetch(`/api/dashboards/${id}`, { method: "PUT", headers: {
                      "content-type": "application/json", "X-CSRFToken": token },
                      body: JSON.stringify({ title: "taken over", spec: {} }) });
                    return r.status; }""", dash_id)  # type: ignore[attr-defined]
                assert status == 403
                await p.goto(url + "/#/dashboards")  # type: ignore[attr-defined]
                await p.locator("#list tr[data-dashboard]").first.wait_for(timeout=10_000)  # type: ignore[attr-defined]
                assert await p.locator("#tools").is_hidden()  # type: ignore[attr-defined]
                assert await p.locator("button[data-delete]").count() == 0  # type: ignore[attr-defined]
        finally:
            await agent.stop()
    finally:
        await nc.close()
