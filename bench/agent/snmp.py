"""SNMP polling benchmark: the agent's SNMP collector beside Debian's prometheus-snmp-exporter, both polling
the same simulated devices (48 interfaces each) in the same run.

    .venv/bin/python bench/agent/snmp.py                          # 200 devices, 3 repeats of each
    .venv/bin/python bench/agent/snmp.py --devices 500 --repeats 5

Processes: the simulator (``serve_snmp``, one UDP agent per device, its own process), the exporter
(``prometheus-snmp-exporter`` on a free loopback port with a generated module that walks exactly the
columns the collector walks for the default subscription: ifName, ifOperStatus and the ten counters, v2c,
max-repetitions 25), and for each collector run a fresh child process running ``collectors.snmp.run`` for
every device (publishing into a counter: the publisher's cost is in the gNMI benchmark). Phases run one
after the other so they do not compete for the cores or the simulator.

A device-poll is one round of the interfaces of one device (the collector: sysUpTime + 12 column walks;
the exporter: one ``/snmp?target=…`` scrape). Reported: device-polls completed in the steady window, CPU
seconds per thousand device-polls of the collector process and of the exporter process (its utime+stime
from /proc, which includes HTTP and text exposition — what it costs to run it), their ratio, and devices
per core at a 30 s interval (= 30 / CPU-s per device-poll). Medians of ``--repeats`` runs. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swtel.agent.collectors import snmp
from swtel.agent.collectors import snmp_mibs as mib
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.shared import wire

COMMUNITY = "admin"  # the simulator's community is each device's password
# what the collector walks for the default interfaces subscription (counters and oper-status) of an HC agent
COLUMNS = mib.interface_columns(True, mib.optional_leaves(["/interfaces/interface/state/counters",
                                                           "/interfaces/interface/state/oper-status"]))
TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# ---- the simulator process ----------------------------------------------------------------------------


async def serve(devices: int, interfaces: int) -> None:
    from swtel.agent.sim.model import SimDevice
    from swtel.agent.sim.runner import ensure_fd_limit
    from swtel.agent.sim.snmp_agent import serve_snmp

    ensure_fd_limit(devices + 256)
    sims = [SimDevice(f"bench{i}", interfaces=interfaces) for i in range(devices)]
    agents = await serve_snmp(sims, "127.0.0.1", [0] * devices)
    print(json.dumps({"ports": agents.ports}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await agents.close()


# ---- a collector process ------------------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.polls = 0
        self.samples = 0
        self.polled: set[int] = set()
        self.events: dict[str, int] = {}


class Bound:
    def __init__(self, c: Counter, i: int) -> None:
        self.c, self.i = c, i

    async def batch(self, subscription: str, samples: list[wire.Sample]) -> None:
        self.c.polls += 1
        self.c.samples += len(samples)
        self.c.polled.add(self.i)

    async def event(self, kind: str, detail: str = "") -> None:
        self.c.events[kind] = self.c.events.get(kind, 0) + 1


async def collect(ports: list[int], interval: float, window: float) -> dict:
    from swtel.shared.inventory import DEFAULT_PATHS

    subs = [wire.Subscription("interfaces", DEFAULT_PATHS["interfaces"], interval_s=interval)]
    counter = Counter()
    tasks = []
    for i, port in enumerate(ports):
        dev = wire.Device(name=f"bench{i}", address="127.0.0.1", port=port, protocol="snmp", subscriptions=subs)
        ctx = CollectorContext(device=dev, token=1, publish=Bound(counter, i),  # type: ignore[arg-type]
                               credential=Credential("", "", community=COMMUNITY))
        tasks.append(asyncio.create_task(snmp.run(ctx)))
    t_start = time.monotonic()
    deadline = t_start + 2 * interval + 60
    while len(counter.polled) < len(ports) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    warm, warm_s = len(counter.polled), time.monotonic() - t_start
    p0, c0, t0 = counter.polls, time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    p1, c1, t1 = counter.polls, time.process_time(), time.monotonic()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"warm": warm, "warm_s": warm_s, "polls": p1 - p0, "cpu_s": c1 - c0, "wall_s": t1 - t0,
            "samples_per_poll": counter.samples / max(1, counter.polls), "events": counter.events}


# ---- the exporter ---------------------------------------------------------------------------------------


def exporter_config(path: Path) -> None:
    """A module walking what the collector walks for the default subscription, with ifName as the label
    (the generator's if_mib style)."""
    names = {mib.IF_NAME: "ifName", mib.IF_DESCR: "ifDescr", mib.IF_OPER_STATUS: "ifOperStatus",
             mib.IF_ALIAS: "ifAlias", mib.IF_HIGH_SPEED: "ifHighSpeed"}
    metrics = []
    for col in COLUMNS:
        kind = ("DisplayString" if col in (mib.IF_NAME, mib.IF_DESCR, mib.IF_ALIAS) else
                "gauge" if col in (mib.IF_OPER_STATUS, mib.IF_HIGH_SPEED) else "counter")
        name = names.get(col) or "if_" + col.replace(".", "_")
        metrics.append({"name": name, "oid": col, "type": kind,
                        "indexes": [{"labelname": "ifIndex", "type": "gauge"}],
                        "lookups": [{"labels": ["ifIndex"], "labelname": "ifName", "oid": mib.IF_NAME,
                                     "type": "DisplayString"}]})
    module = {"swtel_if": {"version": 2, "auth": {"community": COMMUNITY}, "max_repetitions": 25, "retries": 1,
                           "timeout": "2s", "walk": COLUMNS, "metrics": metrics}}
    path.write_text(json.dumps(module))  # JSON is YAML


async def scrape(http_port: int, ports: list[int], interval: float, window: float, pid: int) -> dict:
    import httpx

    done = {"ok": 0, "failed": 0}
    polled: set[int] = set()
    measuring = asyncio.Event()
    counted = {"polls": 0}

    async def one(client: httpx.AsyncClient, i: int, port: int) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            t = time.monotonic()
            try:
                r = await client.get(f"http://127.0.0.1:{http_port}/snmp",
                                     params={"target": f"127.0.0.1:{port}", "module": "swtel_if"})
                ok = r.status_code == 200 and "if_1_3_6_1_2_1_31_1_1_1_6{" in r.text
            except httpx.HTTPError:
                ok = False
            done["ok" if ok else "failed"] += 1
            if ok:
                polled.add(i)
                if measuring.is_set():
                    counted["polls"] += 1
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - t)))

    limits = httpx.Limits(max_connections=len(ports), max_keepalive_connections=len(ports))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        tasks = [asyncio.create_task(one(client, i, p)) for i, p in enumerate(ports)]
        t_start = time.monotonic()
        deadline = t_start + 2 * interval + 60
        while len(polled) < len(ports) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        warm, warm_s = len(polled), time.monotonic() - t_start
        c0, t0 = proc_cpu(pid), time.monotonic()
        measuring.set()
        await asyncio.sleep(window)
        c1, t1 = proc_cpu(pid), time.monotonic()
        polls = counted["polls"]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"warm": warm, "warm_s": warm_s, "polls": polls, "cpu_s": c1 - c0, "wall_s": t1 - t0,
            "failed": done["failed"]}


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the driver ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--interfaces", type=int, default=48)
    ap.add_argument("--interval", type=float, default=10.0, help="poll interval while measuring, seconds")
    ap.add_argument("--window", type=float, default=20.0, help="steady window per run, seconds")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--collect", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        asyncio.run(serve(args.devices, args.interfaces))
        return
    if args.collect:
        ports = json.loads(sys.stdin.readline())
        print(json.dumps(asyncio.run(collect(ports, args.interval, args.window))), flush=True)
        return

    exporter_bin = shutil.which("prometheus-snmp-exporter")
    if exporter_bin is None:
        sys.exit("prometheus-snmp-exporter is not installed: apt-get install prometheus-snmp-exporter")
    me = [sys.executable, os.path.abspath(__file__), "--devices", str(args.devices), "--interfaces",
          str(args.interfaces), "--interval", str(args.interval), "--window", str(args.window)]
    tmp = Path(tempfile.mkdtemp(prefix="swtel-bench-snmp-"))
    sim = subprocess.Popen([*me, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    exporter = None
    try:
        assert sim.stdout is not None and sim.stdin is not None
        ports = json.loads(sim.stdout.readline())["ports"]
        exporter_config(tmp / "snmp.yml")
        http_port = free_tcp_port()
        exporter = subprocess.Popen([exporter_bin, f"--config.file={tmp / 'snmp.yml'}",
                                     f"--web.listen-address=127.0.0.1:{http_port}", "--log.level=warn"],
                                    stdout=subprocess.DEVNULL, stderr=open(tmp / "exporter.log", "wb"))  # noqa: SIM115
        ours, theirs = [], []
        for _ in range(args.repeats):
            p = subprocess.run([*me, "--collect"], input=json.dumps(ports) + "\n", capture_output=True, text=True,
                               timeout=2 * args.interval + args.window + 300, check=True)
            ours.append(json.loads(p.stdout.strip().splitlines()[-1]))
            theirs.append(asyncio.run(scrape(http_port, ports, args.interval, args.window, exporter.pid)))
    finally:
        if exporter is not None:
            exporter.terminate()
            exporter.wait(10)
        if sim.stdin:
            sim.stdin.close()
        sim.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)

    def per_kpoll(r: dict) -> float:
        return r["cpu_s"] / max(1, r["polls"]) * 1000

    rows = [("swtel agent (gufo-snmp)", ours), ("snmp_exporter 0.21", theirs)]
    print(f"\n{args.devices} simulated devices x {args.interfaces} interfaces, v2c, polled every {args.interval:g} s; "
          f"median of {args.repeats} runs, {args.window:g} s steady window each\n")
    print(f"{'poller':26} {'devices ok':>10} {'polls in window':>15} {'CPU-s per 1000 polls':>21} "
          f"{'devices/core @30s':>18}")
    for name, runs in rows:
        cost = statistics.median(per_kpoll(r) for r in runs)
        print(f"{name:26} {int(statistics.median(r['warm'] for r in runs)):>10} "
              f"{int(statistics.median(r['polls'] for r in runs)):>15} {cost:>21.2f} {30 / (cost / 1000):>18.0f}")
    ratios = [per_kpoll(a) / per_kpoll(b) for a, b in zip(ours, theirs, strict=True)]
    print(f"\nCPU per device-poll, agent / exporter (median of per-run ratios): {statistics.median(ratios):.2f}")
    print(f"per-run ratios: {', '.join(f'{r:.2f}' for r in ratios)}; samples per agent poll: "
          f"{statistics.median(r['samples_per_poll'] for r in ours):.0f}; agent events: {ours[-1]['events']}; "
          f"exporter failed scrapes: {sum(r['failed'] for r in theirs)}")


if __name__ == "__main__":
    main()
