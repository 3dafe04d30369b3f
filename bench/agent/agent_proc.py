"""The measured process: one agent's collection (the slot factory the lease manager uses) for N devices.

Started by ``python -m bench.agent``; prints one JSON document on stdout. Phases: connect and import
(RSS baseline) → start one slot per device → wait until every device collects and its discovery at claim
has published its facts (start-up work, outside the windows) → one interval → measure windows of whole
device intervals (samples published, CPU seconds) → RSS → stop the slots → raw nats-py JetStream publish
of the same batches (the ceiling), in the same process and run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time

import nats

from swtel.agent.collect import Collection, collector_for, tune_gc
from swtel.agent.credentials import Credentials
from swtel.agent.jobs import jobs_for
from swtel.shared import inventory, naming, settings, wire

PATHS = ["/interfaces/interface/state/counters"]  # 48 interfaces × 10 counters


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_bytes(field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS), or its peak so far (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def whole_intervals(window: float, interval: float) -> float:
    """A window of a whole number of device intervals: each device's tick falls in it the same number of
    times wherever the window starts (one tick more or less of 2,000 devices' was a ±10 % swing)."""
    return max(1, round(window / interval)) * interval


async def measure_agent(nc: nats.NATS, a: argparse.Namespace) -> dict:
    s = settings.load({}, env={})
    creds = Credentials(env={"SWTEL_CRED_SIM_USERNAME": "admin", "SWTEL_CRED_SIM_PASSWORD": "admin"})
    collection = Collection(nc, s, "bench-agent", credentials=creds)
    devices = [inventory.make_device(f"bench-{i:05d}", "127.0.0.1", "gnmi", port=a.base_port + i, credential="sim",
                                     paths=PATHS, interval=f"{a.interval}s") for i in range(a.devices)]
    # start-up work: discovery at claim publishes each device's facts once, kept in the events stream; counted
    # there (devices with facts) rather than by a subscription, which would copy every facts message into
    # this measured process
    js = nc.jetstream()
    discovered = 0

    async def count_discovered() -> int:
        info = await js.stream_info(naming.STREAM_EVENTS, subjects_filter="swtel.event.*.facts")
        return len(info.state.subjects or {})
    # the modules the first slot imports (gRPC, protobuf, the collector, discovery: ~15 MB) are the process's,
    # not the devices': imported before the baseline, as the bare client imports grpc before its own
    collector_for("gnmi")
    jobs_for(devices[0], s)
    tune_gc()  # as the agent process does once started
    rss0 = rss_bytes()
    tasks = [asyncio.create_task(collection.slot(d, 1)) for d in devices]
    started = time.monotonic()
    top = (0, 0.0, 0, 0)  # the ramp's highest RSS seen: (bytes, seconds in, collecting, discovered then)
    while True:
        stats = collection.device_stats()
        collecting = sum(1 for v in stats.values() if v["status"] == "collecting")
        if collecting == a.devices:
            discovered = await count_discovered()
        if (rss := rss_bytes()) > top[0]:
            top = (rss, time.monotonic() - started, collecting, discovered)
        if trace := os.environ.get("SWTEL_BENCH_TRACE"):  # a file: the ramp's RSS every half second
            with open(trace, "a") as f:
                f.write(f"{time.monotonic() - started:6.1f} s rss {rss / 1e6:7.0f} MB collecting {collecting} "
                        f"discovered {discovered} published {collection.publisher.stats.samples}\n")
        if (collecting == a.devices and discovered >= a.devices) or time.monotonic() - started > a.warmup:
            break
        await asyncio.sleep(0.5)
    ramp_s = time.monotonic() - started
    await asyncio.sleep(a.interval)  # one steady interval before measuring
    pub = collection.publisher.stats
    windows = []
    for _ in range(a.windows):
        s0, c0, t0 = pub.samples, cpu_s(), time.monotonic()
        await asyncio.sleep(a.window)
        s1, c1, t1 = pub.samples, cpu_s(), time.monotonic()
        windows.append({"samples_per_s": (s1 - s0) / (t1 - t0), "cpu_per_s": (c1 - c0) / (t1 - t0),
                        "cpu_s_per_m": (c1 - c0) / max(1, s1 - s0) * 1e6})
    rss1 = rss_bytes()
    statuses: dict[str, int] = {}
    for v in collection.device_stats().values():
        statuses[v["status"]] = statuses.get(v["status"], 0) + 1
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "devices": a.devices, "collecting": collecting, "discovered": discovered, "ramp_s": ramp_s,
        "statuses": statuses,
        "samples_per_s": statistics.median(w["samples_per_s"] for w in windows),
        "cpu_per_s": statistics.median(w["cpu_per_s"] for w in windows),
        "cpu_s_per_m": statistics.median(w["cpu_s_per_m"] for w in windows),
        "rss_per_device_kb": (rss1 - rss0) / a.devices / 1024, "rss_mb": rss1 / 1e6,
        "rss_peak_mb": rss_bytes("VmHWM") / 1e6,
        "ramp_top": {"rss_mb": top[0] / 1e6, "at_s": top[1], "collecting": top[2], "discovered": top[3]},
        "dropped": pub.dropped, "windows": windows,
    }


async def measure_raw(nc: nats.NATS, samples_per_batch: int, seconds: float, runs: int) -> dict:
    """JetStream publish_async of pre-built batches of the same size, 256 in flight: what nats-py allows."""
    js = nc.jetstream()
    batch = wire.TelemetryBatch(
        device="raw", agent="bench", token=1, seq=0, subscription="interfaces",
        samples=[wire.Sample(f"/interfaces/interface[name=eth{i // 10}]/state/counters/c{i % 10}", 123456789 + i,
                             time.time_ns()) for i in range(samples_per_batch)])
    subject = naming.telemetry_subject("raw", "interfaces")
    sem = asyncio.Semaphore(256)
    rates, cpus = [], []
    seq = 0
    for _ in range(runs):
        sent, c0, t0 = 0, cpu_s(), time.monotonic()
        pending: set[asyncio.Future] = set()
        while time.monotonic() - t0 < seconds:
            seq += 1
            batch.seq = seq
            await sem.acquire()
            fut = await js.publish_async(subject, wire.encode(batch), headers={"Nats-Msg-Id": f"raw:1:{seq}"})
            fut.add_done_callback(lambda _f: sem.release())
            pending.add(fut)
            pending = {f for f in pending if not f.done()}
            sent += 1
        await asyncio.wait_for(asyncio.gather(*pending), 30)
        elapsed, cpu = time.monotonic() - t0, cpu_s() - c0
        rates.append(sent * samples_per_batch / elapsed)
        cpus.append(cpu / (sent * samples_per_batch) * 1e6)
    return {"samples_per_s": statistics.median(rates), "cpu_s_per_m": statistics.median(cpus),
            "batch_bytes": len(wire.encode(batch))}


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nats", required=True)
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--base-port", type=int, required=True)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=300.0, help="longest wait for start-up (collecting, discovered)")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--raw-seconds", type=float, default=3.0, help="0: skip the raw JetStream ceiling")
    a = p.parse_args()
    a.window = whole_intervals(a.window, a.interval)
    nc = await nats.connect(a.nats)
    try:
        agent = await measure_agent(nc, a)
        raw = await measure_raw(nc, 480, a.raw_seconds, 3) if a.raw_seconds > 0 else None
    finally:
        await nc.close()
    json.dump({"agent": agent, "raw": raw}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
