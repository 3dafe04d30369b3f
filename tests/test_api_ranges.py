"""Every integer and date parameter of the API is range-checked: 400 naming the parameter, never 500/503.
The real hub app over real NATS and PostgreSQL, as an admin with an API token."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from support.telemetry import api_token, hub_settings, migrate
from swtel.hub.app import create_app

BIG = "99999999999999999999"
CASES = [
    ("GET", f"/api/query?series={BIG}", "series"),
    ("GET", "/api/query?series=1&start=now-100000000000h", "start"),
    ("GET", "/api/query?series=1&end=1e300", "end"),
    ("GET", "/api/query?series=1&end=0001-01-01T00:00:00Z", "end"),
    ("GET", "/api/query?series=1&step=99999999999999999999d", "step"),
    ("GET", "/api/query?series=-5", "series"),
    ("POST", f"/api/alerts/{BIG}/ack", "alert_id"),
    ("GET", f"/api/alerts/history?alert_id={BIG}", "alert_id"),
    ("GET", f"/api/alerts?limit={BIG}", "limit"),
    ("DELETE", f"/api/tokens/{BIG}", "token_id"),
    ("GET", f"/api/devices/sw1/configs/{BIG}", "number"),
    ("GET", f"/api/devices/sw1/config-diff?a={BIG}", "a"),
    ("GET", f"/api/deadletters?limit={BIG}", "limit"),
    ("GET", "/api/deadletters?since=now-100000000000h", "since"),
]


@pytest.mark.asyncio
async def test_out_of_range_parameters_are_400_naming_the_parameter(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    headers = await api_token(database_url, role="admin", name="admin1")
    app = create_app(hub_settings(bootstrapped, database_url), ingest=False)
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        for method, url, name in CASES:
            r = await client.request(method, url)
            assert r.status_code == 400, (method, url, r.status_code, r.text)
            assert name in r.text, (url, r.text)


@pytest.mark.asyncio
async def test_nul_characters_in_parameters_and_bodies_are_400(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    headers = await api_token(database_url, role="admin", name="admin1")
    app = create_app(hub_settings(bootstrapped, database_url), ingest=False)
    async with AsyncTestClient(app) as client:
        client.headers.update(headers)
        r = await client.get("/api/series?device=sw%001")
        assert r.status_code == 400 and "device" in r.text, r.text
        r = await client.post("/api/tokens", json={"label": "a\x00b"})
        assert r.status_code == 400 and "label" in r.text, r.text


@pytest.mark.asyncio
async def test_dead_letter_payload_for_admins(bootstrapped: str, database_url: str) -> None:
    from support.telemetry import db
    from swtel.hub import deadletter

    await migrate(database_url)
    async with db(database_url) as conn:
        await deadletter.add(conn, [deadletter.Letter("swtel.telemetry.sw1.x", 1, "malformed", "bad", b"\xc1raw")])
        letter_id = await conn.fetchval("SELECT id FROM dead_letters")
    admin = await api_token(database_url, role="admin", name="admin1")
    viewer = await api_token(database_url, role="viewer", name="viewer1")
    app = create_app(hub_settings(bootstrapped, database_url), ingest=False)
    async with AsyncTestClient(app) as client:
        r = await client.get(f"/api/deadletters/{letter_id}/payload", headers=admin)
        assert r.status_code == 200 and r.content == b"\xc1raw", r.text
        assert (await client.get(f"/api/deadletters/{letter_id}/payload", headers=viewer)).status_code == 403
        assert (await client.get("/api/deadletters", headers=viewer)).json()[0]["reason"] == "malformed"
        assert (await client.get(f"/api/deadletters/{letter_id + 1}/payload", headers=admin)).status_code == 404
