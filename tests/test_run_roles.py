"""`swtel run` with SWTEL_ROLE=both: hub and agent in one process, stopped together by one signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats
import pytest

from swtel.shared.inventory import Inventory

from support.ports import free_port
from support.telemetry import migrate
from support.waits import eventually


@pytest.mark.asyncio
async def test_role_both_serves_the_hub_runs_an_agent_and_stops_cleanly(bootstrapped: str, database_url: str) -> None:
    nc = await nats.connect(bootstrapped)
    try:
        await _run_both(nc, bootstrapped, database_url)
    finally:
        await nc.close()  # also when the test fails: a leaked client would fail the next test


async def _run_both(nc: nats.NATS, bootstrapped: str, database_url: str) -> None:
    inv = await Inventory.open(nc.jetstream())
    await migrate(database_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWTEL_")}
    env.update(SWTEL_ROLE="both", SWTEL_NATS_URL=bootstrapped, SWTEL_DATABASE_URL=database_url,
               SWTEL_HUB_PORT=str(port), SWTEL_AGENT_ID="dev-box")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "swtel"), "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        async def hub_healthy() -> bool:
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"http://127.0.0.1:{port}/api/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(hub_healthy, timeout=30, what="the hub of `swtel run` (role both) to be healthy")

        async def agent_present() -> bool:
            return [a.id for a in await inv.agent_list()] == ["dev-box"]

        await eventually(agent_present, timeout=15, what="the agent of `swtel run` to be present")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    # the agent left on purpose: its presence is gone at once, not after the TTL
    assert await inv.agent_list() == []
