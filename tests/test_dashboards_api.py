"""User dashboards and the widget query (``/api/dashboards``, ``/api/panel``) on the real hub app with its
database and authentication: viewers read, operators write, personal dashboards stay personal, export and
import round-trip, and a wildcard widget query returns stored history of many series in one answer."""

from __future__ import annotations

import time

import httpx
import pytest
from support.history import seed
from support.telemetry import api_token, db, migrate, refresh_aggregates
from support.live_app import running_hub

DEVICE = "leaf-01.dc1"
IFS = [f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-octets" for i in range(1, 5)]
SPEC = {"range": "6h", "variables": [{"name": "device", "default": DEVICE}],
        "widgets": [{"type": "line", "title": "in", "unit": "bit/s", "w": 6,
                     "queries": [{"path": "/interfaces/interface[name=*]/state/counters/in-octets", "fn": "rate",
                                  "scale": 8, "legend": "{name}"}]}]}


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_dashboards_crud_roles_export_import(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    op = await api_token(database_url, "operator", "op")
    op2 = await api_token(database_url, "operator", "op2")
    viewer = await api_token(database_url, "viewer", "noc")
    async with running_hub(bootstrapped, database_url) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post("/api/dashboards", json={"title": "Core", "spec": SPEC}, headers=op)
        assert r.status_code == 201, r.text
        core = r.json()
        assert core["shared"] and core["version"] == 1 and core["spec"]["widgets"][0]["queries"][0]["scale"] == 8
        # viewers read, but never write
        assert (await c.get(f"/api/dashboards/{core['id']}", headers=viewer)).json()["title"] == "Core"
        r = await c.put(f"/api/dashboards/{core['id']}", json={"title": "Mine now", "spec": SPEC}, headers=viewer)
        assert r.status_code == 403, r.text
        assert (await c.post("/api/dashboards", json={"title": "x"}, headers=viewer)).status_code == 403
        assert (await c.delete(f"/api/dashboards/{core['id']}", headers=viewer)).status_code == 403
        # a duplicate title is a clear 409; a bad spec a 400 naming the field
        r = await c.post("/api/dashboards", json={"title": "core", "spec": SPEC}, headers=op)
        assert r.status_code == 409 and "exists" in r.json()["detail"]
        r = await c.post("/api/dashboards", json={"title": "Bad", "spec": {"widgets": [{"type": "pie", "title": "p",
                                                                                       "queries": [{"path": "/x"}]}]}},
                         headers=op)
        assert r.status_code == 400 and "type" in r.text
        # edit with the version it was made on; a stale version is refused
        r = await c.put(f"/api/dashboards/{core['id']}", json={"title": "Core", "spec": {**SPEC, "range": "24h"},
                                                               "version": 1}, headers=op2)
        assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["updated_by"] == "op2"
        r = await c.put(f"/api/dashboards/{core['id']}", json={"title": "Core", "spec": SPEC, "version": 1}, headers=op)
        assert r.status_code == 409 and "op2" in r.json()["detail"]
        # personal: seen by its owner only
        r = await c.post("/api/dashboards", json={"title": "scratch", "shared": False, "spec": SPEC}, headers=op)
        mine = r.json()
        assert r.status_code == 201 and mine["owner"] == "op" and not mine["shared"]
        assert [d["title"] for d in (await c.get("/api/dashboards", headers=op)).json()] == ["Core", "scratch"]
        assert [d["title"] for d in (await c.get("/api/dashboards", headers=op2)).json()] == ["Core"]
        assert (await c.get(f"/api/dashboards/{mine['id']}", headers=op2)).status_code == 404
        assert (await c.delete(f"/api/dashboards/{mine['id']}", headers=op2)).status_code == 404
        # clone, export, import (renamed when the title is taken), delete
        r = await c.post(f"/api/dashboards/{core['id']}/clone", headers=op)
        assert r.status_code == 201 and r.json()["title"] == "Core (copy)" and r.json()["spec"]["range"] == "24h"
        exported = (await c.get(f"/api/dashboards/{core['id']}/export", headers=viewer)).json()
        assert exported["swtel_dashboard"] == 1 and exported["title"] == "Core" and "id" not in exported
        r = await c.post("/api/dashboards/import", json=exported, headers=op)
        assert r.status_code == 201 and r.json()["title"] == "Core (2)" and r.json()["spec"] == exported["spec"]
        r = await c.post("/api/dashboards/import", json={**exported, "swtel_dashboard": 9}, headers=op)
        assert r.status_code == 400 and "format 9" in r.json()["detail"]
        assert (await c.delete(f"/api/dashboards/{core['id']}", headers=op)).status_code == 204
        assert (await c.get(f"/api/dashboards/{core['id']}", headers=op)).status_code == 404
        # documented in OpenAPI
        paths = (await c.get("/schema/openapi.json", headers=viewer)).json()["paths"]
        assert {"/api/dashboards", "/api/dashboards/{dashboard_id}", "/api/dashboards/{dashboard_id}/clone",
                "/api/dashboards/{dashboard_id}/export", "/api/dashboards/import", "/api/panel"} <= set(paths)


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_panel_matches_wildcards_and_buckets_stored_history(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    async with db(database_url) as conn:
        ids = await seed(conn, DEVICE, IFS, hours=6, interval_s=60, until_s_ago=600, counter_rate=1000)
        await seed(conn, "spine-1.dc1", IFS[:1], hours=1, interval_s=60, until_s_ago=600, counter_rate=1000)
        await seed(conn, DEVICE, ["/system/cpus/cpu[index=0]/state/total/instant"], hours=6, gauge=20)
    viewer = await api_token(database_url, "viewer", "noc")
    async with running_hub(bootstrapped, database_url) as url, httpx.AsyncClient(base_url=url, headers=viewer) as c:
        q = {"device": "leaf-*", "path": "/interfaces/interface[name=*]/state/counters/in-octets", "fn": "rate",
             "start": "now-6h", "step": "300s"}
        r = await c.get("/api/panel", params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [s["name"] for s in body["series"]] == sorted(IFS) and body["matched"] == 4
        assert {s["keys"]["name"] for s in body["series"]} == {"Ethernet1", "Ethernet2", "Ethernet3", "Ethernet4"}
        by_name = {s["name"]: s for s in body["series"]}
        # the k-th seeded counter grows by 1000·k per second: the rate says so, in every full bucket
        for k, name in enumerate(IFS, 1):
            pts = by_name[name]["points"]
            assert len(pts) > 60 and pts[0][0] < time.time() - 5 * 3600
            assert all(abs(v - 1000 * k) < 1e-6 for _, v in pts[1:-1]), (name, pts[:3])
        # the same through /api/query, one series at a time: identical buckets
        one = (await c.get("/api/query", params={"series": ids[IFS[1]], "fn": "rate", "start": body["start"],
                                                  "end": body["end"], "step": "300s"})).json()["results"][0]["points"]
        assert one == by_name[IFS[1]]["points"]
        # top-N ranks by the last value; all devices, comma lists, tags of an unknown value match nothing
        top = (await c.get("/api/panel", params={**q, "device": "*", "top": 2})).json()
        assert [s["name"] for s in top["series"]] == [IFS[3], IFS[2]] and top["matched"] == 5
        both = (await c.get("/api/panel", params={**q, "device": "spine-1.dc1,leaf-01.dc1",
                                                   "path": IFS[0]})).json()
        assert sorted(s["device"] for s in both["series"]) == [DEVICE, "spine-1.dc1"]
        none = (await c.get("/api/panel", params={**q, "tag": "site=nowhere"})).json()
        assert none["series"] == [] and none["matched"] == 0
        cpu = (await c.get("/api/panel", params={"device": DEVICE, "path": "/system/cpus/cpu[index=?]/*/instant",
                                                  "start": "now-1h"})).json()
        assert len(cpu["series"]) == 1 and 20 <= cpu["series"][0]["points"][-1][1] <= 30
        # clear errors
        for bad, word in (({**q, "fn": "p99"}, "fn"), ({**q, "tag": "site"}, "key=value"), ({**q, "path": " "}, "path"),
                          ({**q, "rank": "x"}, "rank")):
            r = await c.get("/api/panel", params=bad)
            assert r.status_code == 400 and word in r.json()["detail"], r.text


async def _materialize(database_url: str) -> None:
    """What the background jobs do: TimescaleDB's refreshes, the plain backend's rollup round."""
    from swtel.hub.storage.plain import PlainStorage
    from swtel.shared import settings

    async with db(database_url) as conn:
        if await conn.fetchval("SELECT value FROM swtel_meta WHERE key = 'backend'") == "timescale":
            await refresh_aggregates(conn)
        else:
            await PlainStorage(None, settings.load({"database_url": database_url}, env={})).refresh_rollups(conn)  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_panel_reads_the_aggregates_like_api_query(bootstrapped: str, database_url: str) -> None:
    """Long ranges with whole-minute or whole-hour steps read the 1 m / 1 h aggregates, as /api/query does:
    with the raw points gone (retention), the panel still answers, the same values as before."""
    await migrate(database_url)
    async with db(database_url) as conn:
        ids = await seed(conn, "agg-leaf.dc1", IFS[:2], hours=4, interval_s=30, until_s_ago=600, counter_rate=1000)
    await _materialize(database_url)
    viewer = await api_token(database_url, "viewer", "noc")
    async with running_hub(bootstrapped, database_url) as url, httpx.AsyncClient(base_url=url, headers=viewer) as c:
        answers = {}
        hour = int(time.time()) // 3600 * 3600  # whole hours: no partial bucket at either end is read raw
        for fn, step, view in (("rate", "300s", "points_1m"), ("avg", "1h", "points_1h"), ("max", "120s", "points_1m")):
            q = {"device": "agg-leaf.dc1", "path": "/interfaces/interface[name=*]/state/counters/in-octets", "fn": fn,
                 "start": str(hour - 3 * 3600), "end": str(hour - 3600), "step": step}
            body = (await c.get("/api/panel", params=q)).json()
            assert body["source"] == view and len(body["series"]) == 2, body
            one = (await c.get("/api/query", params={"series": ids[IFS[1]], "fn": fn, "start": body["start"],
                                                      "end": body["end"], "step": step})).json()["results"][0]
            assert one["source"] == view and one["points"] == body["series"][1]["points"], (fn, one, body)
            answers[fn] = q, body
        async with db(database_url) as conn:  # raw retention ends: only the aggregates keep the range
            await conn.execute("DELETE FROM points WHERE series_id = ANY($1::int[])", list(ids.values()))
        for fn, (q, before) in answers.items():
            after = (await c.get("/api/panel", params=q)).json()
            assert [s["points"] for s in after["series"]] == [s["points"] for s in before["series"]], fn
            assert all(s["points"] for s in after["series"]), fn
