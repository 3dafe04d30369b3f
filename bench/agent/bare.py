"""The limit the agent is compared with: a bare grpc.aio gNMI client, one channel and one STREAM Subscribe
per device, protobuf parse only (each SubscribeResponse is parsed by grpc.aio and dropped: no path
strings, no samples, no NATS); freed memory is given back to the system as the agent process does
(``collect.trim_memory_every``). Same JSON shape as ``agent_proc.py``'s "agent" part.

    python -m bench.agent.bare --devices 500 --base-port P [--interval 10 --windows 3 --window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

from swtel.agent.collect import TRIM_PERIOD_S, trim_memory_every
from swtel.agent.collectors import gnmi_paths
from swtel.agent.collectors.gnmi import CHANNEL_OPTIONS

from .agent_proc import PATHS, cpu_s, rss_bytes, whole_intervals

LOGIN = (("username", "admin"), ("password", "admin"))


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--base-port", type=int, required=True)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--no-stagger", dest="stagger", action="store_false",
                   help="subscribe every device at once (their updates then arrive in bursts)")
    a = p.parse_args()
    a.window = whole_intervals(a.window, a.interval)
    request = gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
        subscription=[gnmi_pb2.Subscription(path=gnmi_paths.to_proto(x), mode=gnmi_pb2.SAMPLE,
                                            sample_interval=int(a.interval * 1e9)) for x in PATHS],
        mode=gnmi_pb2.SubscriptionList.STREAM, encoding=gnmi_pb2.PROTO))
    samples = 0
    receiving: set[int] = set()

    async def device(i: int) -> None:
        nonlocal samples
        # subscriptions spread over one interval: a fleet's devices tick at their own moments, and so do the
        # agent's sessions (started as the lease ramp claims them); 2,000 subscriptions opened at once
        # would make every device tick in the same second, and a burst costs less per update than the
        # same updates spread out (fewer loop wakeups), which flattered the peer
        await asyncio.sleep(i * a.interval / a.devices if a.stagger else 0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{a.base_port + i}", options=CHANNEL_OPTIONS) as ch:
            call = gnmi_pb2_grpc.gNMIStub(ch).Subscribe(iter([request]), metadata=LOGIN)
            while True:
                resp = None  # dropped before waiting for the next: what the agent must match
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    return
                n = len(resp.update.update)
                if n:
                    samples += n
                    receiving.add(i)

    trim_memory_every(asyncio.get_running_loop(), TRIM_PERIOD_S)  # what the agent process does too
    rss0 = rss_bytes()
    tasks = [asyncio.create_task(device(i)) for i in range(a.devices)]
    started = time.monotonic()
    while len(receiving) < a.devices and time.monotonic() - started < a.warmup:
        await asyncio.sleep(0.5)
    ramp_s = time.monotonic() - started
    await asyncio.sleep(a.interval)
    windows = []
    for _ in range(a.windows):
        s0, c0, t0 = samples, cpu_s(), time.monotonic()
        await asyncio.sleep(a.window)
        s1, c1, t1 = samples, cpu_s(), time.monotonic()
        windows.append({"samples_per_s": (s1 - s0) / (t1 - t0), "cpu_per_s": (c1 - c0) / (t1 - t0),
                        "cpu_s_per_m": (c1 - c0) / max(1, s1 - s0) * 1e6})
    rss1 = rss_bytes()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    json.dump({
        "devices": a.devices, "collecting": len(receiving), "ramp_s": ramp_s,
        "samples_per_s": statistics.median(w["samples_per_s"] for w in windows),
        "cpu_per_s": statistics.median(w["cpu_per_s"] for w in windows),
        "cpu_s_per_m": statistics.median(w["cpu_s_per_m"] for w in windows),
        "rss_per_device_kb": (rss1 - rss0) / a.devices / 1024, "rss_mb": rss1 / 1e6, "windows": windows,
    }, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
