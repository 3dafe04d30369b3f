"""Interop: an independent gNMI client (pygnmi, gNMI 0.8 stubs, its own process) reads the simulator."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from support.gnmisim import gnmi_fleet

from swtel.agent.sim.model import SimDevice

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
