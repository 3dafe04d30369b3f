"""End to end: batches published on NATS → a hub (the real Litestar app) → PostgreSQL → the query API."""

from __future__ import annotations

import time

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient

from support.telemetry import api_token, counter_path, db, hub_settings, make_batch, migrate, point_counts, publish
from support.waits import eventually
from swtel.hub.app import create_app
from swtel.shared import naming, wire


@pytest.mark.asyncio
async def test_published_batches_are_stored_once_and_queryable(bootstrapped: str, database_url: str,
                                                               db_backend: str) -> None:
    assert await migrate(database_url) == db_backend
    headers = await api_token(database_url)  # the API as a script sees it: authenticated with a token
    # no fleet work here: a rollup round racing this test's ingest would materialize a minute before its
    # samples land, and the 1 m answer would lag until the next round (aggregates are eventually
    # consistent, like TimescaleDB's; tests/test_hub_aggregates.py drives materialization explicitly)
    app = create_app(hub_settings(bootstrapped, database_url, hub_fetch_batch=50, hub_fleet_work=False))
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    t0 = (time.time_ns() // 60_000_000_000 - 5) * 60_000_000_000  # five minutes ago, on a minute boundary
    try:
        async with AsyncTestClient(app) as client:
            client.headers.update(headers)
            for seq in range(1, 61):  # two devices, 30 batches each, 10 s apart, 10 counters per batch
                dev = "leaf-01.dc1" if seq % 2 else "leaf-02.dc1"
                await publish(js, make_batch(dev, seq, ts_ns=t0 + seq * 10_000_000_000))
            await publish(js, make_batch("leaf-01.dc1", 1, ts_ns=t0 + 10_000_000_000))  # a re-send: de-duplicated

            async def stored() -> tuple[int, int] | None:
                counts = await point_counts(database_url)
                return counts if counts[0] >= 600 else None

            assert await eventually(stored, timeout=20, what="600 points stored") == (600, 600)

            r = await client.get("/api/series", params={"device": "leaf-01.dc1"})
            assert r.status_code == 200, r.text
            series = {s["name"]: s for s in r.json()}
            assert len(series) == 10
            s0 = series[counter_path(0)]
            assert s0["path"] == "/interfaces/interface/state/counters/in-octets"
            assert s0["keys"] == {"name": "Ethernet0"} and s0["kind"] == "num"

            start, end = t0 / 1e9, t0 / 1e9 + 600
            r = await client.get("/api/query", params={"series": s0["id"], "start": start, "end": end,
                                                       "step": "1m", "fn": "max"})
            assert r.status_code == 200, r.text
            res = r.json()["results"][0]
            # whole minutes: the 1 m aggregate (TimescaleDB) or rollup (plain) answers, raw points fill in
            # what it does not hold yet; the buckets are the same either way
            assert res["source"] == "points_1m" and res["device"] == "leaf-01.dc1"
            # leaf-01 got odd seqs 1..59 at t0 + seq*10 s; value seq*1000; max per minute = last odd seq in it
            got = {p[0]: p[1] for p in res["points"]}
            assert got[start] == 5000.0 and got[start + 60] == 11000.0
            r = await client.get("/api/query", params={"series": s0["id"], "start": start, "end": end,
                                                       "step": "60", "fn": "rate"})
            rates = [p[1] for p in r.json()["results"][0]["points"]]
            # +2000 every 20 s; the first bucket has no sample before its first one, so two increases in it
            assert rates[0] == pytest.approx(4000 / 60) and rates[1:] == [pytest.approx(100.0)] * 9, rates

            async def counted() -> str | None:  # metrics are updated just after the commit
                text = (await client.get("/metrics")).text
                return text if 'swtel_hub_samples_ingested_total{type="number"} 600' in text else None

            metrics = await eventually(counted, timeout=10, what="600 samples in /metrics")
            assert "swtel_hub_db_write_seconds_count" in metrics
            health = await client.get("/api/health")
            body = health.json()  # "degraded" only with the failing jobs named (TimescaleDB on PostgreSQL 15.20)
            assert health.status_code == 200 and body["ingest"], health.text
            assert body["status"] == ("degraded" if body["job_failures"] else "ok"), health.text
            assert all(j["name"] and j["consecutive_failures"] > 0 for j in body["job_failures"]), health.text
            assert (await client.get("/schema/openapi.json")).status_code == 200
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_forged_tokens_and_garbage_are_dropped_and_ingest_goes_on(bootstrapped: str, database_url: str) -> None:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    subject = naming.telemetry_subject("sw1", "interfaces")
    try:
        async with AsyncTestClient(app) as client:
            await publish(js, make_batch("sw1", 1, paths=3))  # token 0: a real lease is claimed (support)

            async def first_landed() -> bool:
                return (await point_counts(database_url))[0] == 3

            await eventually(first_landed, timeout=20, what="the first batch stored")
            await js.publish(subject, b"\xc1 not msgpack")
            await js.publish(subject, msgspec.msgpack.encode({"type": "telemetry", "device": 5}))
            await js.publish(subject, wire.encode(wire.Event(device="sw1", agent="a", kind="error", ts=1)))
            newer = msgspec.structs.replace(make_batch("sw1", 9, token=1, paths=3), v=wire.TELEMETRY_VERSION + 1)
            await js.publish(subject, wire.encode(newer))
            await publish(js, make_batch("sw1", 2, token=5, paths=3))  # a token the lease bucket never issued
            await publish(js, make_batch("sw1", 3, paths=3))

            expected = ('samples_ingested_total{type="number"} 6', 'reason="token_not_issued"} 1',
                        'reason="malformed"} 2', 'reason="unknown_kind"} 1', 'reason="unknown_version"} 1')

            async def settled() -> str | None:  # workers finish in any order: wait for every count
                text = (await client.get("/metrics")).text
                return text if all(line in text for line in expected) else None

            await eventually(settled, timeout=20, what=f"metrics showing {expected}")
            assert await point_counts(database_url) == (6, 6)
            async with db(database_url) as conn:  # every refused message is kept aside with its reason
                reasons = sorted(r["reason"] for r in await conn.fetch("SELECT reason FROM dead_letters"))
            assert reasons == ["malformed", "malformed", "token_not_issued", "unknown_kind", "unknown_version"]
            listed = (await client.get("/api/deadletters", params={"reason": "token_not_issued"})).json()
            assert [(d["device"], d["token"], d["reason"]) for d in listed] == [("sw1", "5", "token_not_issued")]
            assert 'swtel_hub_dead_letters_total{reason="malformed"} 2' in (await client.get("/metrics")).text
            # terminated, not redelivered: nothing is left pending for the consumer
            info = await js.consumer_info(naming.STREAM_TELEMETRY, "swtel-hub")
            await eventually(lambda: _no_pending(js), timeout=10, what="no pending/unacked messages")
            assert info.num_redelivered == 0
    finally:
        await nc.close()


async def _no_pending(js) -> bool:  # type: ignore[no-untyped-def]
    info = await js.consumer_info(naming.STREAM_TELEMETRY, "swtel-hub")
    return info.num_pending == 0 and info.num_ack_pending == 0


@pytest.mark.asyncio
async def test_events_and_config_backups_are_stored_once_and_backups_only_when_changed(
    bootstrapped: str, database_url: str
) -> None:
    await migrate(database_url)
    app = create_app(hub_settings(bootstrapped, database_url), auth=False)
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    try:
        async with AsyncTestClient(app):
            ev = wire.Event(device="sw1", agent="a1", kind="session_up", ts=time.time_ns(), detail="gnmi")
            await js.publish(naming.event_subject("sw1", "session_up"), wire.encode(ev))
            await js.publish(naming.event_subject("sw1", "session_up"), wire.encode(ev))  # same event again
            for i, text in enumerate(["hostname a", "hostname a", "hostname b"]):
                cb = wire.ConfigBackup(device="sw1", agent="a1", token=1, ts=time.time_ns() + i, format="text",
                                       text=text)
                await js.publish(naming.config_subject("sw1"), wire.encode(cb))
            await js.publish(naming.config_subject("sw1"), b"garbage")

            async def stored() -> tuple[int, int] | None:
                async with db(database_url) as conn:
                    e = await conn.fetchval("SELECT count(*) FROM events")
                    c = await conn.fetchval("SELECT count(*) FROM config_backups")
                info = await js.consumer_info(naming.STREAM_EVENTS, "swtel-hub-events")
                return (e, c) if info.num_pending == 0 and info.num_ack_pending == 0 else None

            assert await eventually(stored, timeout=20, what="events consumed") == (1, 2)
    finally:
        await nc.close()


@pytest.mark.asyncio
async def test_two_hubs_share_one_durable_consumer(bootstrapped: str, database_url: str) -> None:
    from swtel.hub.service import HubCore

    await migrate(database_url)
    hubs = [HubCore(hub_settings(bootstrapped, database_url, hub_fetch_batch=16, hub_ingest_workers=2))
            for _ in range(2)]
    for h in hubs:
        await h.start()
    nc = await nats.connect(bootstrapped)
    js = nc.jetstream()
    try:
        for seq in range(1, 401):
            await publish(js, make_batch(f"sw{seq % 7}", seq, paths=5))

        async def stored() -> tuple[int, int] | None:
            counts = await point_counts(database_url)
            return counts if counts[0] >= 2000 else None

        assert await eventually(stored, timeout=30, what="2000 points stored by two hubs") == (2000, 2000)
        async def counted() -> bool:  # metrics are updated just after the commit
            return sum(h.metrics.samples for h in hubs) == 2000

        await eventually(counted, timeout=10, what="both hubs' metrics to add up to 2000")
        assert all(h.metrics.batches > 0 for h in hubs), [h.metrics.batches for h in hubs]
    finally:
        await nc.close()
        for h in hubs:
            await h.stop()
