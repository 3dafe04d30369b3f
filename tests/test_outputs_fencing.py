"""Outputs fence by the hub's lease verdicts (hub/fencing.py), the same decision ingest makes: a real hub,
real NATS buckets, PostgreSQL and a real InfluxDB 1.x. What the destination holds equals what the hub
stored, sample for sample, when leases move and forged batches arrive; every sample is accounted for."""

from __future__ import annotations

import time
from typing import Any

import nats
import pytest
from litestar.testing import AsyncTestClient

from support import tsdb
from support.outputs import by_metric, output_view, stored
from support.telemetry import claim, hub_settings, make_batch, migrate, publish
from support.waits import eventually
from swtel.hub.app import create_app
from swtel.hub.outputs.model import OutputStore, make_output

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
METRIC = "interface_in_octets_total"  # support.telemetry.counter_path under the default mapping


async def test_an_output_writes_exactly_the_batches_and_samples_ingest_stores(bootstrapped: str,
                                                                              database_url: str) -> None:
    """A lease moves from a1 to a2 and a1's late batch (inside its tenure) arrives after a2's: stored, so
    delivered (a newest-token rule would drop it). A token never issued and a batch naming the wrong agent
    with a higher token than the holder's: refused, so not delivered, and they change nothing for the
    genuine holder (a newest-token rule would let them through and then drop the holder's batches)."""
    await migrate(database_url)
    with tsdb.InfluxDB1() as influx:
        influx.query("CREATE DATABASE swtel")
        nc = await nats.connect(bootstrapped)
        js = nc.jetstream()
        try:
            await (await OutputStore.open(js)).add(make_output("out", "influx", url=influx.url, database="swtel"))
            t0 = time.time_ns() - 30_000_000_000
            old = await claim(js, "sw1", "a1")
            await publish(js, make_batch("sw1", 1, token=old, agent="a1", paths=2, ts_ns=t0))
            await publish(js, make_batch("sw1", 9, token=old + 1_000_000, agent="a1", paths=2, value=1e18,
                                         ts_ns=t0 + 1_000_000_000))  # never issued
            new = await claim(js, "sw1", "a2")  # a takeover: a1's tenure ends now
            taken = time.time_ns()
            await publish(js, make_batch("sw1", 1, token=new, agent="a2", paths=2, ts_ns=taken + 2_000_000_000))
            await publish(js, make_batch("sw1", 5, token=new, agent="intruder", paths=2, value=1e18,
                                         ts_ns=taken + 3_000_000_000))  # a real revision naming another agent
            # a1 did not notice at once: one batch inside its tenure (arriving after a2's), one after it
            await publish(js, make_batch("sw1", 2, token=old, agent="a1", paths=2, ts_ns=taken - 500_000_000))
            await publish(js, make_batch("sw1", 3, token=old, agent="a1", paths=2, ts_ns=taken + 10_000_000_000))
            await publish(js, make_batch("sw1", 2, token=new, agent="a2", paths=2, ts_ns=taken + 4_000_000_000))

            app = create_app(hub_settings(bootstrapped, database_url, fence_grace_s=1.0), auth=False)
            async with AsyncTestClient(app) as client:
                async def settled() -> dict[str, Any] | None:
                    v = output_view((await client.get("/api/outputs")).json(), "out")
                    return v if v and v["messages"] >= 7 and v["lag_messages"] == 0 else None

                v = await eventually(settled, timeout=60, what="the output to read all 7 batches")
                # a1: 2 + 2 in tenure; a2: 2 + 2; refused: 2 never issued, 2 wrong agent, 2 after a1's tenure
                want = await eventually(lambda: _stored(database_url, 8), timeout=30, what="8 points stored")
                assert v["samples"] == 8 and v["rejected"] == 0, v
                assert v["skipped"] == {"token_not_issued": 2, "token_wrong_agent": 2, "after_tenure": 2}, v
                got = await influx.series(METRIC, "swtel")
                assert got == by_metric(want, METRIC), "the destination differs from what the hub stored"
                assert all(x < 1e18 for pts in got.values() for x in pts.values())
        finally:
            await nc.close()


async def _stored(database_url: str, n: int) -> Any:
    s = await stored(database_url)
    return s if sum(len(p) for p in s.values()) >= n else None
