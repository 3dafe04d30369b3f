"""Interop with gNMI software nobody here wrote: pygnmi (an independent client, gNMI 0.8 stubs, its own
process) reads the simulator; our collector reads finsy's test gNMI server (its own process)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.gnmisim import gnmi_fleet
from support.ports import free_port
from support.waits import eventually
from test_gnmi_collector import Agent, _async, agent, device, sub  # noqa: F401 (agent is a fixture)

from swtel.agent.sim.model import SimDevice
from swtel.shared import wire

PROBE = Path(__file__).parent / "support" / "pygnmi_probe.py"


@pytest.mark.asyncio
async def test_pygnmi_reads_capabilities_get_and_a_sample_stream() -> None:
    async with gnmi_fleet(SimDevice("sw1", interfaces=4)) as fleet:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(PROBE), str(fleet.ports[0]), "admin", "admin",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)

    caps = result["capabilities"]
    assert caps["gnmi_version"] == "0.10.0"
    assert "json_ietf" in [e.lower() for e in caps["supported_encodings"]]

    notif = result["get"]["notification"][0]
    counters = notif["update"][0]["val"]
    assert int(counters["openconfig-interfaces:in-octets"]) >= 0 and len(counters) == 10

    updates = [m["update"] for m in result["stream"] if "update" in m]
    assert any("sync_response" in m for m in result["stream"])
    values = [int(u["update"][0]["val"]) for u in updates]
    assert len(values) == 3 and values == sorted(values) and values[-1] > values[0]
    assert all(u["update"][0]["path"].endswith("in-octets") for u in updates)


# ---- our collector against finsy's test gNMI server (an independent target, its own process) ----------

FINSY = Path(__file__).parent / "support" / "finsy_gnmi.py"
FINSY_INSTALL = ("finsy is not installed: pip install --no-deps 'finsy==0.30.0' 'pyee>=13,<14' 'parsy>=2.2,<3' "
                 "(.ci/run does; finsy pins protobuf<7, its generated code runs on the project's protobuf 7)")


@pytest_asyncio.fixture
async def finsy() -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """finsy's GNMIServer on a free loopback port; yields (port, what it serves)."""
    if importlib.util.find_spec("finsy") is None:
        pytest.skip(FINSY_INSTALL)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, str(FINSY), str(port), stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"finsy's gNMI server did not start: {err.decode()[-2000:]}")
        yield port, json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _collected(agent: Agent, name: str, subscription: str) -> list[list[object]]:
    return [[s.path, s.value, s.ts] for b in agent.of(name) if b.subscription == subscription for s in wire.samples_of(b)]


@pytest.mark.asyncio
async def test_collector_reads_finsy_sample_stream_exactly_as_served(agent: Agent, finsy: tuple[int, dict]) -> None:
    port, served = finsy
    dev = device("stratum", port, tags={"gnmi-encoding": "json_ietf"})  # finsy offers PROTO only
    dev.subscriptions = [sub("ifs", ["/interfaces/interface/state/counters"], "sample", 0.5)]
    agent.start(dev)
    n = len(served["sample"])
    await eventually(lambda: _async(len(_collected(agent, "stratum", "ifs")) >= n), timeout=15,
                     what=f"{n} samples from finsy ({agent.stats('stratum')})")
    assert _collected(agent, "stratum", "ifs")[:n] == served["sample"]  # paths, values, device timestamps
    up = next(e.detail for e in agent.events if e.kind == "session_up")
    assert up.startswith(f"gNMI {served['gnmi_version']}, PROTO") and "gnmi-encoding=json_ietf ignored" in up


@pytest.mark.asyncio
async def test_finsy_on_change_stream_without_heartbeats_stays_up(agent: Agent, finsy: tuple[int, dict]) -> None:
    port, served = finsy
    dev = device("stratum", port)
    dev.subscriptions = [sub("oper", ["/interfaces/interface/state/oper-status"], "on_change", 1.0)]
    agent.start(dev)
    want = served["initial"] + served["updates"]
    await eventually(lambda: _async(len(_collected(agent, "stratum", "oper")) >= len(want)), timeout=10,
                     what="finsy's initial state and changes")
    # finsy then says nothing, and sends no heartbeat: the old watchdog (3 s here) reconnected it
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not agent.stats("stratum").get("errors"):
        await asyncio.sleep(0.1)
    assert _collected(agent, "stratum", "oper") == want
    assert agent.kinds("stratum") == ["session_up"] and agent.stats("stratum")["status"] == "collecting"


@pytest.mark.asyncio
async def test_finsy_answering_other_paths_is_dropped_and_named(agent: Agent, finsy: tuple[int, dict]) -> None:
    port, served = finsy
    dev = device("stratum", port)
    dev.subscriptions = [sub("cpu", ["/system/cpus/cpu/state/total/instant"], "sample", 0.3)]
    agent.start(dev)
    await eventually(lambda: _async(agent.stats("stratum").get("status") == "error"), timeout=10,
                     what=f"an error for paths finsy does not serve ({agent.stats('stratum')})")
    err = agent.stats("stratum")["last_error"]
    assert "paths matched nothing (/system/cpus/cpu/state/total/instant)" in err, err
    assert served["models"][0] in err and f"{len(served['sample'])} samples outside" in err, err
    assert not agent.of("stratum")  # finsy's in-octets never stored as "cpu"
    assert agent.stats("stratum")["subscriptions"]["cpu"]["dropped"] >= len(served["sample"])


@pytest.mark.asyncio
async def test_a_target_refusing_frequent_keepalives_slows_them_down(agent: Agent, finsy: tuple[int, dict]) -> None:
    """finsy runs a default grpc server: one ping per 5 minutes on a quiet stream, GOAWAY after 2 strikes."""
    port, _ = finsy
    dev = device("stratum", port, tags={"gnmi-keepalive": "500ms"})
    dev.subscriptions = [sub("oper", ["/interfaces/interface/state/oper-status"], "on_change", 0.2)]
    agent.start(dev)
    await eventually(lambda: _async("too_many_pings" in agent.stats("stratum").get("last_error", "")), timeout=15,
                     what=f"the GOAWAY to be named ({agent.stats('stratum')})")
    assert "pinging every 1s from now on" in agent.stats("stratum")["last_error"]
