"""Rearranging a dashboard by dragging, in real headless Chromium on the real hub (``create_app`` with its
database and authentication): an operator drags a widget to a new place and another's corner to a new size,
saves, reloads, and the layout stays; a viewer gets no handles and a drag changes nothing.
Screenshot: test-artifacts/dashboard-layout.png."""

from __future__ import annotations

import pytest
from support.browser import page, shot  # noqa: F401 (the Chromium fixture)
from support.live_app import operator_db, running_hub  # noqa: F401 (operator_db: a fixture)
from test_dashboard_user import PASSWORD, board_loaded, sign_in, users_db  # noqa: F401 (users_db: a fixture)

pytestmark = [pytest.mark.browser]
SPEC = {"range": "1h", "variables": [], "widgets": [
    {"type": "stat", "title": title, "unit": "", "w": 4, "h": 1,
     "queries": [{"device": "*", "path": f"/nothing/{title}", "fn": "last"}]} for title in ("A", "B", "C")]}

CREATE = """async (spec) => {
    const { csrf_token: token } = await (await fetch("/api/csrf")).json();
    const r = await fetch("/api/dashboards", { method: "POST", headers: { "content-type": "application/json",
      "X-CSRFToken": token }, body: JSON.stringify({ title: "layout", shared: true, spec }) });
    return (await r.json()).id; }"""


async def titles(p: object) -> list[str]:
    return await p.locator("section.widget .wtitle").all_inner_texts()  # type: ignore[attr-defined]


async def drag(p: object, source: object, x: float, y: float) -> None:
    """Press on `source` (a locator), move to (x, y) in steps, release: pointer events as a mouse makes them."""
    box = await source.bounding_box()  # type: ignore[attr-defined]
    await p.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # type: ignore[attr-defined]
    await p.mouse.down()  # type: ignore[attr-defined]
    await p.mouse.move(x, y, steps=8)  # type: ignore[attr-defined]
    await p.mouse.up()  # type: ignore[attr-defined]


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_drag_to_move_and_resize_is_saved_and_viewers_cannot_drag(bootstrapped: str, users_db: str,  # noqa: F811
                                                                         page: object) -> None:  # noqa: F811
    database_url = users_db  # an operator "op" and a viewer "noc"
    p = page
    async with running_hub(bootstrapped, database_url) as url:
        await sign_in(p, url, "op", "#/dashboards")
        dash_id = await p.evaluate(CREATE, SPEC)  # type: ignore[attr-defined]
        await p.goto(f"{url}/#/dashboard/{dash_id}")  # type: ignore[attr-defined]
        await board_loaded(p)
        assert await titles(p) == ["A", "B", "C"]
        assert await p.locator(".resize").count() == 0  # type: ignore[attr-defined]  # not while reading

        await p.click("#edit")  # type: ignore[attr-defined]
        await p.locator("section.widget.editable .resize").nth(2).wait_for()  # type: ignore[attr-defined]
        widgets = p.locator("section.widget")  # type: ignore[attr-defined]
        # A's header onto C's right half: A goes after C
        c = await widgets.nth(2).bounding_box()
        await drag(p, widgets.nth(0).locator(".wtitle"), c["x"] + c["width"] * 0.8, c["y"] + c["height"] / 2)
        assert await titles(p) == ["B", "C", "A"]
        # B's corner to twice its width and two rows high
        b = await widgets.nth(0).bounding_box()
        gap = 12
        await drag(p, widgets.nth(0).locator(".resize"), b["x"] + 2 * b["width"] + gap - 4, b["y"] + 2 * b["height"] + gap - 4)
        assert await widgets.nth(0).evaluate("e => [e.style.gridColumn, e.style.gridRow]") == ["span 8", "span 2"]
        await shot(p, "dashboard-layout")
        await p.click("#save")  # type: ignore[attr-defined]
        await p.locator("#edit").wait_for()  # type: ignore[attr-defined]

        # reload: the layout came back from the database
        await p.reload()  # type: ignore[attr-defined]
        await board_loaded(p)
        assert await titles(p) == ["B", "C", "A"]
        assert await widgets.nth(0).evaluate("e => [e.style.gridColumn, e.style.gridRow]") == ["span 8", "span 2"]
        stored = await p.evaluate("async (id) => (await (await fetch(`/api/dashboards/${id}`)).json()).spec.widgets",  # type: ignore[attr-defined]
                                  dash_id)
        assert [(w["title"], w["w"], w["h"]) for w in stored] == [("B", 8, 2), ("C", 4, 1), ("A", 4, 1)]

        # a viewer: no handles, and dragging a header moves nothing
        await p.click("#logout")  # type: ignore[attr-defined]
        await p.wait_for_url("**/login**")  # type: ignore[attr-defined]
        await sign_in(p, url, "noc", f"#/dashboard/{dash_id}")
        await board_loaded(p)
        assert await p.locator(".resize, section.widget.editable").count() == 0  # type: ignore[attr-defined]
        c = await widgets.nth(2).bounding_box()
        await drag(p, widgets.nth(0).locator(".wtitle"), c["x"] + c["width"] * 0.8, c["y"] + c["height"] / 2)
        assert await titles(p) == ["B", "C", "A"]
