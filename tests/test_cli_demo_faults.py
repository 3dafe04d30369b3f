"""`swtel demo --faults`: the faulty devices reach the states an operator should be able to see (auth failed,
down, a flapping session) and running configs change so the config diff view has something to show.
The real demo (embedded NATS, simulators, hub, agent as processes) on a private PostgreSQL database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from support.demo import DemoProcess
from support.ports import free_port


async def _state(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        events = await conn.fetch("SELECT device, kind FROM events ORDER BY time")
        down = {r["device"] for r in await conn.fetch("SELECT device FROM device_status WHERE down")}
        versions = await conn.fetch("SELECT device, count(DISTINCT sha256) AS n FROM config_backups GROUP BY device")
    except asyncpg.UndefinedTableError:
        return {"events": [], "down": set(), "configs": {}}
    finally:
        await conn.close()
    return {"events": [(r["device"], r["kind"]) for r in events], "down": down,
            "configs": {r["device"]: r["n"] for r in versions}}


def _seen(state: dict[str, object]) -> dict[str, bool]:
    events = state["events"]
    assert isinstance(events, list)
    flappy = [k for d, k in events if d == "flappy-0000" and k.startswith("session_")]
    return {
        "badpw auth failed": all((f"badpw-{i:04d}", "auth_failed") in events for i in (0, 1)),
        "badpw and hung down": {"badpw-0000", "badpw-0001", "hung-0000"} <= state["down"],  # type: ignore[operator]
        "flappy down and up again": "session_down" in flappy and flappy[flappy.index("session_down"):].count("session_up") >= 1,
        "a config changed": any(n >= 2 for n in state["configs"].values()),  # type: ignore[union-attr]
    }


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_demo_faults_shows_every_state(tmp_path: Path, database_url: str) -> None:
    demo = DemoProcess("--faults", "--devices", "3", "--agents", "1", "--data-dir", str(tmp_path / "demo"),
                       "--port", str(free_port()), "--config-change-every", "10s",
                       env={"SWTEL_DATABASE_URL": database_url, "SWTEL_CONFIG_BACKUP_INTERVAL_S": "5"})
    seen: dict[str, bool] = {}
    try:
        demo.wait_ready()
        out = demo.out
        assert "badpw-0000, badpw-0001 (ssh, wrong-password): auth failed, then down" in out, out
        assert "hung-0000 (netconf, hang)" in out and "flappy-0000 (gnmi, drop=20s)" in out
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            seen = _seen(asyncio.run(_state(database_url)))
            if all(seen.values()):
                break
            assert demo.proc.poll() is None, "demo exited:\n" + demo.tail()
            time.sleep(2)
        agent_log = (tmp_path / "demo" / "logs" / "agent-1.log").read_text(errors="replace").splitlines()
        assert all(seen.values()), (f"not seen within 150s: {[k for k, v in seen.items() if not v]}; agent log:\n"
                                    + "\n".join(agent_log[-40:]))
        # the agent's log tells what changed at INFO, without asyncssh's per-command lines
        assert any("badpw-0000 auth_failed" in line for line in agent_log)
        assert not any(" asyncssh:" in line for line in agent_log)
        assert "7 simulated devices registered" in demo.out
    finally:
        demo.stop()
