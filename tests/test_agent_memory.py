"""Agent memory per gNMI device (issue 20): nothing of a device's update outlives it.

One agent process (``bench/agent/agent_proc.py``: the lease manager's slot factory, one slot per device)
against SIM_DEVICES switches of the project's simulator (another process), 48 interfaces × 10 counters
each, SAMPLE every 2 s (40 kB notifications). The agent's RSS once every device has delivered a few
updates, minus its RSS before the first slot started (connected, imported: 0 devices), divided by the
devices, must stay under RSS_BOUND_KB. Before the fix (the reader kept its last decoded SubscribeResponse,
~360 kB of upb per device, and the batcher its last buffer while awaiting the next) this was ~1,000 kB.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest

from swtel.cli.embedded import free_port_range
from swtel.shared import buckets, settings

ROOT = Path(__file__).resolve().parents[1]
SIM_DEVICES = 300
# 2026-12-06, loaded 2-core host: 336-432 kB with the fix, 1001 kB without it; a bare grpc.aio client that
# parses and drops each response (bench/agent/bare.py) 128 kB in the same setting. What the agent holds
# beyond that is not Python objects (their count is flat; gc.collect and malloc_trim free < 10%).
RSS_BOUND_KB = 600

pytestmark = pytest.mark.slow


async def _bootstrap(url: str) -> None:
    nc = await nats.connect(url)
    try:
        s = settings.load({"nats_url": url}, env={})
        await buckets.ensure(nc.jetstream(), buckets.specs(s, replicas=1, markers=True))
    finally:
        await nc.close()


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the simulator exited ({proc.returncode}) before serving port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)  # polling a port another process opens: no event to await
    raise AssertionError(f"the simulator did not serve 127.0.0.1:{port} within {timeout:g}s")


def test_agent_rss_per_gnmi_device(nats_url: str) -> None:
    asyncio.run(_bootstrap(nats_url))
    base = free_port_range(SIM_DEVICES, start=random.randint(10000, 20000), stop=32000)
    env = {**os.environ, "SWTEL_NATS_URL": nats_url}
    sim = subprocess.Popen([sys.executable, "-m", "swtel.cli", "sim", "run", "--devices", str(SIM_DEVICES),
                            "--interfaces", "48", "--base-port", str(base)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(base + SIM_DEVICES - 1, sim, 40)
        agent = subprocess.run(
            [sys.executable, "-m", "bench.agent.agent_proc", "--nats", nats_url, "--devices", str(SIM_DEVICES),
             "--base-port", str(base), "--interval", "2", "--warmup", "30", "--windows", "1", "--window", "4",
             "--raw-seconds", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    assert agent.returncode == 0, f"agent process failed:\n{agent.stderr[-3000:]}"
    got = json.loads(agent.stdout)["agent"]
    assert got["collecting"] == SIM_DEVICES, f"only {got['collecting']} of {SIM_DEVICES} collecting: {got['statuses']}"
    assert got["samples_per_s"] > 0, "no sample published in the window"
    per_device = got["rss_per_device_kb"]
    print(f"agent RSS per gNMI device: {per_device:.0f} kB ({got['rss_mb']:.0f} MB at {SIM_DEVICES} devices)")
    assert per_device < RSS_BOUND_KB, (
        f"agent RSS grew {per_device:.0f} kB per gNMI device (bound {RSS_BOUND_KB} kB): "
        "something of a device's last update outlives it")
