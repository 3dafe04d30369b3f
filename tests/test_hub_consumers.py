"""The hub checks the config of the durable consumers it binds to and reports drift (health, metrics,
log) instead of silently running on a changed config. Real NATS, real PostgreSQL, the real app."""

from __future__ import annotations

import dataclasses

import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.js import api

from support.telemetry import hub_settings, migrate
from support.waits import eventually
from swtel.hub.app import create_app
from swtel.shared import naming


@pytest.mark.asyncio
async def test_a_redefined_shared_consumer_is_reported(bootstrapped: str, database_url: str,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    try:
        async with AsyncTestClient(app) as client:
            health = (await client.get("/api/health")).json()
            assert health["status"] == "ok" and health["consumer_drift"] == {}, health
            # someone with consumer rights redefines the shared durable: one delivery, then dropped
            info = await js.consumer_info(naming.STREAM_TELEMETRY, "swtel-hub")
            await js.add_consumer(naming.STREAM_TELEMETRY, dataclasses.replace(info.config, max_deliver=1))

            async def drifted() -> dict | None:  # type: ignore[type-arg]
                h = (await client.get("/api/health")).json()
                return h if h["consumer_drift"] else None

            h = await eventually(drifted, timeout=15, what="the drift in /api/health")
            assert h["status"] == "degraded" and "max_deliver 1" in h["consumer_drift"]["swtel-hub"][0], h
            assert "swtel_hub_consumer_config_drift 1" in (await client.get("/metrics")).text
            err = capfd.readouterr().err  # the hub logs to stderr (its own handler)
            assert "durable consumer swtel-hub on SWTEL_TELEMETRY differs" in err and "max_deliver 1" in err, err
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_a_push_consumer_in_place_of_the_durable_is_reported_at_start(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    await js.add_consumer(naming.STREAM_TELEMETRY, api.ConsumerConfig(
        name="swtel-hub", durable_name="swtel-hub", deliver_subject="_INBOX_agent.tap", ack_policy=api.AckPolicy.EXPLICIT,
        filter_subjects=[naming.TELEMETRY_ALL]))
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    try:
        async with AsyncTestClient(app) as client:
            h = (await client.get("/api/health")).json()
            assert h["status"] == "degraded", h
            assert any("push consumer" in d for d in h["consumer_drift"]["swtel-hub"]), h
    finally:
        await nc.close()
