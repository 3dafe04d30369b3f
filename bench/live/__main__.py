"""bench/live: latency from a telemetry batch published on NATS to the WebSocket frame that carries it.

    python -m bench.live [--clients 100] [--devices 100] [--seconds 10] [--runs 3]

A nats-server and the hub's live view (``bench/live/hub_proc.py``, its own process) run on loopback.
Every device (48 interfaces, ~530 samples a batch, values from the simulator model) publishes one batch per
second, spread evenly over the second. Each batch also carries ``/bench/sent-ns``, the publish time; a
client that receives it in a frame records ``now - sent``. Client *i* watches device *i mod devices*
(a device page). The baseline is a plain core-NATS subscriber in this process receiving the same batches:
the cost of NATS and of this process's own event loop, which the WebSocket path adds to. Each scenario
runs ``--runs`` times; the table shows medians across runs. All of it shares the machine's cores, so
numbers are noisy: compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nats
import websockets

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.natsserver import NatsServer  # noqa: E402
from support.ports import free_port  # noqa: E402
from swtel.agent.sim.model import SimDevice  # noqa: E402
from swtel.hub.live.fanout import expand_frame  # noqa: E402
from swtel.shared import buckets, naming, settings, wire  # noqa: E402

MARK = "/bench/sent-ns"


def batch_for(sim: SimDevice, seq: int) -> wire.TelemetryBatch:
    ts = time.time_ns()
    samples = [wire.Sample(f"/interfaces/interface[name={ifname}]/state/counters/{k}", v, ts)
               for i, ifname in enumerate(sim.ifnames) for k, v in sim.counters(i).items()]
    samples += [wire.Sample(f"/interfaces/interface[name={ifname}]/state/oper-status", sim.oper_status(i), ts)
                for i, ifname in enumerate(sim.ifnames)]
    samples.append(wire.Sample(MARK, 0, ts))
    return wire.telemetry(sim.name, "bench-agent", 1, seq, "interfaces", wire.Columns.of(samples))  # as agents write


async def publish(nc: nats.NATS, sims: list[SimDevice], stop: asyncio.Event) -> int:
    """One batch per device per second, evenly spread; the mark is stamped just before sending."""
    gap = 1.0 / len(sims)
    seq, sent = 1, 0
    next_at = time.monotonic()
    while not stop.is_set():
        for sim in sims:
            b = batch_for(sim, seq)
            b.values[-1] = time.time_ns()  # the mark (the last sample)
            await nc.publish(naming.telemetry_subject(sim.name, "interfaces"), wire.encode(b))
            sent += 1
            next_at += gap
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if stop.is_set():
                break
        seq += 1
    return sent


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run_nats_baseline(url: str, sims: list[SimDevice], seconds: float) -> dict[str, float]:
    nc = await nats.connect(url)
    lat: list[float] = []
    measuring = False

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        b = wire.columnar(wire.batch_decoder.decode(msg.data))  # what the hub's live cache does too
        if measuring:
            lat.append((time.time_ns() - b.values[-1]) / 1e6)

    await nc.subscribe(naming.TELEMETRY_ALL, cb=on_msg)
    stop = asyncio.Event()
    pub = await nats.connect(url)
    task = asyncio.create_task(publish(pub, sims, stop))
    await asyncio.sleep(1.0)
    measuring = True
    await asyncio.sleep(seconds)
    stop.set()
    await task
    await pub.close()
    await nc.close()
    return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "fps": len(lat) / seconds, "n": len(lat)}


async def run_ws(url: str, ws_url: str, sims: list[SimDevice], clients: int, seconds: float,
                 compression: str | None = "deflate") -> dict[str, float]:
    lat: list[float] = []
    frames = 0
    measuring = False

    async def client(i: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
        nonlocal frames
        name = sims[i % len(sims)].name
        async with websockets.connect(f"{ws_url}/ws/live?device={name}", max_size=None,
                                      compression=compression) as ws:
            paths: dict[int, str] = {}
            ready.set()
            while not stop.is_set():
                try:
                    frame = expand_frame(json.loads(await asyncio.wait_for(ws.recv(), 0.5)), paths)
                except TimeoutError:
                    continue
                now = time.time_ns()
                if not measuring:
                    continue
                frames += 1
                entry = frame.get("devices", {}).get(name, {}).get(MARK)
                if entry:
                    lat.append((now - entry[1]) / 1e6)

    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients)]
    tasks = [asyncio.create_task(client(i, readies[i], stop)) for i in range(clients)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    pub = await nats.connect(url)
    pub_task = asyncio.create_task(publish(pub, sims, stop))
    await asyncio.sleep(2.0)  # warm-up: snapshots and the first frames are not measured
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    stop.set()
    await pub_task
    await asyncio.gather(*tasks)
    await pub.close()
    return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "fps": frames / seconds, "n": len(lat)}


def hub_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(args: argparse.Namespace) -> None:
    server = NatsServer().start()
    hub = None
    try:
        s = settings.load({"nats_url": server.url}, env={})
        nc = await nats.connect(server.url)
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
        await nc.close()
        port = free_port()
        hub = subprocess.Popen([sys.executable, "-m", "bench.live.hub_proc", "--nats", server.url, "--port", str(port),
                                "--frame-interval", str(args.frame_interval),
                                *(["--profile", args.profile] if args.profile else []),
                                *(["--deflate"] if args.deflate else [])], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert hub.stdout is not None and hub.stdout.readline().strip() == "ready", "the hub did not start"
        ws_url = f"ws://127.0.0.1:{port}"
        sims = [SimDevice(f"bench-{i:04d}", platform="eos", interfaces=args.interfaces) for i in range(args.devices)]
        scenarios = [("NATS subscriber (baseline)", lambda: run_nats_baseline(server.url, sims, args.seconds)),
                     ("WebSocket, 1 client", lambda: run_ws(server.url, ws_url, sims, 1, args.seconds)),
                     (f"WebSocket, {args.clients} clients",
                      lambda: run_ws(server.url, ws_url, sims, args.clients, args.seconds))]
        if args.only:
            scenarios = [scenarios[0]] + [sc for sc in scenarios[1:] if args.only in sc[0]]
        rows = []
        for label, scenario in scenarios:
            runs = [await scenario() for _ in range(args.runs)]
            rows.append((label, {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "fps", "n")}))
        base = rows[0][1]
        print(f"\n{args.devices} devices x 1 batch/s (~{len(batch_for(sims[0], 1).values)} samples each), "
              f"permessage-deflate {'on' if args.deflate else 'off'}, frame interval {args.frame_interval}s, {args.seconds}s x {args.runs} runs (medians)\n")
        print(f"| {'scenario':<28} | p50 ms | p99 ms | p99 / baseline | frames/s | measured |")
        print(f"|{'-' * 30}|--------|--------|----------------|----------|----------|")
        for label, r in rows:
            print(f"| {label:<28} | {r['p50']:6.1f} | {r['p99']:6.1f} | {r['p99'] / base['p99']:14.1f} | "
                  f"{r['fps']:8.0f} | {r['n']:8.0f} |")
        print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
              f"hub RSS: {hub_rss_mb(hub.pid):.0f} MB")
        target = dict(rows).get(f"WebSocket, {args.clients} clients")
        if target:
            print(f"target p99 < 250 ms with {args.clients} clients: {'met' if target['p99'] < 250 else 'NOT met'}")
    finally:
        if hub is not None:
            hub.terminate()
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:
                print("the hub did not stop within 30 s of SIGTERM; killed", file=sys.stderr)
                hub.kill()
        server.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--interfaces", type=int, default=48, help="per device; a batch has 11 samples per interface")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frame-interval", type=float, default=0.2)
    ap.add_argument("--profile", help="write a cProfile of the hub process to this file")
    ap.add_argument("--deflate", action="store_true", help="let the hub accept permessage-deflate (off by default)")
    ap.add_argument("--only", help="run the baseline and the scenarios whose label contains this text")
    asyncio.run(main(ap.parse_args()))
