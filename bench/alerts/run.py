"""Alert engine cost: one evaluation pass over a fleet, healthy and during an alert storm.

    .venv/bin/python bench/alerts/run.py [--devices 200] [--interfaces 48] [--runs 5]

Needs PostgreSQL: ``$SWTEL_BENCH_DATABASE_URL`` (an admin DSN; default the local server) — a temporary
database is created and dropped. Prints medians of ``--runs`` passes and ratios to baselines measured in
the same process (the data source scan alone; one empty transaction round trip), so numbers from a noisy
shared machine stay comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

import asyncpg

from swtel.hub.alerts import db
from swtel.hub.alerts.engine import Engine
from swtel.hub.alerts.rules import Rule
from swtel.hub.alerts.sources import LiveSource
from swtel.shared import wire

PATTERN = "/interfaces/interface[name=*]/state/counters/in-errors"


def feed(src: LiveSource, devices: int, interfaces: int, value: float, ts: float) -> None:
    for d in range(devices):
        for i in range(interfaces):
            src.observe(f"sw{d}", f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-errors", value, ts)
            src.observe(f"sw{d}", f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-octets", 1.0, ts)


async def main(devices: int, interfaces: int, runs: int) -> None:
    admin = os.environ.get("SWTEL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"swtel_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
        async with pool.acquire() as c:
            await db.ensure_schema(c)
            await db.add_channel(c, "hook", "webhook", {"url": "http://127.0.0.1:9/x"})
            await db.add_rule(c, Rule(name="errors", tags={"role": "leaf"}, path=PATTERN, condition="above",
                                      threshold=10, channels=["hook"]))
        fleet = [wire.Device(name=f"sw{d}", address="127.0.0.1", port=9339, protocol="gnmi", tags={"role": "leaf"})
                 for d in range(devices)]
        series = devices * interfaces
        scan, steady, storm, resolve, empty_tx = [], [], [], [], []
        t = 1_800_000_000.0
        for _ in range(runs):
            src = LiveSource(fleet)
            eng = Engine(pool, src)
            feed(src, devices, interfaces, 1, t)
            async with pool.acquire() as c:
                rule = (await db.list_rules(c))[0]
            t0 = time.perf_counter()
            n = len(list(await src.samples(rule, [d.name for d in fleet], t)))
            scan.append(time.perf_counter() - t0)
            assert n == series
            t0 = time.perf_counter()
            await eng.evaluate_once(t)
            steady.append(time.perf_counter() - t0)
            feed(src, devices, interfaces, 50, t + 1)
            t0 = time.perf_counter()
            stats = await eng.evaluate_once(t + 1)
            storm.append(time.perf_counter() - t0)
            assert stats.transitions == series, stats
            feed(src, devices, interfaces, 1, t + 2)
            t0 = time.perf_counter()
            stats = await eng.evaluate_once(t + 2)
            resolve.append(time.perf_counter() - t0)
            async with pool.acquire() as c:
                t0 = time.perf_counter()
                for _ in range(200):
                    async with c.transaction():
                        await c.execute("SELECT 1")
                empty_tx.append((time.perf_counter() - t0) / 200)
                await c.execute("TRUNCATE alert_instances, alert_history, alert_outbox")
            t += 10
        await pool.close()
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    med = statistics.median
    base_scan, base_tx = med(scan), med(empty_tx)
    print(f"alert engine, {devices} devices x {interfaces} interfaces = {series} matching series "
          f"({2 * series} in the source), 1 rule, median of {runs} runs")
    print(f"{'pass':<34}{'median':>10}{'per series':>14}{'ratio':>22}")
    print(f"{'baseline: source scan only':<34}{base_scan * 1e3:>8.1f}ms{base_scan / series * 1e6:>11.2f}us{'1.0 x scan':>22}")
    print(f"{'baseline: empty transaction':<34}{base_tx * 1e3:>8.2f}ms{'':>14}{'1.0 x tx':>22}")
    s = med(steady)
    print(f"{'healthy fleet (no transitions)':<34}{s * 1e3:>8.1f}ms{s / series * 1e6:>11.2f}us{s / base_scan:>17.1f} x scan")
    for label, vals in (("storm: all series ok -> firing", storm), ("all firing -> resolved", resolve)):
        v = med(vals)
        print(f"{label:<34}{v * 1e3:>8.0f}ms{v / series * 1e6:>11.0f}us{v / series / base_tx:>19.1f} x tx")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--interfaces", type=int, default=48)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    asyncio.run(main(a.devices, a.interfaces, a.runs))
